import { describe, expect, test } from 'vitest';
import { OwnAppends } from '../../src/store/jetstream/own-appends.js';

describe('OwnAppends', () => {
  const clock = () => {
    let now = 1_000;
    return { now: () => now, pass: (ms: number) => void (now += ms) };
  };

  test('a read must see the latest append, of concurrent ones the highest', () => {
    const c = clock();
    const own = new OwnAppends(c.now);
    expect(own.mustSee(1)).toBeUndefined();
    own.record(12, 'es.t.a.1.E');
    own.record(10, 'es.t.a.2.E'); // acknowledged later, stored earlier
    expect(own.mustSee(1)).toEqual(expect.objectContaining({ sequence: 12, subject: 'es.t.a.1.E' }));
    expect(own.mustSee(12)).toEqual(expect.objectContaining({ sequence: 12 }));
    // A read that starts after it would not include it.
    expect(own.mustSee(13)).toBeUndefined();
  });

  test('an append stops counting once older than replicas can lag, and a new one replaces it whatever its sequence', () => {
    const c = clock();
    const own = new OwnAppends(c.now);
    own.record(50, 'es.t.a.1.E');
    c.pass(3_000);
    expect(own.mustSee(1)?.sequence).toBe(50);
    c.pass(1);
    // Expired (maxAgeMs), or the stream was made again: waiting for it would never end.
    expect(own.mustSee(1)).toBeUndefined();
    own.record(3, 'es.t.a.1.E');
    expect(own.mustSee(1)?.sequence).toBe(3);
  });
});
