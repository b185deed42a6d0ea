import { describe, expect, test } from 'vitest';
import {
  deliveredMessageTime,
  isDelivery,
  isFlowControlOf,
  parseDelivery,
} from '../../src/store/jetstream/delivery.js';

describe('parseDelivery', () => {
  test('reads the 9-token form', () => {
    expect(parseDelivery('$JS.ACK.EVENTS.oc_1.1.42.7.1700000000000000000.3', 'EVENTS', 'oc_1')).toEqual({
      streamSequence: 42,
      deliverySequence: 7,
      pending: 3,
    });
  });

  test('reads the form with domain, account hash and a random token', () => {
    expect(
      parseDelivery('$JS.ACK._.HASH.EVENTS.oc_1.2.1000001.5.1700000000000000000.0.r4nd', 'EVENTS', 'oc_1'),
    ).toEqual({
      streamSequence: 1000001,
      deliverySequence: 5,
      pending: 0,
    });
  });

  test('anything else is not a delivery', () => {
    for (const reply of [
      undefined,
      '',
      '_INBOX.abc',
      '$JS.ACK.too.short',
      '$JS.ACK.S.C.1.x.2.3.4',
      '$JS.ACK.S.C.1..2.3.4',
      '$JS.ACK.S.C.1.-2.2.3.4',
      '$JS.ACK.S.C.1.2.3.4.99999999999999999999',
      '$JS.ACK.D.H.S.C.1.2.3.4', // ten tokens: neither form
      '$JS.FC.S.x.y',
    ])
      expect(parseDelivery(reply, 'S', 'C')).toBeUndefined();
  });

  test("another stream's or consumer's delivery is not ours, in both forms", () => {
    const forms = (stream: string, consumer: string) => [
      `$JS.ACK.${stream}.${consumer}.1.42.7.1700000000000000000.3`,
      `$JS.ACK._.HASH.${stream}.${consumer}.1.42.7.1700000000000000000.3.r4nd`,
    ];
    const ours = (reply: string) => parseDelivery(reply, 'EVENTS', 'oc_1') !== undefined;
    expect(forms('EVENTS', 'oc_1').map(ours)).toEqual([true, true]);
    for (const [stream, consumer] of [
      ['EVENTS', 'oc_2'],
      ['EVENTS', 'oc_10'],
      ['EVENTS', 'oc_'],
      ['OTHER', 'oc_1'],
      ['EVENTS2', 'oc_1'],
      ['EVENT', 'oc_1'],
    ])
      expect(forms(stream!, consumer!).map(ours), `${stream} ${consumer}`).toEqual([false, false]);
  });
});

describe('isDelivery', () => {
  test('tells stored messages from status and flow-control messages', () => {
    expect(['$JS.ACK.S.C.1.2.3.4.0', '$JS.FC.S.x.y', '_INBOX.abc', undefined].map(isDelivery)).toEqual([
      true,
      false,
      false,
      false,
    ]);
  });
});

describe('isFlowControlOf', () => {
  test("tells our consumer's flow control from another's, in both forms", () => {
    const ours = (subject: string) => isFlowControlOf(subject, 'EVENTS', 'oc_1');
    expect(['$JS.FC.EVENTS.oc_1.a1B2', '$JS.FC._.HASH.EVENTS.oc_1.a1B2'].map(ours)).toEqual([true, true]);
    expect(
      [
        '$JS.FC.EVENTS.oc_2.a1B2',
        '$JS.FC.EVENTS.xoc_1.a1B2',
        '$JS.FC.XEVENTS.oc_1.a1B2',
        '$JS.FC.OTHER.oc_1.a1B2',
        '$JS.ACK.EVENTS.oc_1.a1B2',
        '_INBOX.EVENTS.oc_1.a1B2',
      ].map(ours),
    ).toEqual([false, false, false, false, false, false]);
    // Between a consumer's remakes there is none: nothing is ours.
    expect(isFlowControlOf('$JS.FC.EVENTS.oc_1.a1B2', 'EVENTS', undefined)).toBe(false);
  });
});

describe('deliveredMessageTime', () => {
  test('reads the storage time, in ms, from both forms', () => {
    expect(deliveredMessageTime('$JS.ACK.EVENTS.oc_1.1.42.7.1700000000123456789.3')).toBeCloseTo(
      1_700_000_000_123.457,
      2,
    );
    expect(deliveredMessageTime('$JS.ACK._.HASH.EVENTS.oc_1.2.1000001.5.1700000000000000000.0.r4nd')).toBe(
      1_700_000_000_000,
    );
    expect(deliveredMessageTime('_INBOX.abc')).toBeUndefined();
    expect(deliveredMessageTime(undefined)).toBeUndefined();
  });
});
