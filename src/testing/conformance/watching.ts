import { tap } from 'rxjs';
import type { ReadTarget } from '../../store/types.js';
import type { ConformanceCase, ConformanceEvents } from './harness.js';
import {
  equal,
  account,
  deposit,
  summary,
  isCaughtUp,
  holds,
  summaryWhenComplete,
  record,
} from './support.js';

/** Watches: caught-up on an empty tenant, atomic appends seen whole, filters, `after`/`until`/'new' bounds. */
export const watchingCases: ReadonlyArray<ConformanceCase> = [
  {
    name: 'a watch emits nothing while subscribing, says caught-up on an empty tenant, then follows live events',
    async run(h) {
      const store = await h.store();
      const watch = record(store.watch());
      // As on JetStream, where the history has to arrive first.
      equal(watch.messages.length, 0, 'messages emitted while subscribing');
      await watch.until(isCaughtUp, 'caught-up');
      const a = await store.append(account('a'), [deposit(1), deposit(2)]);
      const b = await store.append(account('b'), deposit(3));
      await watch.until(holds(b.version), 'live events');
      watch.stop();
      equal(summary(watch.messages), ['caught-up 0', ...a.sequences, b.version], 'caught-up, then live');
      equal(
        watch.messages.map((m) => m.progress.caughtUp),
        [true, true, true, true],
        'progress says caught-up',
      );
    },
  },
  {
    name: 'a watch sees an atomic append whole: it is stored in full when its first event arrives',
    async run(h) {
      const store = await h.store();
      let lastOnArrival: Promise<number> | undefined;
      const watch = record(
        store.watch().pipe(
          tap((m) => {
            if (m.kind === 'event') lastOnArrival ??= store.lastSequence();
          }),
        ),
      );
      await watch.until(isCaughtUp, 'caught-up');
      const [from, to] = await store.appendAll([
        { entity: account('from'), events: [{ type: 'Withdrawn', data: { amount: 5 } }] },
        { entity: account('to'), events: [deposit(5), deposit(1)] },
      ]);
      await watch.until(holds(to!.version), 'the append');
      watch.stop();
      equal(summary(watch.messages).slice(1), [...from!.sequences, ...to!.sequences], 'its events');
      equal(await lastOnArrival, to!.version, 'the last sequence when its first event arrived');
    },
  },
  {
    name: 'a watch follows its filter, an entity, entity type or event type, in history and live',
    async run(h) {
      const store = await h.store();
      const card = { type: 'card', id: 'a' };
      const a = await store.append(account('a'), [deposit(1), { type: 'Withdrawn', data: { amount: 1 } }]);
      const b = await store.append(account('b'), deposit(2));
      const c = await store.append(card, deposit(3));
      const targets: ReadTarget<ConformanceEvents>[] = [
        account('a'),
        { entityType: 'account' },
        { eventType: 'Deposited' },
      ];
      const watches = targets.map((target) => record(store.watch(target)));
      await Promise.all(watches.map((w) => w.until(isCaughtUp, 'caught-up')));
      await store.append(card, { type: 'Withdrawn', data: { amount: 1 } }); // matches none
      const live = await store.append(account('a'), deposit(4));
      await Promise.all(watches.map((w) => w.until(holds(live.version), 'the live event')));
      watches.forEach((w) => w.stop());
      equal(
        watches.map((w) => summary(w.messages)),
        [
          [...a.sequences, `caught-up ${a.version}`, live.version],
          [...a.sequences, b.version, `caught-up ${b.version}`, live.version],
          [a.sequences[0], b.version, c.version, `caught-up ${c.version}`, live.version],
        ],
        'entity, entity type, event type',
      );
    },
  },
  {
    name: "after, until and 'new' bound a watch",
    async run(h) {
      const store = await h.store();
      const s = (await store.append(account('a'), [1, 2, 3, 4, 5].map(deposit))).sequences;
      equal(
        await summaryWhenComplete(store.watch({}, { after: s[1], noWait: true })),
        [s[2], s[3], s[4], `caught-up ${s[4]}`],
        'after, no wait',
      );
      equal(
        await summaryWhenComplete(store.watch({}, { after: s[0], until: s[2] })),
        [s[1], s[2], `caught-up ${s[2]}`],
        'after and until',
      );
      equal(
        await summaryWhenComplete(store.watch(account('a'), { until: s[1] })),
        [s[0], s[1], `caught-up ${s[1]}`],
        'entity, until',
      );
      const fresh = record(store.watch({}, { after: 'new' }));
      await fresh.until(isCaughtUp, 'caught-up');
      // Where it caught up: past every event stored before it was subscribed.
      const [marker] = fresh.messages.filter((m) => m.kind === 'caught-up');
      const at = marker?.kind === 'caught-up' ? marker.sequence : -1;
      equal(at >= s[4]!, true, `'new' caught up at ${at}, at or past ${s[4]}`);
      const next = await store.append(account('a'), deposit(6));
      await fresh.until(holds(next.version), 'the new event');
      fresh.stop();
      equal(
        summary(fresh.messages.filter((m) => m.kind === 'event')),
        [next.version],
        "'new' skips the history",
      );
    },
  },
  {
    name: 'a watch after a sequence past the end starts there, skipping events stored up to it',
    async run(h) {
      const store = await h.store();
      const { version } = await store.append(account('a'), deposit(1));
      const start = version + 2;
      const watches = [{}, account('a')].map((target) => record(store.watch(target, { after: start })));
      await Promise.all(watches.map((w) => w.until(isCaughtUp, 'caught-up')));
      const later = await store.append(account('a'), [deposit(2), deposit(3), deposit(4)]);
      await Promise.all(watches.map((w) => w.until(holds(later.version), 'the last event')));
      watches.forEach((w) => w.stop());
      const expected = [`caught-up ${start}`, ...later.sequences.filter((s) => s > start)];
      equal(
        watches.map((w) => summary(w.messages)),
        [expected, expected],
        'tenant and entity watch',
      );
    },
  },
];
