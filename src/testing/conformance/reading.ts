import type { ConformanceCase } from './harness.js';
import {
  ConformanceFailure,
  equal,
  rejects,
  called,
  all,
  account,
  deposit,
  seqs,
  balance,
} from './support.js';

/** Reads: filters, `after`/`until`, where a read ends, refused targets and bounds, progress, ids that need encoding. */
export const readingCases: ReadonlyArray<ConformanceCase> = [
  {
    name: 'filters select by entity, entity type and event type; after/until bound sequences',
    async run(h) {
      const store = await h.store();
      const a = await store.append(account('a'), [deposit(1), { type: 'Withdrawn', data: { amount: 1 } }]);
      const b = await store.append(account('b'), deposit(2));
      const c = await store.append({ type: 'card', id: 'a' }, deposit(3));
      const everything = await all(store.read());
      equal(seqs(everything), [...a.sequences, ...b.sequences, ...c.sequences], 'whole tenant in order');
      equal(
        seqs(await all(store.read({ entityType: 'account' }))),
        [...a.sequences, ...b.sequences],
        'entity type',
      );
      equal(
        seqs(await all(store.read({ eventType: 'Deposited' }))),
        [a.sequences[0], b.version, c.version],
        'event type',
      );
      equal(seqs(await all(store.read({ entityType: 'card', entityId: 'a' }))), c.sequences, 'entity id');
      equal(seqs(await all(store.read({}, { after: a.version }))), [b.version, c.version], 'after');
      equal(seqs(await all(store.read({}, { until: b.version }))), [...a.sequences, b.version], 'until');
      equal(
        seqs(await all(store.read({}, { after: a.sequences[0], until: b.version }))),
        [a.version, b.version],
        'both',
      );
      equal(seqs(await all(store.read({}, { after: c.version }))), [], 'after the end');
      // `until` between two of the filter's events: the read ends at the earlier one.
      equal(
        seqs(await all(store.read({ eventType: 'Deposited' }, { until: a.version }))),
        [a.sequences[0]],
        'event type, until between its events',
      );
      equal(
        seqs(await all(store.read({ entityType: 'card' }, { until: b.version }))),
        [],
        'entity type, until before its first event',
      );
      const future = c.version + 10;
      equal(
        seqs(await all(store.read(account('a'), { until: future }))),
        a.sequences,
        'entity, until past the end',
      );
      equal(seqs(await all(store.read({}, { until: future }))), seqs(everything), 'until past the end');
      equal(
        seqs(await all(store.read(account('a'), { after: a.sequences[0], until: future }))),
        [a.version],
        'entity, after and until past the end',
      );
      // (after, until] is empty once until is at or before after: nothing, not an error, so
      // a checkpoint already past a target needs no guard.
      for (const target of [account('a'), { entityType: 'account' }, {}])
        for (const [after, until] of [
          [a.version, a.version],
          [b.version, a.sequences[0]],
        ])
          equal(
            seqs(await all(store.read(target, { after, until }))),
            [],
            `${JSON.stringify(target)}, after ${after} until ${until}`,
          );
    },
  },
  {
    name: 'a read ends at what was stored when it started, even while its reader appends to what it reads',
    async run(h) {
      const store = await h.store();
      await store.append(account('a'), [deposit(1), deposit(2), deposit(3)]);
      for (const target of [account('a'), { entityType: 'account' }, {}]) {
        const what = `read of ${JSON.stringify(target)}`;
        const stored = seqs(await all(store.read(target)));
        const read: number[] = [];
        for await (const event of store.read(target)) {
          read.push(event.sequence);
          // Later events may be read too, but a read must end.
          if (read.length > stored.length + 100) throw new ConformanceFailure(`the ${what} never ends`);
          await store.append(account('a'), deposit(1));
        }
        equal(read.slice(0, stored.length), stored, `the ${what}, what was stored when it started`);
      }
    },
  },
  {
    name: 'bounds that are not sequences, and heartbeats under 100 ms or over a minute, are refused by reads and watches alike',
    async run(h) {
      const store = await h.store();
      await store.append(account('a'), deposit(1));
      for (const bounds of [{ after: -1 }, { after: 1.5 }, { until: -2 }, { until: Number.NaN }]) {
        await rejects(all(store.read({}, bounds)), 'INVALID_ARGUMENT', `read ${JSON.stringify(bounds)}`);
        const watched = new Promise<void>((resolve, reject) =>
          store.watch({}, { ...bounds, noWait: true }).subscribe({ error: reject, complete: resolve }),
        );
        await rejects(watched, 'INVALID_ARGUMENT', `watch ${JSON.stringify(bounds)}`);
      }
      for (const heartbeatMs of [0, 50, -1, Number.NaN, 60_001, Infinity]) {
        const watched = new Promise<void>((resolve, reject) =>
          store.watch({}, { heartbeatMs, noWait: true }).subscribe({ error: reject, complete: resolve }),
        );
        await rejects(watched, 'INVALID_ARGUMENT', `watch with heartbeatMs ${heartbeatMs}`);
      }
    },
  },
  {
    name: 'a target mixing an entity with a filter, or with a misspelt key, is refused, not widened',
    async run(h) {
      const store = await h.store();
      await store.append(account('a'), deposit(1));
      await store.append(account('b'), deposit(2));
      const refused = [
        { entityType: 'account', id: 'a' },
        { type: 'account', id: 'a', eventType: 'Withdrawn' },
        { type: 'account' },
        { entityType: 'account', entityID: 'a' },
      ] as never[];
      for (const target of refused) {
        const what = JSON.stringify(target);
        // Refused when called or when iterated: both before any request.
        await rejects((async () => all(store.read(target)))(), 'INVALID_ARGUMENT', `read ${what}`);
        await rejects(store.lastSequence(target), 'INVALID_ARGUMENT', `lastSequence ${what}`);
        const watched = new Promise<void>((resolve, reject) =>
          store.watch(target, { noWait: true }).subscribe({ error: reject, complete: resolve }),
        );
        await rejects(watched, 'INVALID_ARGUMENT', `watch ${what}`);
      }
      // An entity may be a richer object: keys a filter does not use are let be.
      const domainObject = { ...account('b'), owner: 'Bo' };
      equal((await all(store.read(domainObject))).length, 1, 'an entity with extra keys');
      class Account {
        constructor(private readonly key: string) {}
        get type() {
          return 'account';
        }
        get id() {
          return this.key;
        }
      }
      equal((await all(store.read(new Account('a')))).length, 1, 'an entity with getters');
      // Keys left undefined, as a spread of optional fields leaves them, count as absent.
      const spread = { entityType: 'account', type: undefined, eventType: undefined } as never;
      equal((await all(store.read(spread))).length, 2, 'a filter with undefined keys');
    },
  },
  {
    name: 'lastSequence follows the filter, and reads report their progress',
    async run(h) {
      const store = await h.store();
      equal(await store.lastSequence(), 0, 'empty tenant');
      const a = await store.append(account('a'), [deposit(1), deposit(2)]);
      const b = await store.append({ type: 'card', id: 'b' }, deposit(3));
      equal(await store.lastSequence(), b.version, 'whole tenant');
      equal(await store.lastSequence({ entityType: 'account' }), a.version, 'entity type');
      const progress: Array<[number, number]> = [];
      await all(store.read({}, { onProgress: (p) => progress.push([p.delivered, p.pending]) }));
      equal(
        progress,
        [
          [1, 2],
          [2, 1],
          [3, 0],
        ],
        'delivered and pending',
      );
      const bounded: Array<[number, number]> = [];
      await all(
        store.read({}, { until: a.version, onProgress: (p) => bounded.push([p.delivered, p.pending]) }),
      );
      equal(
        bounded,
        [
          [1, 2],
          [2, 1],
        ],
        'pending counts to the end of the stream, past until',
      );
    },
  },
  {
    name: 'ids with dots, wildcards, spaces and unicode round-trip without collisions',
    async run(h) {
      const store = await h.store();
      const ids = ['a.b', 'a=2Eb', '*', '>', 'with space', 'ünï-çødé ✓', 'a_b-c', '=', '.'];
      for (const id of ids) await store.append(account(id), deposit(1), { expect: 'new' });
      for (const id of ids) {
        const events = await all(store.read(account(id)));
        equal(
          events.map((e) => e.entity.id),
          [id],
          `entity ${JSON.stringify(id)}`,
        );
      }
      await rejects(store.append(account(''), deposit(1)), 'INVALID_TOKEN', 'empty id');
      await rejects(store.append({ type: '', id: 'x' }, deposit(1)), 'INVALID_TOKEN', 'empty type');
      await rejects(
        called(() => store.load(account(''), balance)),
        'INVALID_TOKEN',
        'load of an empty id',
      );
      equal((await all(store.read({ entityType: 'account' }))).length, ids.length, 'nothing else written');
    },
  },
];
