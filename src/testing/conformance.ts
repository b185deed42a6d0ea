import type { StandardSchemaV1 } from '@standard-schema/spec';
import { lastValueFrom, tap, toArray, type Observable } from 'rxjs';
import type { EntityRef } from '../subjects/subjects.js';
import type { EnvelopeOf, EventStore, ReadTarget } from '../store/types.js';
import { isJetsourceError, type JetsourceErrorCode } from '../errors.js';
import { Header } from '../codec/metadata.js';
import type { WatchMessage } from '../watch/types.js';

/** The event map every conformance case uses. */
export type ConformanceEvents = {
  Opened: { owner: string };
  Deposited: { amount: number };
  Withdrawn: { amount: number };
};

/** What a store implementation provides to run the suite. Every call must give a fresh tenant. */
export interface ConformanceHarness {
  /** A fresh, empty store. With `validated`, it carries {@link conformanceSchemas}. */
  store(options?: { validated?: boolean }): Promise<EventStore<ConformanceEvents>>;
  /** Stores bytes as they are in that store's backing stream, bypassing encoding and validation. */
  injectRaw(store: EventStore<ConformanceEvents>, raw: RawEvent): Promise<void>;
  /** The atomic batch limit the stores were opened with. */
  maxBatch: number;
}

/** Bytes to store for an entity and event type, as a foreign or buggy writer might. */
export interface RawEvent {
  entity: EntityRef;
  eventType: string;
  data: Uint8Array;
  headers: ReadonlyArray<[string, string]>;
}

/** One case: run it with your test runner; it throws on failure. */
export interface ConformanceCase {
  readonly name: string;
  run(harness: ConformanceHarness): Promise<void>;
}

const amount: StandardSchemaV1<unknown, { amount: number }> = {
  '~standard': {
    version: 1,
    vendor: 'jetsource-conformance',
    validate: (v) =>
      typeof v === 'object' && v !== null && typeof (v as { amount?: unknown }).amount === 'number'
        ? { value: v as { amount: number } }
        : { issues: [{ message: 'amount must be a number', path: ['amount'] }] },
  },
};
const owner: StandardSchemaV1<unknown, { owner: string }> = {
  '~standard': {
    version: 1,
    vendor: 'jetsource-conformance',
    validate: (v) =>
      typeof (v as { owner?: unknown })?.owner === 'string'
        ? { value: v as { owner: string } }
        : { issues: [{ message: 'owner must be a string' }] },
  },
};

/** Minimal Standard Schema validators for {@link ConformanceEvents}, so the suite needs no validation library. */
export const conformanceSchemas = { Opened: owner, Deposited: amount, Withdrawn: amount };

class ConformanceFailure extends Error {
  override name = 'ConformanceFailure';
}

function equal(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new ConformanceFailure(`${what}: expected ${e}, got ${a}`);
}

async function rejects(promise: Promise<unknown>, code: JetsourceErrorCode, what: string): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    if (isJetsourceError(err, code)) return err;
    throw new ConformanceFailure(`${what}: expected a ${code} error, got ${String(err)}`);
  }
  throw new ConformanceFailure(`${what}: expected a ${code} error, but it succeeded`);
}

/** What a promise-returning call returns: a failure if it throws instead of rejecting. */
function called<T>(call: () => Promise<T>): Promise<T> {
  try {
    return call();
  } catch (err) {
    throw new ConformanceFailure(`threw ${String(err)} instead of returning a rejected promise`);
  }
}

async function all<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iterable) out.push(x);
  return out;
}

const account = (id: string) => ({ type: 'account', id });
const deposit = (n: number) => ({ type: 'Deposited' as const, data: { amount: n } });
const seqs = (events: Array<EnvelopeOf<ConformanceEvents>>) => events.map((e) => e.sequence);
const balance = {
  initial: 0,
  evolve: (s: number, e: EnvelopeOf<ConformanceEvents>) =>
    e.type === 'Deposited' ? s + e.data.amount : e.type === 'Withdrawn' ? s - e.data.amount : s,
};
const encode = (s: string) => new TextEncoder().encode(s);

type Watched = WatchMessage<ConformanceEvents>;

/** A watch's messages in short: an event's sequence, `caught-up <sequence>` or `malformed <sequence>`. */
const summary = (messages: Watched[]) =>
  messages.map((m) =>
    m.kind === 'event'
      ? m.event.sequence
      : `${m.kind} ${m.kind === 'malformed' ? m.malformed.sequence : m.sequence}`,
  );
const isCaughtUp = (messages: Watched[]) => messages.some((m) => m.kind === 'caught-up');
const holds = (sequence: number) => (messages: Watched[]) =>
  messages.some((m) => m.kind === 'event' && m.event.sequence === sequence);
/** The summary of everything a watch emits, once it completes. */
const summaryWhenComplete = (watch: Observable<Watched>) =>
  lastValueFrom(watch.pipe(toArray())).then(summary);

/** A live watch's messages, recorded from the moment it is subscribed. */
interface Recording {
  readonly messages: Watched[];
  /** Settles once `done` holds for the messages; fails if the watch ends first, or after 5 s. */
  until(done: (messages: Watched[]) => boolean, what: string): Promise<void>;
  stop(): void;
}

function record(watch: Observable<Watched>): Recording {
  const messages: Watched[] = [];
  let ended: string | undefined;
  const waiting = new Set<() => void>();
  const changed = (why?: string) => {
    ended ??= why;
    waiting.forEach((check) => check());
  };
  const subscription = watch.subscribe({
    next: (m) => {
      messages.push(m);
      changed();
    },
    error: (err: unknown) => changed(`failed with ${String(err)}`),
    complete: () => changed('completed'),
  });
  return {
    messages,
    until(done, what) {
      return new Promise<void>((resolve, reject) => {
        const settle = (why?: string) => {
          clearTimeout(timer);
          waiting.delete(check);
          if (why === undefined) return resolve();
          reject(
            new ConformanceFailure(`${what}: the watch ${why}, after ${JSON.stringify(summary(messages))}`),
          );
        };
        const check = () => (done(messages) ? settle() : ended ? settle(ended) : undefined);
        const timer = setTimeout(() => settle('still waits after 5 s'), 5000);
        waiting.add(check);
        check();
      });
    },
    stop: () => subscription.unsubscribe(),
  };
}

/**
 * The behaviour every jetsource store must share. Run each case against your store with
 * any test runner:
 *
 * @example
 * for (const c of conformanceCases) test(c.name, () => c.run(harness));
 */
export const conformanceCases: ReadonlyArray<ConformanceCase> = [
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
      )) as { entity: string; actual: unknown };
      equal([err.entity, err.actual], ['account/to', existing.version], 'names the second entity');
      equal((await all(store.read(account('from')))).length, 0, 'first entity untouched');
      equal((await all(store.read(account('to')))).length, 1, 'second entity untouched');
      await rejects(
        store.appendAll([
          { entity: account('x'), events: [deposit(1)] },
          { entity: account('x'), events: [deposit(1)] },
        ]),
        'VALIDATION',
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
      // One event's expectation is checked before its id, as nats-server does.
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
  {
    name: 'metadata headers cannot carry, and empty or misplaced arguments, are refused up front',
    async run(h) {
      const store = await h.store();
      const refused: Array<[string, Promise<unknown>]> = [
        ['padded id', store.append(account('a'), { ...deposit(1), id: ' id ' })],
        // The server ignores an empty message id, which would make a retry store it again.
        ['empty id', store.append(account('a'), { ...deposit(1), id: '' })],
        ['padded meta value', store.append(account('a'), { ...deposit(1), meta: { note: 'x ' } })],
        ['two-line correlation id', store.append(account('a'), deposit(1), { correlationId: 'a\nb' })],
        ['fractional schemaVersion', store.append(account('a'), { ...deposit(1), schemaVersion: 1.5 })],
        ['negative schemaVersion', store.append(account('a'), { ...deposit(1), schemaVersion: -1 })],
        [
          'expect in appendAll options',
          store.appendAll([{ entity: account('a'), events: [deposit(1)] }], { expect: 'new' } as never),
        ],
      ];
      for (const [what, append] of refused) await rejects(append, 'INVALID_ARGUMENT', what);
      await rejects(store.appendAll([]), 'VALIDATION', 'no writes');
      await rejects(store.append(account('a'), []), 'VALIDATION', 'no events');
      equal((await all(store.read())).length, 0, 'nothing written');
      await store.append(account('a'), {
        ...deposit(1),
        schemaVersion: 2,
        meta: { note: 'inner  spaces ok' },
      });
      const [stored] = await all(store.read());
      equal(
        [stored?.schemaVersion, stored?.meta],
        [2, { note: 'inner  spaces ok' }],
        'valid metadata round-trips',
      );
    },
  },
  {
    name: 'schemas validate writes: bad data and unknown types are refused before anything is written',
    async run(h) {
      const store = await h.store({ validated: true });
      await rejects(
        store.append(account('a'), { type: 'Deposited', data: { amount: 'lots' } } as never),
        'VALIDATION',
        'bad data',
      );
      await rejects(
        store.append(account('a'), { type: 'Exploded', data: {} } as never),
        'VALIDATION',
        'unknown type',
      );
      await rejects(
        store.append(account('a'), [deposit(1), { type: 'Deposited', data: {} } as never]),
        'VALIDATION',
        '2nd event',
      );
      equal((await all(store.read())).length, 0, 'nothing written');
      await store.append(account('a'), deposit(1));
      equal((await all(store.read())).length, 1, 'valid data is written');
    },
  },
  {
    name: 'malformed stored events raise a typed error, or are reported beside the good ones',
    async run(h) {
      const store = await h.store({ validated: true });
      const good1 = await store.append(account('a'), deposit(1));
      const raw = (eventType: string, json: string, id: string) =>
        h.injectRaw(store, {
          entity: account('a'),
          eventType,
          data: encode(json),
          headers: [[Header.Id, id]],
        });
      await raw('Deposited', '{not json', 'bad-json');
      await raw('Deposited', '{"amount":"x"}', 'bad-data');
      await raw('Exploded', '{}', 'bad-type');
      const good2 = await store.append(account('a'), deposit(2));
      const err = (await rejects(all(store.read(account('a'))), 'MALFORMED_EVENT', 'default read')) as {
        sequence: number;
        raw: Uint8Array;
        reason: string;
      };
      equal(
        [err.sequence, err.reason, new TextDecoder().decode(err.raw)],
        [good1.version + 1, 'json', '{not json'],
        'error',
      );
      const reader = store.read(account('a'), { onMalformed: 'report' });
      equal(seqs(await all(reader)), [good1.version, good2.version], 'good events still read');
      equal(
        reader.malformed.map((m) => m.error.reason),
        ['json', 'validation', 'unknown-type'],
        'reported',
      );
      equal(
        reader.malformed.map((m) => m.sequence),
        [1, 2, 3].map((i) => good1.version + i),
        'reported sequences',
      );
      await rejects(store.load(account('a'), balance), 'MALFORMED_EVENT', 'load does not skip');
      // Reported, the entity still loads, and its version counts the malformed events.
      await raw('Deposited', '{not json', 'bad-last');
      const loaded = await store.load(account('a'), balance, { onMalformed: 'report' });
      equal([loaded.state, loaded.version], [3, good2.version + 1], 'load reporting');
      equal(
        loaded.malformed.map((m) => m.sequence),
        [1, 2, 3, 5].map((i) => good1.version + i),
        'load reported',
      );
      const next = await store.append(account('a'), deposit(4), { expect: loaded.version });
      equal(next.version, loaded.version + 1, 'an append expecting that version holds');
    },
  },
  {
    name: 'an atomic append over the batch limit is refused up front',
    async run(h) {
      const store = await h.store();
      const events = Array.from({ length: h.maxBatch + 1 }, (_, i) => deposit(i));
      await rejects(store.append(account('big'), events), 'BATCH_TOO_LARGE', 'over the limit');
      equal((await all(store.read())).length, 0, 'nothing written');
    },
  },
];
