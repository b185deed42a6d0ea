import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm } from '@nats-io/kv';
import { filter, firstValueFrom, merge, Subject, take, toArray } from 'rxjs';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createEventStore,
  defineView,
  InvalidArgumentError,
  InvalidTokenError,
  openView,
  PayloadTooLargeError,
  StoreConfigError,
  UnavailableError,
  type EnvelopeOf,
  type JetStreamEventStore,
} from '../../src/index.js';
import {
  DeadLetterNotFoundError,
  ensureStore,
  FoldError,
  ensureViews,
  startProjector,
  type Projector,
} from '../../src/server.js';
import { DeadLetters, type DeadLetter } from '../../src/processing/dead-letters.js';
import { ViewKeys } from '../../src/views/define-view.js';
import { encodeViewValue } from '../../src/views/codec.js';
import { eventually } from '../support/monitor.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

type Bank = { Deposited: { amount: number }; Withdrawn: { amount: number } };
type Balance = { balance: number; count: number };

const balances = (version = 1, poison?: (e: EnvelopeOf<Bank>) => boolean) =>
  defineView<Balance, Bank>({
    name: 'balances',
    version,
    filter: { entityType: 'account' },
    initial: { balance: 0, count: 0 },
    evolve: (s, e) => {
      if (poison?.(e)) throw new Error(`cannot fold #${e.sequence}`);
      const sign = e.type === 'Deposited' ? 1 : -1;
      return { balance: s.balance + sign * e.data.amount * version, count: s.count + 1 };
    },
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let t: TestServer;
let nc: NatsConnection;
const stream = 'VIEWS_EVENTS';

beforeAll(async () => {
  t = await useServer();
  nc = await t.connect();
  await ensureStore(nc, { stream, prefix: 'v' });
});
afterAll(() => t.close());

function newStore(connection = nc, tenant = unique('tenant')): JetStreamEventStore<Bank> {
  return createEventStore<Bank>({ connection, tenant, prefix: 'v', stream });
}

async function deposits(store: JetStreamEventStore<Bank>, count: number, accounts = 7): Promise<void> {
  for (let i = 0; i < count; i += 100) {
    await store.appendAll(
      Array.from({ length: accounts }, (_, a) => ({
        entity: { type: 'account', id: `acc-${a}` },
        events: Array.from({ length: (Math.min(100, count - i) / accounts) | 0 || 1 }, (_, k) => ({
          type: 'Deposited' as const,
          data: { amount: k + 1 },
        })),
      })),
    );
  }
}

/** Every key and raw value of one view version in a bucket. */
async function snapshot(bucket: string, tenant: string, version = 1): Promise<Record<string, string>> {
  const kv = await new Kvm(nc).open(bucket);
  const out: Record<string, string> = {};
  for await (const key of await kv.keys(`${tenant}.balances.v${version}.k.>`)) {
    out[key] = new TextDecoder().decode((await kv.get(key))!.value);
  }
  return out;
}

describe('views', () => {
  test('a projector builds a view and a reader on another connection watches it update live', async () => {
    const store = newStore();
    await deposits(store, 700);
    const projector = await startProjector(store, balances());
    await projector.caughtUp;
    const reader = openView<Balance>(newStore(await t.connect(), store.tenant), balances());
    const first = await reader.get('acc-1');
    const folded = await store.load({ type: 'account', id: 'acc-1' }, { initial: 0, evolve: (n) => n + 1 });
    expect(first).toMatchObject({ sequence: folded.version, state: { count: folded.state } });
    const updates = reader.watch('acc-1').pipe(take(2), toArray());
    const done = firstValueFrom(updates);
    await new Promise((r) => setTimeout(r, 100));
    const appended = await store.append(
      { type: 'account', id: 'acc-1' },
      { type: 'Withdrawn', data: { amount: 5 } },
    );
    const [loaded, live] = await done;
    expect(loaded!.state).toEqual(first!.state);
    expect(live).toMatchObject({
      key: 'acc-1',
      version: 1,
      sequence: appended.version,
      state: { balance: first!.state.balance - 5, count: folded.state + 1 },
    });
    // The reader may see the flush before the projector has its acknowledgement: lag
    // counts the event until then.
    await expect.poll(() => projector.lag(), { timeout: 2000 }).toBe(0);
    await projector.stop();
  });

  test('watch signals loaded for a missing key, then sees it created', async () => {
    const store = newStore();
    const projector = await startProjector(store, balances());
    await projector.caughtUp;
    const values = firstValueFrom(
      openView<Balance>(store, balances()).watch('late').pipe(take(2), toArray()),
    );
    await new Promise((r) => setTimeout(r, 100));
    await store.append({ type: 'account', id: 'late' }, { type: 'Deposited', data: { amount: 9 } });
    const [missing, created] = await values;
    expect(missing).toBeNull();
    expect(created?.state).toEqual({ balance: 9, count: 1 });
    await projector.stop();
  });

  test('a replay during catch-up keeps the earlier events catch-up still holds unflushed', async () => {
    const store = newStore();
    const account = { type: 'account', id: 'early' } as const;
    await store.append(account, { type: 'Deposited', data: { amount: 1 } });
    const bad = await store.append(account, { type: 'Deposited', data: { amount: 100 } });
    await deposits(store, 20);
    let broken = true;
    const view = balances(1, (e) => broken && e.sequence === bad.version);
    const real = await DeadLetters.open(nc);
    let stopped: Promise<void> | undefined;
    // The operator fixes evolve and replays as soon as the letter lands, mid-batch, then stops.
    const deadLetters: DeadLetters = Object.assign(Object.create(real) as DeadLetters, {
      record: async (letter: DeadLetter) => {
        await real.record(letter);
        if (letter.sequence !== bad.version) return;
        broken = false;
        await projector.replayDeadLetter(bad.version);
        stopped = projector.stop();
      },
    });
    // Catch-up reads the stream first, so `projector` is set before any letter lands.
    const projector: Projector = await startProjector(store, view, {
      deadLetters,
      maxAttempts: 1,
      bucket: 'early',
    });
    expect(await eventually(async () => stopped !== undefined, Boolean)).toBe(true);
    await stopped;
    await projector.done;
    // The next run folds event #1, which the replay's write did not hold, exactly once.
    const again = await startProjector(store, view, { deadLetters: real, bucket: 'early' });
    await again.caughtUp;
    const reader = openView<Balance>(store, view, { bucket: 'early' });
    expect((await reader.get('early'))?.state).toEqual({ balance: 101, count: 2 });
    expect(await again.deadLetters()).toEqual([]);
    await again.stop();
  });

  test('one replay that still fails does not fail the others', async () => {
    const store = newStore();
    const a = await store.append({ type: 'account', id: 'a' }, { type: 'Deposited', data: { amount: 1 } });
    const b = await store.append({ type: 'account', id: 'b' }, { type: 'Deposited', data: { amount: 2 } });
    const broken = new Set([a.version, b.version]);
    const view = balances(1, (e) => broken.has(e.sequence));
    const deadLetters = await DeadLetters.open(nc);
    const projector = await startProjector(store, view, { deadLetters, maxAttempts: 1, bucket: 'two' });
    await projector.caughtUp;
    broken.delete(b.version);
    const [first, second] = await Promise.allSettled([
      projector.replayDeadLetter(a.version),
      projector.replayDeadLetter(b.version),
    ]);
    expect(first).toMatchObject({ status: 'rejected', reason: { message: `cannot fold #${a.version}` } });
    expect(second).toEqual({ status: 'fulfilled', value: undefined });
    expect((await projector.deadLetters()).map((l) => l.sequence)).toEqual([a.version]);
    const reader = openView<Balance>(store, view, { bucket: 'two' });
    const times: Date[] = [];
    for await (const e of store.read({ type: 'account', id: 'b' })) times.push(e.time);
    expect(await reader.get('b')).toMatchObject({ state: { balance: 2, count: 1 }, time: times[0] });
    await projector.stop();
  });

  test('stopping during catch-up, again and again, loses no event', async () => {
    const store = newStore();
    const keys = 300;
    for (let round = 0; round < 10; round++)
      await store.appendAll(
        Array.from({ length: keys }, (_, k) => ({
          entity: { type: 'account', id: `s${k}` },
          events: [{ type: 'Deposited' as const, data: { amount: 1 } }],
        })),
      );
    for (let i = 0; i < 6; i++) {
      const interrupted = await startProjector(store, balances(), { bucket: 'stops', batchSize: 50 });
      await new Promise((r) => setTimeout(r, 5 + ((i * 17) % 60)));
      await interrupted.stop();
    }
    const last = await startProjector(store, balances(), { bucket: 'stops' });
    await last.caughtUp;
    await last.stop();
    const counts = Object.values(await snapshot('stops', store.tenant)).map(
      (raw) => (JSON.parse(raw) as { state: Balance }).state.count,
    );
    expect(counts).toHaveLength(keys);
    expect(counts.filter((n) => n !== 10)).toEqual([]);
  }, 60_000);

  test('a write that fails while stopping does not move the checkpoint past it', async () => {
    const store = newStore();
    const account = { type: 'account', id: 'late' } as const;
    await store.append(account, { type: 'Deposited', data: { amount: 1 } });
    const projector = await startProjector(store, balances(), { bucket: 'stopping' });
    await projector.caughtUp;
    // Another instance replays a dead letter into the value, so this one's next write conflicts.
    const kv = await new Kvm(nc).open('stopping');
    const key = `${store.tenant}.balances.v1.k.late`;
    const stored = (await kv.get(key))!;
    const value = stored.json<{ state: Balance }>();
    const replayed = { ...value, state: { balance: 101, count: 2 }, replayed: [999_999] };
    await kv.update(key, JSON.stringify(replayed), stored.revision);
    const next = await store.append(account, { type: 'Deposited', data: { amount: 10 } });
    // Stop the moment the event is folded, while the drain's write is still on its way.
    while (projector.progress().sequence < next.version) await new Promise((r) => setImmediate(r));
    await projector.stop();
    await projector.done;
    const again = await startProjector(store, balances(), { bucket: 'stopping' });
    await again.caughtUp;
    expect((await kv.get(key))!.json<{ state: Balance }>().state).toEqual({ balance: 111, count: 3 });
    await again.stop();
  });

  test('watchAll emits a map per burst of changes, not a copy per changed key', async () => {
    const store = newStore();
    const projector = await startProjector(store, balances(), { bucket: 'bursts' });
    await projector.caughtUp;
    const maps: Array<ReadonlyMap<string, unknown>> = [];
    const subscription = openView<Balance>(store, balances(), { bucket: 'bursts' })
      .watchAll()
      .subscribe((m) => maps.push(m));
    await eventually(
      async () => maps.length,
      (n) => n > 0,
    );
    for (let i = 0; i < 1000; i += 100)
      await store.appendAll(
        Array.from({ length: 100 }, (_, k) => ({
          entity: { type: 'account', id: `k${i + k}` },
          events: [{ type: 'Deposited' as const, data: { amount: 1 } }],
        })),
      );
    const last = await eventually(
      async () => maps.at(-1)!,
      (m) => m.size === 1000,
    );
    expect(last.size).toBe(1000);
    // One emission per key would be 1,000 copies of a growing map.
    expect(maps.length).toBeLessThan(100);
    expect(new Set(maps).size).toBe(maps.length); // each emission is its own snapshot
    subscription.unsubscribe();
    await projector.stop();
  });

  test('crash mid-stream and two instances at once give a view byte-identical to a fresh rebuild', async () => {
    const store = newStore();
    await deposits(store, 3000);
    // A projector whose connection dies mid-catch-up.
    const doomedConn = await t.connect();
    // Killed from its own progress report, so it dies mid-catch-up however fast it runs.
    let killed: Promise<void> | undefined;
    const doomed = await startProjector(newStore(doomedConn, store.tenant), balances(), {
      batchSize: 50,
      bucket: 'crash',
      onProgress: (p) => {
        if (p.phase === 'catching-up' && p.done >= 100) killed ??= doomedConn.close();
      },
    });
    await expect(doomed.done).rejects.toBeDefined();
    await killed;
    const checkpoint = await (
      await new Kvm(nc).open('crash')
    ).get(`${store.tenant}.balances.v1.meta.checkpoint`);
    const reached = checkpoint ? checkpoint.json<{ sequence: number }>().sequence : 0;
    expect(reached).toBeLessThan(await store.lastSequence()); // it really died mid-stream
    // Two instances resume from wherever it got to, at the same time.
    const [a, b] = await Promise.all([
      startProjector(newStore(await t.connect(), store.tenant), balances(), {
        batchSize: 70,
        bucket: 'crash',
      }),
      startProjector(newStore(await t.connect(), store.tenant), balances(), {
        batchSize: 30,
        bucket: 'crash',
      }),
    ]);
    await Promise.all([a.caughtUp, b.caughtUp]);
    const fresh = await startProjector(store, balances(), { bucket: 'fresh' });
    await fresh.caughtUp;
    const [crashed, rebuilt] = await Promise.all([
      snapshot('crash', store.tenant),
      snapshot('fresh', store.tenant),
    ]);
    expect(Object.keys(rebuilt)).toHaveLength(7);
    expect(crashed).toEqual(rebuilt);
    await Promise.all([a.stop(), b.stop(), fresh.stop()]);
  });

  test('a poison event is dead-lettered, later events project, and the fixed event replays', async () => {
    const store = newStore();
    const deadLetters = await DeadLetters.open(nc);
    const ok = await store.append({ type: 'account', id: 'p' }, { type: 'Deposited', data: { amount: 1 } });
    const bad = await store.append({ type: 'account', id: 'p' }, { type: 'Deposited', data: { amount: 13 } });
    await store.append({ type: 'account', id: 'p' }, { type: 'Deposited', data: { amount: 2 } });
    let broken = true;
    const view = balances(1, (e) => broken && e.sequence === bad.version);
    const projector = await startProjector(store, view, { deadLetters, maxAttempts: 3, bucket: 'poison' });
    await projector.caughtUp;
    const [letter] = await projector.deadLetters();
    expect(letter).toMatchObject({ sequence: bad.version, attempts: 3 });
    const reader = openView<Balance>(store, view, { bucket: 'poison' });
    expect((await reader.get('p'))?.state).toEqual({ balance: 3, count: 2 });
    // Still broken: the replay fails and the letter stays.
    await expect(projector.replayDeadLetter(bad.version)).rejects.toThrow();
    expect(await projector.deadLetters()).toHaveLength(1);
    broken = false;
    await projector.replayDeadLetter(bad.version);
    expect((await reader.get('p'))?.state).toEqual({ balance: 16, count: 3 });
    expect(await projector.deadLetters()).toEqual([]);
    // A crash after the fold but before the letter went: replaying again only removes it.
    await deadLetters.record(letter!);
    await projector.replayDeadLetter(bad.version);
    expect((await reader.get('p'))?.state).toEqual({ balance: 16, count: 3 });
    expect(await projector.deadLetters()).toEqual([]);
    // Nothing to replay any more, nor for an event that never failed: nothing is folded twice.
    await expect(projector.replayDeadLetter(bad.version)).rejects.toBeInstanceOf(DeadLetterNotFoundError);
    await expect(projector.replayDeadLetter(ok.version)).rejects.toBeInstanceOf(DeadLetterNotFoundError);
    expect((await reader.get('p'))?.state).toEqual({ balance: 16, count: 3 });
    expect(ok.version).toBeLessThan(bad.version);
    await projector.stop();
  });

  test('a letter recorded just before a crash, whose event fixed code then folds in order, replays without a second fold', async () => {
    const store = newStore();
    const deadLetters = await DeadLetters.open(nc);
    const account = { type: 'account', id: 'c' } as const;
    await store.append(account, { type: 'Deposited', data: { amount: 1 } });
    const bad = await store.append(account, { type: 'Deposited', data: { amount: 10 } });
    await store.append({ type: 'account', id: 'other' }, { type: 'Deposited', data: { amount: 5 } });
    // The first instance dead-letters the event, then its process dies before any flush.
    const doomed = await t.connect();
    const crashing = balances(1, (e) => e.sequence === bad.version && (void doomed.close(), true));
    const options = { deadLetters, maxAttempts: 1, bucket: 'crash-letter' };
    const first = await startProjector(newStore(doomed, store.tenant), crashing, options);
    await first.done.catch(() => undefined);
    expect((await deadLetters.list(`${stream}/${store.tenant}/balances@v1`)).map((l) => l.sequence)).toEqual([
      bad.version,
    ]);
    const fixed = await startProjector(store, balances(1), options);
    await fixed.caughtUp;
    const reader = openView<Balance>(store, balances(1), { bucket: 'crash-letter' });
    expect((await reader.get('c'))?.state).toEqual({ balance: 11, count: 2 });
    await fixed.replayDeadLetter(bad.version);
    expect((await reader.get('c'))?.state).toEqual({ balance: 11, count: 2 });
    expect(await fixed.deadLetters()).toEqual([]);
    await fixed.stop();
  });

  test('a letter no fix can fold (a malformed event) is dismissed', async () => {
    const store = newStore();
    const deadLetters = await DeadLetters.open(nc);
    await store.append({ type: 'account', id: 'm' }, { type: 'Deposited', data: { amount: 1 } });
    const garbage = await jetstream(nc).publish(
      store.format.scheme.event({ type: 'account', id: 'm' }, 'Deposited'),
      'not json',
    );
    const projector = await startProjector(store, balances(), { deadLetters, bucket: 'dismiss' });
    await projector.caughtUp;
    expect((await projector.deadLetters()).map((l) => [l.sequence, l.error.name])).toEqual([
      [garbage.seq, 'MalformedEventError'],
    ]);
    await expect(projector.replayDeadLetter(garbage.seq)).rejects.toMatchObject({
      name: 'MalformedEventError',
    });
    await projector.dismissDeadLetter(garbage.seq);
    expect(await projector.deadLetters()).toEqual([]);
    await projector.stop();
  });

  test('a replayed dead letter survives a second instance folding the same key from a stale copy', async () => {
    const store = newStore();
    const deadLetters = await DeadLetters.open(nc);
    const account = { type: 'account', id: 'shared' } as const;
    await store.append(account, { type: 'Deposited', data: { amount: 1 } });
    const bad = await store.append(account, { type: 'Deposited', data: { amount: 100 } });
    let broken = true;
    const view = balances(1, (e) => broken && e.sequence === bad.version);
    const options = { deadLetters, maxAttempts: 1, bucket: 'replay-race' };
    const a = await startProjector(store, view, options);
    await a.caughtUp;
    const retries: unknown[] = [];
    const b = await startProjector(newStore(await t.connect(), store.tenant), view, {
      ...options,
      onRetry: (err) => retries.push(err),
    });
    await b.caughtUp;
    // Both instances fold this event, so both hold the key (and its revision) in memory.
    const third = await store.append(account, { type: 'Deposited', data: { amount: 2 } });
    const reader = openView<Balance>(store, view, { bucket: 'replay-race' });
    const lags = () => Promise.all([a.lag(), b.lag()]);
    expect(await eventually(lags, (l) => l.every((n) => n === 0))).toEqual([0, 0]);
    expect((await reader.get('shared'))?.sequence).toBe(third.version);
    broken = false;
    await a.replayDeadLetter(bad.version);
    expect((await reader.get('shared'))?.state).toEqual({ balance: 103, count: 3 });
    await a.stop();
    // b's copy predates the replay: its next write must not drop the replayed fold.
    const fourth = await store.append(account, { type: 'Deposited', data: { amount: 4 } });
    const latest = () => reader.get('shared');
    expect(await eventually(latest, (v) => v?.sequence === fourth.version)).toMatchObject({
      state: { balance: 107, count: 4 },
    });
    expect(retries).toMatchObject([{ name: 'UnavailableError' }]);
    await b.stop();
  });

  test('version 2 rebuilds beside version 1, reports progress, then readers switch to it', async () => {
    const store = newStore();
    await deposits(store, 2000);
    const v1 = await startProjector(store, balances(1), { bucket: 'rebuild' });
    await v1.caughtUp;
    const reader = openView<Balance>(store, balances(1), { bucket: 'rebuild' });
    const seen = firstValueFrom(
      reader.watch('acc-0').pipe(
        filter((e) => e !== null && e.state.balance > 0),
        take(2),
        toArray(),
      ),
    );
    const progress: number[] = [];
    const v2 = await startProjector(store, balances(2), {
      bucket: 'rebuild',
      batchSize: 200,
      onProgress: (p) => progress.push(p.done / Math.max(1, p.total)),
    });
    expect(await reader.activeVersion()).toBe(1);
    await v2.caughtUp;
    expect(await reader.activeVersion()).toBe(2);
    const [fromV1, fromV2] = await seen;
    expect(fromV2!.state.balance).toBe(fromV1!.state.balance * 2);
    // Opened with v1's definition, the reader now serves v2: each entry says which.
    expect([fromV1!.version, fromV2!.version]).toEqual([1, 2]);
    expect((await reader.get('acc-0'))?.version).toBe(2);
    expect(progress.length).toBeGreaterThan(2);
    expect(progress[progress.length - 1]).toBe(1);
    expect(v2.progress()).toMatchObject({ phase: 'live', etaMs: 0 });
    await Promise.all([v1.stop(), v2.stop()]);
  });
});

describe('projector failures', () => {
  test('an event whose key the view cannot name is dead-lettered; the rest project', async () => {
    const store = newStore();
    const deadLetters = await DeadLetters.open(nc);
    const byOwner = defineView<number, Bank>({
      name: 'by-owner',
      version: 1,
      filter: { entityType: 'account' },
      initial: 0,
      // An empty id cannot be a key; a throwing key function is the view's bug.
      key: (e) =>
        e.data.amount === 13 ? '' : e.data.amount === 14 ? (null as unknown as string).trim() : 'all',
      evolve: (n) => n + 1,
    });
    for (const amount of [1, 13, 2, 14, 3])
      await store.append({ type: 'account', id: 'k' }, { type: 'Deposited', data: { amount } });
    const projector = await startProjector(store, byOwner, { deadLetters, bucket: 'badkeys' });
    await projector.caughtUp;
    expect((await projector.deadLetters()).map((l) => l.error.name)).toEqual([
      'InvalidTokenError',
      'TypeError',
    ]);
    expect((await openView<number>(store, byOwner, { bucket: 'badkeys' }).get('all'))?.state).toBe(3);
    await projector.stop();
  });

  test('a restart while a live batch is folding drops that batch and folds it again: nothing is lost', async () => {
    const store = newStore();
    // The first live watch fails, as a consumer lost in an outage does, while its batch folds.
    const fault = new Subject<never>();
    const watch = store.watch.bind(store);
    let watches = 0;
    store.watch = ((...args: Parameters<typeof watch>) =>
      watches++ === 0 ? merge(watch(...args), fault) : watch(...args)) as typeof store.watch;
    let faulted = false;
    const view = defineView<number, Bank>({
      name: 'restarts',
      version: 1,
      filter: { entityType: 'account' },
      initial: 0,
      evolve: (n, e) => {
        // Holds the drain on k0 while k1 and k2 arrive, so they fold in one batch.
        const until = performance.now() + (e.entity.id === 'k0' ? 100 : 0);
        while (performance.now() < until);
        if (e.entity.id === 'k2' && !faulted) {
          faulted = true;
          fault.error(new UnavailableError('watch consumer lost'));
        }
        return n + e.data.amount;
      },
    });
    const retries: unknown[] = [];
    const projector = await startProjector(store, view, {
      bucket: 'restarts',
      onRetry: (e) => retries.push(e),
    });
    await projector.caughtUp;
    await store.append({ type: 'account', id: 'k0' }, { type: 'Deposited', data: { amount: 100 } });
    await store.appendAll([
      { entity: { type: 'account', id: 'k1' }, events: [{ type: 'Deposited', data: { amount: 1 } }] },
      { entity: { type: 'account', id: 'k2' }, events: [{ type: 'Deposited', data: { amount: 2 } }] },
    ]);
    const reader = openView<number>(store, view, { bucket: 'restarts' });
    const both = () => Promise.all([reader.get('k1'), reader.get('k2')]);
    const [k1, k2] = await eventually(both, ([a, b]) => a !== null && b !== null);
    expect([k1?.state, k2?.state]).toEqual([1, 2]);
    expect(retries).toHaveLength(1);
    await projector.stop();
  });

  test('a live projector that falls behind holds a bounded queue: it catches up by paging', async () => {
    const store = newStore();
    let queued = 0;
    const view = defineView<number, Bank>({
      name: 'behind',
      version: 1,
      filter: { entityType: 'account' },
      initial: 0,
      evolve: (n, e) => {
        queued = Math.max(queued, (projector as unknown as { queue: unknown[] }).queue.length);
        const until = performance.now() + 0.5;
        while (performance.now() < until);
        return n + e.data.amount;
      },
    });
    const projector: Projector = await startProjector(store, view, { bucket: 'behind', batchSize: 10 });
    await projector.caughtUp;
    await deposits(store, 700);
    const last = await store.lastSequence({ entityType: 'account' });
    expect(
      await eventually(
        () => projector.lag(),
        (lag) => lag === 0,
      ),
    ).toBe(0);
    const reader = openView<number>(store, view, { bucket: 'behind' });
    const byKey = new Map<string, number>();
    for await (const e of store.read({ entityType: 'account' }))
      byKey.set(e.entity.id, (byKey.get(e.entity.id) ?? 0) + e.data.amount);
    for (const [key, total] of byKey) expect((await reader.get(key))?.state).toBe(total);
    expect(projector.progress().sequence).toBe(last);
    // batchSize × 4 is where the live watch stops; the 700 events came in bursts of 100.
    expect(queued).toBeGreaterThan(0);
    expect(queued).toBeLessThanOrEqual(40);
    await projector.stop();
  });

  test('without dead letters, an event evolve throws on stops the projector with a FoldError naming it', async () => {
    const store = newStore();
    await store.append({ type: 'account', id: 'f' }, { type: 'Deposited', data: { amount: 1 } });
    const bad = await store.append({ type: 'account', id: 'f' }, { type: 'Deposited', data: { amount: 2 } });
    const projector = await startProjector(
      store,
      balances(1, (e) => e.sequence === bad.version),
      { bucket: 'fold-error' },
    );
    const err = await projector.done.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FoldError);
    expect(err).toMatchObject({ sequence: bad.version, view: 'balances v1', cause: expect.any(Error) });
    expect((err as Error).message).toMatch(/cannot fold #\d+\. Fix evolve .* or pass deadLetters/);
  });

  test("an evolve that mutates its state does not change the next new key's initial state", async () => {
    const store = newStore();
    const counts = defineView<{ count: number }, Bank>({
      name: 'mutating',
      version: 1,
      filter: { entityType: 'account' },
      initial: { count: 0 },
      evolve: (s) => {
        s.count++;
        return s;
      },
    });
    for (const id of ['a', 'b', 'c'])
      await store.append({ type: 'account', id }, { type: 'Deposited', data: { amount: 1 } });
    const projector = await startProjector(store, counts, { bucket: 'mutating' });
    await projector.caughtUp;
    const reader = openView<{ count: number }>(store, counts, { bucket: 'mutating' });
    expect(await Promise.all(['a', 'b', 'c'].map(async (k) => (await reader.get(k))?.state.count))).toEqual([
      1, 1, 1,
    ]);
    expect(counts.initial).toEqual({ count: 0 });
    await projector.stop();
  });

  test('a state over max_payload stops the projector with a typed error naming the key', async () => {
    const store = newStore();
    const hoard = defineView<string[], Bank>({
      name: 'hoard',
      version: 1,
      filter: { entityType: 'account' },
      initial: [],
      evolve: (s) => [...s, 'x'.repeat(200_000)],
    });
    for (let i = 0; i < 8; i++)
      await store.append({ type: 'account', id: 'h' }, { type: 'Deposited', data: { amount: i } });
    const projector = await startProjector(store, hoard, { bucket: 'hoard', batchSize: 1 });
    const err = await projector.done.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect((err as Error).message).toMatch(/hoard v1/);
    // Whoever awaits catch-up hears of it too, rather than waiting for ever.
    expect(await projector.caughtUp.catch((e: unknown) => e)).toBe(err);
  });

  test('a projector stopped before catching up says so to whoever awaits caughtUp', async () => {
    const store = newStore();
    await deposits(store, 1000);
    // A millisecond per event: the stop lands long before history is folded.
    const slow = defineView<number, Bank>({
      name: 'slow',
      version: 1,
      filter: { entityType: 'account' },
      initial: 0,
      evolve: (n) => {
        const until = Date.now() + 1;
        while (Date.now() < until);
        return n + 1;
      },
    });
    const projector = await startProjector(store, slow, { bucket: 'early', batchSize: 10 });
    await projector.stop();
    const err = await projector.caughtUp.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(
      /slow v1 stopped before it caught up.*resumes from its checkpoint/,
    );
  });

  test('a batch size below 1 or over the atomic batch limit, or an attempt count below 1, is refused before anything is created', async () => {
    const store = newStore();
    for (const options of [
      { batchSize: 0 },
      { batchSize: 1.5 },
      { batchSize: 1000 },
      { maxAttempts: 0 },
      { maxAttempts: Number.NaN },
    ]) {
      const err = await startProjector(store, balances(), { bucket: 'never', ...options }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InvalidArgumentError);
    }
    const buckets: string[] = [];
    for await (const name of (await new Kvm(nc).list()) as AsyncIterable<{ bucket: string }>)
      buckets.push(name.bucket);
    expect(buckets).not.toContain('never');
  });

  test('a views bucket made without atomic batches gets them, and the projector writes through it', async () => {
    const store = newStore();
    const bucket = 'pre-atomic';
    await new Kvm(nc).create(bucket, { history: 1, allow_direct: true });
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(`KV_${bucket}`)).config.allow_atomic).toBeFalsy();
    await store.append({ type: 'account', id: 'u' }, { type: 'Deposited', data: { amount: 4 } });
    const projector = await startProjector(store, balances(), { bucket });
    await projector.caughtUp;
    expect((await jsm.streams.info(`KV_${bucket}`)).config.allow_atomic).toBe(true);
    expect((await openView<Balance>(store, balances(), { bucket }).get('u'))?.state).toEqual({
      balance: 4,
      count: 1,
    });
    await projector.stop();
  });

  test('a value no projector wrote, or an active pointer that is not JSON, is a StoreConfigError naming the key', async () => {
    const store = newStore();
    const bucket = 'junk';
    const kv = await ensureViews(nc, { bucket });
    const keys = new ViewKeys(store.tenant, 'balances');
    const reader = openView<Balance>(store, balances(), { bucket });
    await kv.put(keys.entry(1, 'x'), '{"state":1}');
    await expect(reader.get('x')).rejects.toThrow(/balances\.v1\.k\.x is not what a projector writes/);
    await kv.put(keys.active, 'not json');
    await expect(reader.activeVersion()).rejects.toBeInstanceOf(StoreConfigError);
  });

  test('a bucket name a KV bucket cannot have is an InvalidTokenError, wherever it is given', async () => {
    const store = newStore();
    const refusals = [
      startProjector(store, balances(), { bucket: 'my.views' }),
      ensureViews(nc, { bucket: 'a b' }),
      DeadLetters.open(nc, { bucket: 'dead.letters' }),
      (async () => openView(store, balances(), { bucket: 'my.views' }))(),
    ];
    for (const refused of refusals) {
      const err = await refused.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidTokenError);
      expect((err as Error).message).toMatch(/invalid bucket .*letters, digits/);
    }
  });

  test('defineView refuses a definition the projector could not fold, before any event', () => {
    const base = { name: 'refused', version: 1, filter: {}, initial: 0, evolve: (n: number) => n + 1 };
    const refusals: Array<[Record<string, unknown>, RegExp]> = [
      [{ evolve: undefined }, /^invalid view evolve: pass a function/],
      [{ key: 'id' }, /^invalid view key: pass a function/],
      [{ filter: { type: 'account', entityType: 'account' } }, /^invalid view filter .*not a mix/],
      [{ filter: { entitytype: 'account' } }, /^invalid view filter .*unknown: entitytype/],
    ];
    for (const [change, message] of refusals)
      expect(() => defineView({ ...base, ...change } as typeof base)).toThrow(message);
    expect(() => defineView(null as never)).toThrow(/^invalid view definition null: pass \{ name, version/);
  });

  test('openView refuses a timeout or API prefix it cannot use, before any request', () => {
    const store = newStore();
    for (const timeoutMs of [-1, 0, Number.NaN, 'abc' as unknown as number])
      expect(() => openView(store, balances(), { timeoutMs })).toThrow(
        /^invalid timeoutMs .*: use an integer/,
      );
    const source = { connection: nc, tenant: store.tenant, apiPrefix: 'X.*' };
    expect(() => openView(source, balances())).toThrow(/^invalid apiPrefix "X\.\*"/);
    // Plain JavaScript's slips: named, not a TypeError.
    expect(() => openView(null as never, balances())).toThrow(/^invalid view source null: pass a store/);
    expect(() => openView(store, null as never)).toThrow(/^invalid view null: pass its definition/);
    expect(() => openView(store, balances(), 'views' as never)).toThrow(/^invalid openView options "views"/);
  });

  test('two versions catching up at once leave the newer one serving', async () => {
    for (let round = 0; round < 8; round++) {
      const store = newStore();
      await deposits(store, 14);
      const [v2, v3] = await Promise.all([
        startProjector(store, balances(2), { bucket: 'race' }),
        startProjector(store, balances(3), { bucket: 'race' }),
      ]);
      await Promise.all([v2.caughtUp, v3.caughtUp]);
      expect(await openView(store, balances(), { bucket: 'race' }).activeVersion()).toBe(3);
      await Promise.all([v2.stop(), v3.stop()]);
    }
  });

  test('a server restart mid-projection loses nothing and folds nothing twice', async () => {
    const own = await useServer();
    try {
      const conn = await own.connect();
      await ensureStore(conn, { stream, prefix: 'v' });
      const store = newStore(conn);
      await deposits(store, 5_000);
      const projector = await startProjector(store, balances(1), { bucket: 'restarts', batchSize: 5 });
      // Mid catch-up: reads and writes wait for the connection and are sent again, and a
      // flush whose answer the drop lost starts the projector again from its checkpoint
      // (the restart of a flush is tested below).
      await own.server.restart();
      await Promise.race([projector.caughtUp, projector.done]);
      await deposits(store, 700);
      const expected = await store.load(
        { type: 'account', id: 'acc-3' },
        {
          initial: { balance: 0, count: 0 },
          evolve: (s, e) => ({ balance: s.balance + e.data.amount, count: s.count + 1 }),
        },
      );
      const reader = openView<Balance>(store, balances(1), { bucket: 'restarts' });
      // A projector that gave up ends the wait with its error.
      const entry = await Promise.race([
        eventually(
          () => reader.get('acc-3'),
          (e) => e?.state.count === expected.state.count,
          20_000,
        ),
        projector.done.then(() => null),
      ]);
      expect(entry?.state).toEqual(expected.state);
      await projector.stop();
      await expect(projector.done).resolves.toBeUndefined();
    } finally {
      await own.close();
    }
  }, 60_000);

  test('a server restart between a flush batch and its commit is noticed at once, and the flush retried', async () => {
    const own = await useServer();
    try {
      const conn = await own.connect();
      await ensureStore(conn, { stream, prefix: 'v' });
      const store = newStore(conn);
      await deposits(store, 3, 3);
      // The commit is held while the server restarts, so the batch's first message is lost.
      const publish = conn.publish.bind(conn);
      let held: Promise<void> | undefined;
      conn.publish = ((...args: Parameters<typeof publish>) => {
        if (held || args[2]?.headers?.get('Nats-Batch-Commit') !== '1') return publish(...args);
        held = (async () => {
          await sleep(300);
          await own.server.restart();
          await sleep(1500);
          publish(...args);
        })();
        held.catch(() => undefined); // awaited below; a failure shows there, not as unhandled
      }) as typeof conn.publish;
      const retried: unknown[] = [];
      const projector = await startProjector(store, balances(1), {
        bucket: 'dropped',
        onRetry: (err) => retried.push(err),
      });
      await Promise.race([projector.caughtUp, projector.done]);
      expect(held).toBeDefined();
      await held; // the commit, sent late to the restarted server, changes nothing
      // Not at the flush's 5 s timeout: the drop lost its answer, and it says so.
      expect(retried.map((e) => (e as Error).message)).toContainEqual(
        expect.stringMatching(/connection dropped before a flush of 4 message\(s\) to dropped was answered/),
      );
      const reader = openView<Balance>(store, balances(1), { bucket: 'dropped' });
      expect((await reader.get('acc-0'))?.state.count).toBe(1);
      await projector.stop();
    } finally {
      await own.close();
    }
  }, 60_000);

  test('a flush batch that reaches the server without one of its messages is refused whole, and retried', async () => {
    const store = newStore();
    await deposits(store, 3, 3);
    // The first flush loses a message between its start and its commit.
    const publish = nc.publish.bind(nc);
    let lost = false;
    nc.publish = ((...args: Parameters<typeof publish>) => {
      if (!lost && args[2]?.headers?.get('Nats-Batch-Sequence') === '2') lost = true;
      else publish(...args);
    }) as typeof nc.publish;
    const retried: unknown[] = [];
    const projector = await startProjector(store, balances(1), {
      bucket: 'incomplete',
      onRetry: (err) => retried.push(err),
    });
    try {
      await Promise.race([projector.caughtUp, projector.done]);
      expect(lost).toBe(true);
      expect(retried.map((e) => (e as UnavailableError).cause)).toContainEqual(
        expect.objectContaining({ errCode: 10176 }),
      );
      const reader = openView<Balance>(store, balances(1), { bucket: 'incomplete' });
      expect((await reader.get('acc-0'))?.state.count).toBe(1);
    } finally {
      nc.publish = publish;
      await projector.stop();
    }
  });
});

describe('dead letters across crashes and upgrades', () => {
  const acc = { type: 'account', id: 'a' } as const;
  const deposit = (amount: number) => ({ type: 'Deposited' as const, data: { amount } });
  const poisoned = (bad: number) => balances(1, (e) => e.sequence === bad);

  /** The view's KV bucket and one tenant's checkpoint and value keys in it. */
  async function stored(bucket: string, tenant: string) {
    const kv = await new Kvm(nc).open(bucket);
    const keys = new ViewKeys(tenant, 'balances');
    return { kv, checkpoint: keys.checkpoint(1), value: keys.entry(1, 'a') };
  }

  test('a letter whose value was written before a crash, but not the checkpoint, still replays once', async () => {
    const store = newStore();
    const deadLetters = await DeadLetters.open(nc);
    const bucket = 'crash-after-values';
    await store.append(acc, deposit(1));
    const bad = (await store.append(acc, deposit(10))).version;
    await store.append(acc, deposit(100)); // the same key, after the letter
    const first = await startProjector(store, poisoned(bad), { deadLetters, bucket, maxAttempts: 1 });
    await first.caughtUp;
    await first.stop();
    // The crash: the value (past the letter) was written, the checkpoint put never was.
    const { kv, checkpoint } = await stored(bucket, store.tenant);
    await kv.put(checkpoint, JSON.stringify({ sequence: bad - 1, lettersMarked: true }));
    const again = await startProjector(store, poisoned(bad), { deadLetters, bucket, maxAttempts: 1 });
    await again.caughtUp;
    await again.stop();
    const fixed = await startProjector(store, balances(), { deadLetters, bucket });
    await fixed.caughtUp;
    await fixed.replayDeadLetter(bad);
    expect((await openView<Balance>(store, balances(), { bucket }).get('a'))?.state).toEqual({
      balance: 111,
      count: 3,
    });
    expect(await fixed.deadLetters()).toEqual([]);
    await fixed.stop();
  });

  test('a stale letter whose event a value holds, while the checkpoint lags, is removed without a fold', async () => {
    const store = newStore();
    const deadLetters = await DeadLetters.open(nc);
    const bucket = 'checkpoint-lags';
    await store.append(acc, deposit(1));
    const bad = (await store.append(acc, deposit(10))).version;
    // Recorded by an instance that died before its value; fixed code then folded the event.
    await deadLetters.record({
      processor: `${stream}/${store.tenant}/balances@v1`,
      sequence: bad,
      subject: store.format.scheme.event(acc, 'Deposited'),
      error: { name: 'Error', message: 'was broken' },
      attempts: 1,
      keyless: false,
    });
    const fixed = await startProjector(store, balances(), { deadLetters, bucket });
    await fixed.caughtUp;
    await fixed.stop();
    // A crash between the value writes and the checkpoint: the value holds the event, the checkpoint does not pass it.
    const { kv, checkpoint } = await stored(bucket, store.tenant);
    await kv.put(checkpoint, JSON.stringify({ sequence: bad - 1, lettersMarked: true }));
    await fixed.replayDeadLetter(bad);
    expect((await openView<Balance>(store, balances(), { bucket }).get('a'))?.state).toEqual({
      balance: 11,
      count: 2,
    });
    expect(await fixed.deadLetters()).toEqual([]);
  });

  test('letters from before values and checkpoints recorded them stay open after the upgrade', async () => {
    const store = newStore();
    const deadLetters = await DeadLetters.open(nc);
    const bucket = 'upgrade-letters';
    const first = (await store.append(acc, deposit(1))).version;
    const bad = (await store.append(acc, deposit(10))).version;
    const last = (await store.append(acc, deposit(100))).version;
    const old = await startProjector(store, poisoned(bad), { deadLetters, bucket, maxAttempts: 1 });
    await old.caughtUp;
    await old.stop();
    // What an older jetsource stored: no letter lists on the value, no marks on the letter
    // or the checkpoint.
    const { kv, checkpoint, value } = await stored(bucket, store.tenant);
    const [letter] = await deadLetters.list(`${stream}/${store.tenant}/balances@v1`);
    const { keyless: _, ...unmarked } = letter!;
    await deadLetters.record(unmarked);
    const { time, state } = (await kv.get(value))!.json<{ time: string; state: Balance }>();
    await kv.put(value, JSON.stringify({ sequence: last, time, state }));
    // ...after a crash between the value write and the checkpoint write.
    await kv.put(checkpoint, JSON.stringify({ sequence: first }));
    const fixed = await startProjector(store, balances(), { deadLetters, bucket });
    await fixed.caughtUp;
    // A live event makes it write a checkpoint of its own before the replay.
    const other = await store.append({ type: 'account', id: 'b' }, deposit(5));
    await eventually(
      async () => (await kv.get(checkpoint))!.json<{ sequence: number }>().sequence,
      (s) => s === other.version,
    );
    await fixed.replayDeadLetter(bad);
    expect((await openView<Balance>(store, balances(), { bucket }).get('a'))?.state).toEqual({
      balance: 111,
      count: 3,
    });
    await fixed.stop();
  });

  test("a restart while a drain's flush is slow leaves the new run's live events to the new run", async () => {
    const store = newStore();
    const bucket = 'slow-flush';
    const fault = new Subject<never>();
    const watch = store.watch.bind(store);
    let watches = 0;
    store.watch = ((...args: Parameters<typeof watch>) =>
      watches++ === 0 ? merge(watch(...args), fault) : watch(...args)) as typeof store.watch;
    const projector = await startProjector(store, balances(), { bucket });
    await projector.caughtUp;
    // Holds the first live flush, as a slow KV would.
    type Commit = (...args: unknown[]) => Promise<number | undefined>;
    const storage = (projector as unknown as { storage: { commit: Commit } }).storage;
    const commit = storage.commit.bind(storage);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let holding!: () => void;
    const holds = new Promise<void>((r) => (holding = r));
    let writes = 0;
    storage.commit = async (...args) => {
      if (writes++ === 0) {
        holding();
        await held;
      }
      return commit(...args);
    };
    await store.append({ type: 'account', id: 'k0' }, deposit(1));
    await holds;
    fault.error(new UnavailableError('watch consumer lost'));
    // The new run catches up and watches again while the old drain still waits on its put.
    await eventually(
      async () => watches,
      (w) => w === 2,
      10_000,
    );
    await store.append({ type: 'account', id: 'k1' }, deposit(2));
    // k1 waits in the queue for a drain: the old one is still in its flush.
    const queued = async () => (projector as unknown as { queue: unknown[] }).queue.length;
    await eventually(queued, (n) => n > 0);
    release();
    await store.append({ type: 'account', id: 'k2' }, deposit(3));
    const reader = openView<Balance>(store, balances(), { bucket });
    const both = await eventually(
      () => Promise.all([reader.get('k1'), reader.get('k2')]),
      ([a, b]) => a !== null && b !== null,
    );
    expect(both.map((v) => v?.state.balance)).toEqual([2, 3]);
    await projector.stop();
  });
  /** balances whose key function throws on `badKey`'s events and whose evolve spins `slowMs`. */
  const balancesWith = (badKey?: (e: EnvelopeOf<Bank>) => boolean, slowMs = (_: EnvelopeOf<Bank>) => 0) =>
    defineView<Balance, Bank>({
      name: 'balances',
      version: 1,
      filter: { entityType: 'account' },
      initial: { balance: 0, count: 0 },
      key: (e) => {
        if (badKey?.(e)) throw new TypeError(`no key for #${e.sequence}`);
        return e.entity.id;
      },
      evolve: (s, e) => {
        const until = performance.now() + slowMs(e);
        while (performance.now() < until);
        return { balance: s.balance + e.data.amount, count: s.count + 1 };
      },
    });

  test('a keyless letter (the key function threw) survives a crash its value outlived, and replays once', async () => {
    const store = newStore();
    const deadLetters = await DeadLetters.open(nc);
    const bucket = 'keyless-crash';
    const first = (await store.append(acc, deposit(1))).version;
    const bad = (await store.append(acc, deposit(10))).version;
    await store.append(acc, deposit(100));
    const broken = await startProjector(
      store,
      balancesWith((e) => e.sequence === bad),
      { deadLetters, bucket },
    );
    await broken.caughtUp;
    await broken.stop();
    // The crash: the value put landed, the checkpoint put did not.
    const { kv, checkpoint } = await stored(bucket, store.tenant);
    await kv.put(checkpoint, JSON.stringify({ sequence: first, lettersMarked: true }));
    const fixed = await startProjector(store, balancesWith(), { deadLetters, bucket });
    await fixed.caughtUp;
    await fixed.replayDeadLetter(bad);
    expect((await openView<Balance>(store, balances(), { bucket }).get('a'))?.state).toEqual({
      balance: 111,
      count: 3,
    });
    await fixed.replayDeadLetter(bad).catch(() => undefined);
    expect((await openView<Balance>(store, balances(), { bucket }).get('a'))?.state.count).toBe(3);
    await fixed.stop();
  });

  test('a projector that fell behind re-reads values another instance moved on, and folds onto them', async () => {
    const store = newStore();
    const bucket = 'behind-others';
    await store.append(acc, deposit(1));
    const view = balancesWith(undefined, (e) => (e.entity.id === 'slow' ? 25 : 0));
    const projector = await startProjector(store, view, { bucket, batchSize: 1 });
    await projector.caughtUp; // its cache holds 'a'
    const { kv, checkpoint, value } = await stored(bucket, store.tenant);
    // Another instance of the same code runs ahead while this one is behind: it folds an
    // event of 'a' and checkpoints past it, just before this one catches up again.
    const storage = (projector as unknown as { storage: { readCheckpoint: () => Promise<unknown> } }).storage;
    const read = storage.readCheckpoint.bind(storage);
    let otherWrote = false;
    storage.readCheckpoint = async () => {
      if (!otherWrote) {
        otherWrote = true;
        const e = await store.append(acc, deposit(10));
        const current = (await kv.get(value))!;
        const v = current.json<{ time: string; state: Balance }>();
        const state = { balance: v.state.balance + 10, count: v.state.count + 1 };
        await kv.update(
          value,
          encodeViewValue({ sequence: e.version, time: v.time, state }),
          current.revision,
        );
        await kv.put(checkpoint, JSON.stringify({ sequence: e.version, lettersMarked: true }));
      }
      return read();
    };
    // Four batches queued stop its watch: it drains, then catches up from the checkpoint.
    await store.appendAll([
      { entity: { type: 'account', id: 'slow' }, events: Array.from({ length: 8 }, () => deposit(1)) },
    ]);
    await eventually(
      async () => otherWrote,
      (wrote) => wrote,
      10_000,
    );
    await eventually(
      async () => projector.progress().phase,
      (phase) => phase === 'live',
      10_000,
    );
    const last = await store.append(acc, deposit(100));
    const reader = openView<Balance>(store, view, { bucket });
    const a = await eventually(
      () => reader.get('a'),
      (v) => v?.sequence === last.version,
      10_000,
    );
    expect(a?.state).toEqual({ balance: 111, count: 3 });
    await projector.stop();
  });
});
