import { isJetsourceError } from '../../errors.js';
import type { ConformanceCase } from './harness.js';
import { ConformanceFailure, equal, rejects, all, account, deposit, seqs, balance } from './support.js';

/** Appends: round trips, every `expect` mode, concurrent writers, atomic `appendAll`, idempotent retries. */
export const appendingCases: ReadonlyArray<ConformanceCase> = [
  {
    name: 'append then read round-trips data and metadata',
    async run(h) {
      const store = await h.store();
      const entity = account('a1');
      const result = await store.append(
        entity,
        { type: 'Opened', data: { owner: 'Ann' }, id: 'evt-1', meta: { source: 'test' }, schemaVersion: 2 },
        {
          expect: 'new',
          correlationId: 'corr-1',
          causationId: 'cmd-1',
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        },
      );
      equal(result.sequences.length, 1, 'one sequence per event');
      const [event, ...rest] = await all(store.read(entity));
      equal(rest.length, 0, 'one event read');
      equal(
        [event!.id, event!.type, event!.data, event!.entity, event!.tenant, event!.sequence, event!.meta],
        ['evt-1', 'Opened', { owner: 'Ann' }, entity, store.tenant, result.version, { source: 'test' }],
        'envelope',
      );
      equal(
        [event!.correlationId, event!.causationId, event!.schemaVersion],
        ['corr-1', 'cmd-1', 2],
        'metadata',
      );
      equal(event!.traceparent?.startsWith('00-0af7'), true, 'traceparent');
      equal(Math.abs(event!.time.getTime() - Date.now()) < 60_000, true, 'time is the append time');
    },
  },
  {
    name: "expect 'new' succeeds once, then conflicts with the actual version",
    async run(h) {
      const store = await h.store();
      const { version } = await store.append(account('a'), deposit(1), { expect: 'new' });
      const err = (await rejects(
        store.append(account('a'), deposit(2), { expect: 'new' }),
        'CONCURRENCY',
        "second 'new'",
      )) as {
        expected: unknown;
        actual: unknown;
        entity: string;
      };
      equal([err.entity, err.expected, err.actual], ['account/a', 'new', version], 'conflict details');
      equal((await all(store.read(account('a')))).length, 1, 'nothing written by the conflicting append');
    },
  },
  {
    name: 'expect a version: the current one succeeds, a stale one conflicts',
    async run(h) {
      const store = await h.store();
      const v1 = (await store.append(account('a'), deposit(1), { expect: 'new' })).version;
      const v2 = (await store.append(account('a'), deposit(2), { expect: v1 })).version;
      const err = (await rejects(
        store.append(account('a'), deposit(3), { expect: v1 }),
        'CONCURRENCY',
        'stale',
      )) as {
        actual: unknown;
      };
      equal(err.actual, v2, 'actual version');
      await rejects(
        store.append(account('b'), deposit(3), { expect: v2 }),
        'CONCURRENCY',
        'version on an empty entity',
      );
      equal(await store.version(account('a')), v2, 'version()');
    },
  },
  {
    name: "expect 'any' never conflicts, and other entities do not count",
    async run(h) {
      const store = await h.store();
      await store.append(account('a'), deposit(1));
      await store.append(account('a'), deposit(1), { expect: 'any' });
      await store.append(account('b'), deposit(1), { expect: 'new' });
      await store.append({ type: 'other', id: 'a' }, deposit(1), { expect: 'new' });
      equal((await store.load(account('a'), balance)).state, 2, 'both written');
    },
  },
  {
    name: 'several events in one append get contiguous sequences and fold in order',
    async run(h) {
      const store = await h.store();
      const r = await store.append(
        account('a'),
        [deposit(5), { type: 'Withdrawn', data: { amount: 2 } }, deposit(10)],
        {
          expect: 'new',
        },
      );
      equal(
        r.sequences.map((s) => s - r.sequences[0]!),
        [0, 1, 2],
        'contiguous',
      );
      equal(r.version, r.sequences[2], 'version is the last sequence');
      equal(
        await store.load(account('a'), balance),
        { state: 13, version: r.version, malformed: [] },
        'load',
      );
      equal(
        await store.load(account('none'), balance),
        { state: 0, version: 0, malformed: [] },
        'empty entity',
      );
    },
  },
  {
    name: 'concurrent writers lose no update',
    async run(h) {
      const store = await h.store();
      const writers = 8;
      let conflicts = 0;
      await Promise.all(
        Array.from({ length: writers }, async () => {
          for (;;) {
            const { version } = await store.load(account('hot'), balance);
            try {
              await store.append(account('hot'), deposit(1), { expect: version === 0 ? 'new' : version });
              return;
            } catch (err) {
              if (!isJetsourceError(err, 'CONCURRENCY')) throw err;
              conflicts++;
            }
          }
        }),
      );
      equal((await store.load(account('hot'), balance)).state, writers, 'every writer counted once');
      equal(conflicts > 0, true, 'writers really raced');
    },
  },
  {
    name: 'appendAll writes several entities atomically',
    async run(h) {
      const store = await h.store();
      const results = await store.appendAll([
        { entity: account('from'), events: [{ type: 'Withdrawn', data: { amount: 5 } }], expect: 'new' },
        { entity: account('to'), events: [deposit(5), deposit(1)], expect: 'new' },
      ]);
      equal(
        results.map((r) => r.sequences.length),
        [1, 2],
        'per-entity results',
      );
      equal(results[1]!.sequences[0], results[0]!.version + 1, 'one contiguous batch');
      equal((await store.load(account('to'), balance)).state, 6, 'second entity');
    },
  },
  {
    name: 'appendAll with a conflict on the second entity writes nothing',
    async run(h) {
      const store = await h.store();
      const existing = await store.append(account('to'), deposit(1));
      const err = (await rejects(
        store.appendAll([
          { entity: account('from'), events: [{ type: 'Withdrawn', data: { amount: 5 } }], expect: 'new' },
          { entity: account('to'), events: [deposit(5)], expect: 'new' },
        ]),
        'CONCURRENCY',
        'conflict on the second entity',
      )) as { entity: string; entityRef: unknown; actual: unknown };
      equal(
        [err.entity, err.entityRef, err.actual],
        ['account/to', account('to'), existing.version],
        'names the second entity',
      );
      equal((await all(store.read(account('from')))).length, 0, 'first entity untouched');
      equal((await all(store.read(account('to')))).length, 1, 'second entity untouched');
      await rejects(
        store.appendAll([
          { entity: account('x'), events: [deposit(1)] },
          { entity: account('x'), events: [deposit(1)] },
        ]),
        'INVALID_ARGUMENT',
        'the same entity twice',
      );
    },
  },
  {
    name: 'a retried append with the same event ids is not duplicated',
    async run(h) {
      const store = await h.store();
      const events = [
        { ...deposit(1), id: 'retry-1' },
        { ...deposit(2), id: 'retry-2' },
      ];
      const first = await store.append(account('a'), events, { expect: 'new' });
      const again = await store.append(account('a'), events, { expect: 'new' });
      equal(again.sequences, first.sequences, 'same sequences (expecting new)');
      const single = await store.append(account('b'), { ...deposit(1), id: 'retry-3' }, { expect: 'new' });
      equal(
        (await store.append(account('b'), { ...deposit(1), id: 'retry-3' }, { expect: 'new' })).version,
        single.version,
        'single',
      );
      equal(
        (await store.append(account('b'), { ...deposit(1), id: 'retry-3' })).version,
        single.version,
        'without expectation',
      );
      equal((await all(store.read())).length, 3, 'no duplicates stored');
    },
  },
  {
    name: 'a retry is recognised after other writers appended to the entity',
    async run(h) {
      const store = await h.store();
      const other = { ...deposit(9) };
      const guarded = [
        { ...deposit(1), id: 'late-1' },
        { ...deposit(2), id: 'late-2' },
      ];
      const first = await store.append(account('a'), guarded, { expect: 'new' });
      await store.append(account('a'), other);
      equal(
        (await store.append(account('a'), guarded, { expect: 'new' })).sequences,
        first.sequences,
        'expecting new',
      );
      const loose = [
        { ...deposit(3), id: 'late-3' },
        { ...deposit(4), id: 'late-4' },
      ];
      const second = await store.append(account('b'), loose);
      await store.append(account('b'), other);
      equal((await store.append(account('b'), loose)).sequences, second.sequences, 'without expectation');
      const single = await store.append(account('c'), { ...deposit(5), id: 'late-5' });
      await store.append(account('c'), other);
      equal(
        (await store.append(account('c'), { ...deposit(5), id: 'late-5' })).version,
        single.version,
        'single',
      );
      const all2 = await store.appendAll([
        { entity: account('d'), events: [{ ...deposit(6), id: 'late-6' }], expect: 'new' },
        { entity: account('e'), events: [{ ...deposit(7), id: 'late-7' }] },
      ]);
      await store.append(account('d'), other);
      const retried = await store.appendAll([
        { entity: account('d'), events: [{ ...deposit(6), id: 'late-6' }], expect: 'new' },
        { entity: account('e'), events: [{ ...deposit(7), id: 'late-7' }] },
      ]);
      equal(retried, all2, 'appendAll');
      equal((await all(store.read())).length, 11, 'nothing stored twice');
    },
  },
  {
    name: 'a retry is recognised by its ids whatever expectation it carries',
    async run(h) {
      const store = await h.store();
      // An outage hid the outcome; the caller reloaded the version and retried with the same ids.
      const batch = [
        { ...deposit(1), id: 'reexpect-1' },
        { ...deposit(2), id: 'reexpect-2' },
      ];
      const first = await store.append(account('a'), batch, { expect: 'new' });
      await store.append(account('a'), deposit(9));
      const now = await store.version(account('a'));
      equal(
        (await store.append(account('a'), batch, { expect: now })).sequences,
        first.sequences,
        'current version',
      );
      equal(
        (await store.append(account('a'), batch, { expect: 1 })).sequences,
        first.sequences,
        'stale version',
      );
      const single = await store.append(account('b'), { ...deposit(3), id: 'reexpect-3' }, { expect: 'new' });
      await store.append(account('b'), deposit(9));
      equal(
        (
          await store.append(
            account('b'),
            { ...deposit(3), id: 'reexpect-3' },
            { expect: single.version + 1 },
          )
        ).sequences,
        single.sequences,
        'single event, current version',
      );
      equal((await all(store.read())).length, 5, 'nothing stored twice');
    },
  },
  {
    name: 'a retry without expectation is recognised after many appends to the same subject',
    async run(h) {
      const store = await h.store();
      const batch = [
        { ...deposit(1), id: 'busy-1' },
        { ...deposit(2), id: 'busy-2' },
      ];
      const first = await store.append(account('busy'), batch);
      for (let i = 0; i < 40; i++) await store.append(account('busy'), deposit(i));
      equal((await store.append(account('busy'), batch)).sequences, first.sequences, 'batch');
      equal((await all(store.read(account('busy')))).length, 42, 'nothing stored twice');
    },
  },
  {
    name: 'an append sharing only its first and last ids with a stored one is no retry',
    async run(h) {
      const store = await h.store();
      const [x, y] = [
        { ...deposit(1), id: 'ends-x' },
        { ...deposit(2), id: 'ends-y' },
      ];
      const stored = await store.append(account('a'), [x, { ...deposit(3), id: 'middle-1' }, y]);
      await rejects(
        store.append(account('a'), [x, { ...deposit(4), id: 'middle-2' }, y]),
        'VALIDATION',
        'one append, another middle event',
      );
      const across = await store.appendAll([
        { entity: account('b'), events: [{ ...deposit(5), id: 'all-x' }] },
        { entity: account('c'), events: [{ ...deposit(6), id: 'all-m1' }] },
        { entity: account('d'), events: [{ ...deposit(7), id: 'all-y' }] },
      ]);
      await rejects(
        store.appendAll([
          { entity: account('b'), events: [{ ...deposit(5), id: 'all-x' }] },
          { entity: account('e'), events: [{ ...deposit(8), id: 'all-m2' }] },
          { entity: account('d'), events: [{ ...deposit(7), id: 'all-y' }] },
        ]),
        'VALIDATION',
        'appendAll, another middle entity',
      );
      equal(
        seqs(await all(store.read())),
        [...stored.sequences, ...across.flatMap((r) => r.sequences)],
        'nothing else stored',
      );
    },
  },
  {
    name: 'an event id already used by another event is refused, never dropped as a retry',
    async run(h) {
      const store = await h.store();
      const stored = await store.append(account('a'), { ...deposit(1), id: 'taken' });
      const elsewhere = (await rejects(
        store.append(account('b'), { ...deposit(2), id: 'taken' }),
        'VALIDATION',
        'same id on another entity',
      )) as Error;
      if (!elsewhere.message.includes(`#${stored.version}`))
        throw new ConformanceFailure(`names the event holding the id: ${elsewhere.message}`);
      // One event's expectation is checked before its id, as nats-server does on one replica.
      const moved = await store.append(account('m'), deposit(3));
      await rejects(
        store.append(account('m'), { ...deposit(2), id: 'taken' }, { expect: 'new' }),
        'CONCURRENCY',
        'a reused id with an expectation that fails',
      );
      await rejects(
        store.append(account('a'), { type: 'Withdrawn', data: { amount: 1 }, id: 'taken' }),
        'VALIDATION',
        'same id, another event type',
      );
      // Same entity, type and id, other data: another writer's event under an id the caller
      // chose, not this append stored earlier. Nor does it pass for the expectation it fails.
      await rejects(
        store.append(account('a'), { ...deposit(2), id: 'taken' }),
        'VALIDATION',
        'same id and subject, other data',
      );
      await rejects(
        store.append(account('a'), { ...deposit(2), id: 'taken' }, { expect: 'new' }),
        'CONCURRENCY',
        'same id and subject, other data, with an expectation that fails',
      );
      const inBatch = (await rejects(
        store.append(account('c'), [
          { ...deposit(3), id: 'fresh' },
          { type: 'Withdrawn', data: { amount: 4 }, id: 'taken' },
        ]),
        'VALIDATION',
        'one reused id in a batch',
      )) as Error & { eventType: string };
      // The server does not say which id of a batch is taken: every one is named.
      equal(inBatch.eventType, 'Deposited, Withdrawn', "a batch's refusal names its event types");
      if (!inBatch.message.includes('"fresh", "taken"'))
        throw new ConformanceFailure(`names the batch's ids: ${inBatch.message}`);
      // Its own subject's first event: too early in the stream to end a stored append of two.
      await rejects(
        store.append(account('a'), [
          { ...deposit(7), id: 'early' },
          { ...deposit(1), id: 'taken' },
        ]),
        'VALIDATION',
        "a new event, then a reused id of the stream's first event",
      );
      await rejects(
        store.append(account('a'), [
          { ...deposit(1), id: 'taken' },
          { ...deposit(5), id: 'fresh-2' },
        ]),
        'VALIDATION',
        'a stored event plus a new one',
      );
      // An atomic append is checked event by event, each id before the expectation it carries
      // (a write's first event carries it): the first problem found is the one reported.
      const orders = [
        ['taken', 'fresh-3', 'VALIDATION', 'a reused first id, in an append whose expectation fails'],
        ['fresh-3', 'taken', 'CONCURRENCY', 'a failing expectation, then a reused id'],
      ] as const;
      for (const [first, second, code, what] of orders) {
        const events = [
          { ...deposit(2), id: first },
          { ...deposit(3), id: second },
        ];
        await rejects(store.append(account('m'), events, { expect: 'new' }), code, what);
      }
      await rejects(
        store.appendAll([
          { entity: account('e'), events: [{ ...deposit(1), id: 'taken' }] },
          { entity: account('m'), events: [{ ...deposit(2), id: 'fresh-3' }], expect: 'new' },
        ]),
        'VALIDATION',
        "appendAll: a reused id, then another write's failing expectation",
      );
      // One reused id is not a retry, even with a failing expectation: the append is refused, whole.
      const other = await store.append(account('x'), deposit(9));
      await rejects(
        store.appendAll([
          {
            entity: account('a'),
            events: [
              { ...deposit(1), id: 'taken' },
              { ...deposit(6), id: 'fresh-3' },
            ],
            expect: 'new',
          },
          { entity: account('d'), events: [{ ...deposit(7), id: 'fresh-4' }], expect: 'new' },
        ]),
        'VALIDATION',
        'a batch holding one stored id',
      );
      equal(
        seqs(await all(store.read())),
        [stored.version, moved.version, other.version],
        'nothing else stored',
      );
    },
  },
];
