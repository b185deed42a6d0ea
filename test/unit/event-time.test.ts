import { describe, expect, test } from 'vitest';
import { parseEventTime } from '../../src/codec/event-time.js';
import { int, prng } from './random.js';

/** What the general parser makes of it, the behaviour the fast path must keep. */
const expected = (text: string): number => new Date(text).getTime();

describe('parseEventTime', () => {
  test('reads what toISOString writes, to the millisecond', () => {
    const rand = prng(11);
    for (let i = 0; i < 2000; i++) {
      const date = new Date(int(rand, -62_000_000_000_000, 253_000_000_000_000));
      const text = date.toISOString();
      if (text.length !== 24) continue; // six-digit years take the general path
      expect(parseEventTime(text).getTime()).toBe(date.getTime());
    }
  });

  test('agrees with new Date() on edge fields, digits swapped for junk and other shapes', () => {
    const cases = [
      '2026-02-31T00:00:00.000Z',
      '2026-13-01T00:00:00.000Z',
      '2026-00-10T00:00:00.000Z',
      '2026-01-00T00:00:00.000Z',
      '2026-01-01T24:00:00.000Z',
      '2026-01-01T23:60:00.000Z',
      '2026-01-01T23:59:60.000Z',
      '0099-01-01T00:00:00.000Z',
      '0000-01-01T00:00:00.000Z',
      '2026-01-01T00:00:00Z',
      '2026-01-01',
      '+012026-01-01T00:00:00.000Z',
      '2026-01-01T00:00:00.000+01:00',
      'not a time at all, no way jose',
      '',
    ];
    const rand = prng(12);
    const base = '2026-11-23T06:21:57.123Z';
    for (let i = 0; i < 500; i++) {
      const at = int(rand, 0, base.length - 1);
      cases.push(base.slice(0, at) + String.fromCharCode(int(rand, 32, 126)) + base.slice(at + 1));
    }
    for (const text of cases) expect(parseEventTime(text).getTime(), text).toBe(expected(text));
  });

  test('a missing time is the epoch', () => {
    expect(parseEventTime(undefined).getTime()).toBe(0);
  });
});
