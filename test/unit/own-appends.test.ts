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
    own.record([{ sequence: 12, subject: 'es.t.a.1.E' }]);
    own.record([{ sequence: 10, subject: 'es.t.a.2.E' }]); // acknowledged later, stored earlier
    expect(own.mustSee(1)).toEqual(expect.objectContaining({ sequence: 12, subject: 'es.t.a.1.E' }));
    expect(own.mustSee(12)).toEqual(expect.objectContaining({ sequence: 12 }));
    // A read that starts after it would not include it.
    expect(own.mustSee(13)).toBeUndefined();
  });

  test('an append stops counting once older than replicas can lag, and a new one replaces it whatever its sequence', () => {
    const c = clock();
    const own = new OwnAppends(c.now);
    own.record([{ sequence: 50, subject: 'es.t.a.1.E' }]);
    c.pass(3_000);
    expect(own.mustSee(1)?.sequence).toBe(50);
    expect(own.matching('es.t.>', 1)).toEqual({ first: 50, last: 50 });
    c.pass(1);
    // Expired (maxAgeMs), or the stream was made again: waiting for it would never end.
    expect(own.mustSee(1)).toBeUndefined();
    expect(own.matching('es.t.>', 1)).toBeUndefined();
    own.record([{ sequence: 3, subject: 'es.t.a.1.E' }]);
    expect(own.mustSee(1)?.sequence).toBe(3);
    expect(own.matching('es.t.>', 1)).toEqual({ first: 3, last: 3 });
  });

  test('a filter read must reach the latest append on a subject it matches, from any of the events of an append', () => {
    const own = new OwnAppends(clock().now);
    // An appendAll: two entities, the first with two event types.
    own.record([
      { sequence: 20, subject: 'es.t.order.o1.Placed' },
      { sequence: 21, subject: 'es.t.order.o1.Paid' },
      { sequence: 22, subject: 'es.t.account.a1.Debited' },
    ]);
    own.record([{ sequence: 30, subject: 'es.t.account.a2.Debited' }]);
    expect(own.matching('es.t.>', 1)).toEqual({ first: 20, last: 30 });
    expect(own.matching('es.t.order.*.*', 1)).toEqual({ first: 20, last: 21 });
    expect(own.matching('es.t.*.*.Placed', 1)).toEqual({ first: 20, last: 20 });
    expect(own.matching('es.t.account.*.*', 1)).toEqual({ first: 22, last: 30 });
    expect(own.matching('es.t.account.a1.*', 1)).toEqual({ first: 22, last: 22 });
    // From a sequence on: a read past the first must still meet the next.
    expect(own.matching('es.t.>', 21)).toEqual({ first: 21, last: 30 });
    expect(own.matching('es.t.account.*.*', 23)).toEqual({ first: 30, last: 30 });
    // Nothing of this store's on the filter, or nothing from `from` on.
    expect(own.matching('es.t.invoice.*.*', 1)).toBeUndefined();
    expect(own.matching('es.u.>', 1)).toBeUndefined();
    expect(own.matching('es.t.order.*.*', 22)).toBeUndefined();
    // The entity listing's latest append is the newest of all.
    expect(own.mustSee(1)).toEqual(
      expect.objectContaining({ sequence: 30, subject: 'es.t.account.a2.Debited' }),
    );
  });

  test('the 1024 latest appended events are kept', () => {
    const own = new OwnAppends(clock().now);
    own.record([{ sequence: 5, subject: 'es.t.a.old.E' }]);
    own.record([{ sequence: 6, subject: 'es.t.a.kept.E' }]);
    own.record(Array.from({ length: 1023 }, (_, i) => ({ sequence: 100 + i, subject: `es.t.b.${i}.E` })));
    expect(own.matching('es.t.a.kept.E', 1)?.last).toBe(6);
    // The oldest made room.
    expect(own.matching('es.t.a.old.E', 1)).toBeUndefined();
    expect(own.matching('es.t.b.*.E', 1)).toEqual({ first: 100, last: 1122 });
    own.record([{ sequence: 2000, subject: 'es.t.c.1.E' }]);
    expect(own.matching('es.t.a.kept.E', 1)).toBeUndefined();
    expect(own.matching('es.t.>', 1)).toEqual({ first: 100, last: 2000 });
  });

  test('a watch awaits the newest matching append in (after, upTo], until 3 s after the last of them was acknowledged', () => {
    const c = clock();
    const own = new OwnAppends(c.now);
    own.record([{ sequence: 12, subject: 'es.t.a.1.E' }]);
    c.pass(1_000);
    own.record([{ sequence: 10, subject: 'es.t.a.2.E' }]); // acknowledged later, stored earlier
    own.record([{ sequence: 15, subject: 'es.t.b.1.E' }]);
    // 10 was acknowledged after 12: the watch waits 3 s after that for both.
    expect(own.awaited('es.t.a.*.E', 0, 100)).toEqual({ sequence: 12, until: 2_000 + 3_000 });
    expect(own.awaited('es.t.>', 0, 100)).toEqual({ sequence: 15, until: 5_000 });
    expect(own.awaited('es.t.>', 0, 14)).toEqual({ sequence: 12, until: 5_000 });
    expect(own.awaited('es.t.a.*.E', 11, 100)).toEqual({ sequence: 12, until: 4_000 });
    expect(own.awaited('es.t.a.*.E', 12, 100)).toBeUndefined();
    expect(own.awaited('es.t.a.2.E', 0, 9)).toBeUndefined();
    c.pass(2_001);
    // The first append has passed the horizon; the later ones count.
    expect(own.awaited('es.t.a.*.E', 0, 100)).toEqual({ sequence: 10, until: 5_000 });
  });
});
