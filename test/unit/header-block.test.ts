import { headers, type Msg } from '@nats-io/nats-core';
import { describe, expect, test } from 'vitest';
import { headerBlockOf } from '../../src/store/jetstream/api.js';
import { HeaderBlock } from '../../src/store/jetstream/header-block.js';

function written(): HeaderBlock {
  const h = headers();
  h.append('Nats-Msg-Id', 'e1');
  h.append('Es-Time', '2026-11-23T05:00:00.000Z');
  h.append('Es-Meta-note', ' a: b ');
  h.append('Es-Meta-empty', '');
  h.append('Multi', 'one');
  h.append('Multi', 'two');
  return new HeaderBlock(h.toString());
}

describe('HeaderBlock', () => {
  test('reads what nats.js writes: values trimmed, the first of a repeated key', () => {
    const block = written();
    expect(block.get('Nats-Msg-Id')).toBe('e1');
    expect(block.get('Es-Time')).toBe('2026-11-23T05:00:00.000Z');
    expect(block.get('Es-Meta-note')).toBe('a: b');
    expect(block.get('Es-Meta-empty')).toBe('');
    expect(block.get('Multi')).toBe('one');
  });

  test('a name is matched whole, case-sensitively, and never against the status line', () => {
    const block = written();
    expect(block.get('Nats-Msg')).toBeUndefined();
    expect(block.get('Msg-Id')).toBeUndefined();
    expect(block.get('nats-msg-id')).toBeUndefined();
    expect(
      new HeaderBlock('NATS/1.0 404 No Messages\r\n\r\n').get('NATS/1.0 404 No Messages'),
    ).toBeUndefined();
  });

  test('lists names in order, optionally by prefix', () => {
    const block = written();
    expect(block.names()).toEqual([
      'Nats-Msg-Id',
      'Es-Time',
      'Es-Meta-note',
      'Es-Meta-empty',
      'Multi',
      'Multi',
    ]);
    expect(block.names('Es-Meta-')).toEqual(['Es-Meta-note', 'Es-Meta-empty']);
    expect(block.names('Absent-')).toEqual([]);
  });

  test('a status line alone, an empty block or garbage has no headers', () => {
    for (const text of ['NATS/1.0 404 No Messages\r\n\r\n', '', 'NATS/1.0\r\nno colon here\r\n\r\n']) {
      const block = new HeaderBlock(text);
      expect(block.names()).toEqual([]);
      expect(block.get('no colon here')).toBeUndefined();
    }
  });
});

test('last() takes the final occurrence, where nats-server appends what it adds', () => {
  const block = new HeaderBlock(
    'NATS/1.0\r\nNats-Sequence: 1\r\nEs-Type: Opened\r\nNats-Sequence: 42\r\nNats-Num-Pending: 3\r\n\r\n',
  );
  expect(block.last('Nats-Sequence')).toBe('42');
  expect(block.get('Nats-Sequence')).toBe('1');
  expect(block.last('Nats-Num-Pending')).toBe('3');
  expect(block.last('Nats-Subject')).toBeUndefined();
});

describe('headerBlockOf', () => {
  test('falls back to the public msg.headers when the raw header block is not available', () => {
    const h = headers();
    h.append('Nats-Msg-Id', 'e2');
    const msg = { headers: h, data: new Uint8Array() } as unknown as Msg;
    expect(headerBlockOf(msg).get('Nats-Msg-Id')).toBe('e2');
    expect(headerBlockOf({ data: new Uint8Array() } as unknown as Msg).names()).toEqual([]);
  });

  test('reads the raw header block in place when nats.js exposes it', () => {
    const text = 'NATS/1.0\r\nEs-Type: Opened\r\n\r\n';
    const bytes = new TextEncoder().encode(`${text}{}`);
    const msg = { _msg: { hdr: text.length }, _rdata: bytes, data: bytes.subarray(text.length) };
    expect(headerBlockOf(msg as unknown as Msg).get('Es-Type')).toBe('Opened');
  });
});
