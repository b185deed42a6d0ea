import { headers, type Msg } from '@nats-io/nats-core';
import { describe, expect, test } from 'vitest';
import { headersOf, parseHeaderBlock } from '../../src/store/jetstream/api.js';

describe('parseHeaderBlock', () => {
  test('reads what nats.js writes, values trimmed, first value of a repeated key', () => {
    const h = headers();
    h.append('Nats-Msg-Id', 'e1');
    h.append('Es-Time', '2026-11-23T05:00:00.000Z');
    h.append('Es-Meta-note', 'a: b');
    h.append('Multi', 'one');
    h.append('Multi', 'two');
    const parsed = parseHeaderBlock(h.toString());
    expect([...parsed]).toEqual([
      ['Nats-Msg-Id', 'e1'],
      ['Es-Time', '2026-11-23T05:00:00.000Z'],
      ['Es-Meta-note', 'a: b'],
      ['Multi', 'one'],
    ]);
  });

  test('a status line and no headers, or garbage, give an empty map', () => {
    expect(parseHeaderBlock('NATS/1.0 404 No Messages\r\n\r\n').size).toBe(0);
    expect(parseHeaderBlock('').size).toBe(0);
    expect(parseHeaderBlock('NATS/1.0\r\nno colon here\r\n\r\n').size).toBe(0);
  });
});

describe('headersOf', () => {
  test('falls back to the public msg.headers when the raw header block is not available', () => {
    const h = headers();
    h.append('Nats-Msg-Id', 'e2');
    const msg = { headers: h, data: new Uint8Array() } as unknown as Msg;
    expect([...headersOf(msg)]).toEqual([['Nats-Msg-Id', 'e2']]);
    expect(headersOf({ data: new Uint8Array() } as unknown as Msg).size).toBe(0);
  });
});
