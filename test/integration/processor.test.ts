import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  createEventStore,
  StoreNotFoundError,
  type EnvelopeOf,
  type JetStreamEventStore,
} from '../../src/index.js';
import { durableName, ensureProcessorStream, ensureStore } from '../../src/server.js';
import { consumerConfig, resolvePolicy } from '../../src/processing/policy.js';
import { encodeToken } from '../../src/subjects/tokens.js';
import { Kvm } from '@nats-io/kv';
import { DeadLetters } from '../../src/processing/dead-letters.js';
import { ProcessorConfigError } from '../../src/processing/errors.js';
import { reject, retry } from '../../src/processing/outcome.js';
import {
  startProcessor,
  type Processor,
  type ProcessorOptions,
  type ProcessorOutcome,
} from '../../src/processing/processor.js';
import { eventually } from '../support/monitor.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

type Events = { Deposited: { amount: number }; Audited: { of: number } };
type Event = EnvelopeOf<Events>;

const stream = 'PROC';
const prefix = 'pr';
// Small clocks keep the file fast; the contract is the same as with the defaults.
// The store's own stream keeps idle consumers here (consumerIdleLimitMs: 0), so it serves.
const fast = { ackWaitMs: 1000, maxDeliver: 3, backoffMs: [50, 50], consumerStream: stream };
/** `fast` without consumerStream: the processor reads the store's mirror, `<stream>_WORK`. */
const { consumerStream: _, ...onMirror } = fast;

let t: TestServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let deadLetters: DeadLetters;
const started: Processor[] = [];

beforeAll(async () => {
  t = await useServer();
  nc = await t.connect();
  await ensureStore(nc, { stream, prefix, storage: 'memory', consumerIdleLimitMs: 0 });
  jsm = await jetstreamManager(nc, { checkAPI: false });
  deadLetters = await DeadLetters.open(nc);
});
afterEach(async () => {
  await Promise.all(started.splice(0).map((p) => p.stop({ timeoutMs: 100 })));
});
afterAll(() => t.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const account = (id: string) => ({ type: 'account', id });
const deposit = (amount: number) => ({ type: 'Deposited' as const, data: { amount } });

function newStore(connection = nc, tenant = unique('tenant')): JetStreamEventStore<Events> {
  return createEventStore<Events>({ connection, tenant, prefix, stream });
}

/** Appends deposits with the given amounts, one event per append, and returns their sequences. */
async function deposits(store: JetStreamEventStore<Events>, amounts: number[]): Promise<number[]> {
  const seqs: number[] = [];
  for (const [i, amount] of amounts.entries()) {
    seqs.push(...(await store.append(account(`a${i % 3}`), deposit(amount))).sequences);
  }
  return seqs;
}

const amountOf = (e: Event) => (e.type === 'Deposited' ? e.data.amount : NaN);
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

/** A store on a fresh stream of its own (default consumer idle cap, no mirror yet). */
async function storeOnItsOwnStream(name: string) {
  const origin = unique(name);
  const prefix = origin.toLowerCase();
  await ensureStore(nc, { stream: origin, prefix });
  return { origin, store: createEventStore<Events>({ connection: nc, tenant: 't', prefix, stream: origin }) };
}

async function start(options: ProcessorOptions<Events>): Promise<Processor> {
  const processor = await startProcessor({ deadLetters, ...options });
  started.push(processor);
  return processor;
}

/** Waits until `check` holds, then asserts it, so a timeout fails with the real value. */
async function until<T>(probe: () => T | Promise<T>, check: (v: T) => boolean, timeoutMs = 8000): Promise<T> {
  const value = await eventually(async () => probe(), check, timeoutMs);
  expect(check(value), `condition not met; last value: ${JSON.stringify(value)}`).toBe(true);
  return value;
}

/**
 * A nats-server of the test's own, which it may stop and restart, with a store on it and
 * the options a processor of the store's accounts needs.
 */
async function onOwnServer(
  run: (
    own: TestServer,
    options: {
      store: JetStreamEventStore<Events>;
      name: string;
      filter: { entityType: string };
      deadLetters: DeadLetters;
    } & typeof fast,
  ) => Promise<void>,
): Promise<void> {
  const own = await useServer();
  try {
    const conn = await own.connect();
    await ensureStore(conn, { stream, prefix, consumerIdleLimitMs: 0 });
    const deadLetters = await DeadLetters.open(conn);
    await run(own, {
      store: newStore(conn),
      name: unique('survivor'),
      filter: { entityType: 'account' },
      deadLetters,
      ...fast,
    });
  } finally {
    await own.close();
  }
}

/** A processor with `options` that has handled deposits 1 and 2; `handled` grows with later ones. */
async function handlingTwo(
  options: Omit<ProcessorOptions<Events>, 'handler'> & { store: JetStreamEventStore<Events> },
) {
  const handled: number[] = [];
  const processor = await startProcessor({ ...options, handler: (e) => void handled.push(amountOf(e)) });
  await deposits(options.store, [1, 2]);
  await until(
    () => handled.length,
    (n) => n === 2,
  );
  return { processor, handled };
}

/** Appends a deposit as soon as a restarted server takes it. */
async function depositWhenBack(store: JetStreamEventStore<Events>, amount: number): Promise<void> {
  await until(
    () =>
      deposits(store, [amount]).then(
        () => true,
        () => false,
      ),
    (ok) => ok,
    15_000,
  );
}

describe('processor: normal path', () => {
  test('handles every event exactly once across a restart, on the same durable consumer', async () => {
    const store = newStore();
    const first = await deposits(store, range(10));
    const seen: number[] = [];
    const options = { store, name: 'audit log', handler: (e: Event) => void seen.push(e.sequence), ...fast };
    const baseline = await clientSubscriptions();

    const p1 = await startProcessor(options); // default dead-letter bucket
    await until(
      () => seen.length,
      (n) => n === 10,
    );
    const created = (await jsm.consumers.info(stream, p1.consumer)).created;
    await p1.stop();
    expect(p1.state).toBe('stopped');

    const second = await deposits(store, range(5, 10));
    await sleep(200);
    expect(seen).toHaveLength(10); // nothing runs while stopped
    expect(await p1.lag()).toBe(5);

    const p2 = await startProcessor(options);
    await until(
      () => seen.length,
      (n) => n >= 15,
    );
    await sleep(300); // room for any duplicate to show up
    await p2.stop();

    expect(seen).toEqual([...first, ...second]);
    expect(p2.consumer).toBe(p1.consumer);
    const consumers = await jsm.consumers.list(stream).next();
    expect(consumers.filter((c) => c.name.startsWith(p1.durable))).toHaveLength(1);
    expect((await jsm.consumers.info(stream, p1.consumer)).created).toBe(created);
    // The durable's own server-side subscriptions stay by design; the clients' must not.
    expect(await eventually(clientSubscriptions, (n) => n === baseline)).toBe(baseline);
  });

  test('two instances with the same name share the work without handling an event twice', async () => {
    const tenant = unique('tenant');
    const other = await t.connect();
    const handledBy = new Map<number, string[]>();
    const instance = (label: string, connection: NatsConnection) =>
      start({
        store: newStore(connection, tenant),
        name: 'shared',
        maxAckPending: 4,
        ...fast,
        handler: async (e) => {
          handledBy.set(e.sequence, [...(handledBy.get(e.sequence) ?? []), label]);
          await sleep(5);
        },
      });
    await instance('A', nc);
    await instance('B', other);

    const seqs = await deposits(newStore(nc, tenant), range(40));
    await until(
      () => handledBy.size,
      (n) => n === 40,
    );
    await sleep(300);

    expect([...handledBy.keys()].sort((a, b) => a - b)).toEqual(seqs);
    expect([...handledBy.values()].every((labels) => labels.length === 1)).toBe(true);
    const byA = [...handledBy.values()].filter(([l]) => l === 'A').length;
    expect(byA).toBeGreaterThan(0);
    expect(byA).toBeLessThan(40);
  });
});

describe('processor: failures', () => {
  test('retry(delay) redelivers the event after the delay', async () => {
    const store = newStore();
    const calls: Array<{ attempt: number; at: number }> = [];
    const p = await start({
      store,
      name: 'retrying',
      ...fast,
      handler: (_e, ctx) => {
        calls.push({ attempt: ctx.attempt, at: Date.now() });
        if (ctx.attempt === 1) return retry(400);
      },
    });
    await deposits(store, [1]);
    await until(
      () => calls.length,
      (n) => n === 2,
    );

    expect(calls.map((c) => c.attempt)).toEqual([1, 2]);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(350);
    await until(
      () => p.metrics().processed,
      (n) => n === 1,
    );
    expect(p.metrics()).toMatchObject({ retried: 1, processed: 1, failed: 0, deadLettered: 0 });
    expect(await p.deadLetters()).toEqual([]);
  });

  test('a poison event is dead-lettered after maxDeliver without stalling the rest, and replays once fixed', async () => {
    const store = newStore();
    let fixed = false;
    const calls: number[] = [];
    const done = new Set<number>();
    const p = await start({
      store,
      name: 'poisoned',
      ...fast,
      backoffMs: [300, 300],
      handler: (e) => {
        calls.push(e.sequence);
        if (amountOf(e) < 0 && !fixed) throw new TypeError(`cannot handle ${amountOf(e)}`);
        done.add(e.sequence);
      },
    });
    const [poison, ...good] = await deposits(store, [-1, 1, 2]);

    const [letter] = await until(
      () => p.deadLetters(),
      (l) => l.length === 1,
    );
    expect(letter).toMatchObject({
      processor: `${stream}/${p.durable}`,
      sequence: poison,
      attempts: 3,
      error: { name: 'TypeError', message: 'cannot handle -1' },
    });
    expect(calls.filter((s) => s === poison)).toHaveLength(3);
    // The good events ran while the poison one waited out its backoff.
    expect(calls.indexOf(good[1]!)).toBeLessThan(calls.lastIndexOf(poison!));
    expect([...done]).toEqual(good);
    expect(p.metrics()).toMatchObject({ failed: 3, deadLettered: 1, processed: 2 });
    await until(
      () => p.lag(),
      (n) => n === 0,
    );

    // Still broken: the dead letter stays, with one more attempt.
    expect(await p.replayDeadLetter(poison!)).toMatchObject({
      status: 'failed',
      error: { name: 'TypeError' },
    });
    expect((await p.deadLetters())[0]!.attempts).toBe(4);

    fixed = true;
    expect(await p.replayDeadLetter(poison!)).toEqual({ sequence: poison, status: 'processed' });
    expect(done.has(poison!)).toBe(true);
    expect(await p.deadLetters()).toEqual([]);
    await expect(p.replayDeadLetter(poison!)).rejects.toMatchObject({ name: 'DeadLetterNotFoundError' });
  });

  test('reject() dead-letters at once with one attempt', async () => {
    const store = newStore();
    const calls: number[] = [];
    const p = await start({
      store,
      name: 'picky',
      ...fast,
      handler: (e) => {
        calls.push(e.sequence);
        if (amountOf(e) === 13) return reject('unlucky amount');
      },
    });
    const [, unlucky] = await deposits(store, [12, 13, 14]);
    await until(
      () => calls.length,
      (n) => n === 3,
    );
    const letters = await until(
      () => p.deadLetters(),
      (l) => l.length === 1,
    );
    expect(letters[0]).toMatchObject({
      sequence: unlucky,
      attempts: 1,
      error: { name: 'Rejected', message: 'unlucky amount' },
    });
    await sleep(200);
    expect(calls.filter((s) => s === unlucky)).toHaveLength(1);
    expect(await p.lag()).toBe(0);
  });

  test('a malformed stored event is dead-lettered and the processor goes on', async () => {
    const store = newStore();
    const handled: number[] = [];
    const p = await start({ store, name: 'strict', ...fast, handler: (e) => void handled.push(e.sequence) });
    const subject = store.format.scheme.event(account('bad'), 'Deposited');
    const ack = await nc.request(subject, new TextEncoder().encode('{not json'), { timeout: 5000 });
    const badSeq = (ack.json() as { seq: number }).seq;
    const [good] = await deposits(store, [5]);

    await until(
      () => handled,
      (h) => h.includes(good!),
    );
    const [letter] = await until(
      () => p.deadLetters(),
      (l) => l.length === 1,
    );
    expect(letter).toMatchObject({
      sequence: badSeq,
      subject,
      attempts: 1,
      error: { name: 'MalformedEventError' },
    });
    expect(handled).toEqual([good]);
    expect(p.state).toBe('running');
  });

  test('an event published without jetsource headers is handled, with the time the server stored it', async () => {
    const store = newStore();
    const handled: Array<{ sequence: number; time: number }> = [];
    const p = await start({
      store,
      name: 'plain',
      ...fast,
      handler: (e) => void handled.push({ sequence: e.sequence, time: e.time.getTime() }),
    });
    const before = Date.now() - 1000;
    const subject = store.format.scheme.event(account('plain'), 'Deposited');
    const ack = await nc.request(subject, new TextEncoder().encode('{"amount":3}'), { timeout: 5000 });
    const seq = (ack.json() as { seq: number }).seq;
    const [event] = await until(
      () => handled,
      (h) => h.length === 1,
    );
    expect(event!.sequence).toBe(seq);
    expect(event!.time).toBeGreaterThan(before);
    expect(event!.time).toBeLessThan(Date.now() + 1000);
    expect(await p.deadLetters()).toEqual([]);
  });

  test('an event whose last attempt never settles (crashed instance) is dead-lettered by the next one', async () => {
    const tenant = unique('tenant');
    const doomed = await t.connect();
    const options = { name: 'crashy', ...fast, maxDeliver: 1, backoffMs: [], ackWaitMs: 300 };
    let entered = false;
    const crashed = await startProcessor({
      ...options,
      deadLetters,
      store: newStore(doomed, tenant),
      handler: () => {
        entered = true;
        return new Promise<void>(() => undefined); // hangs, then its process "dies"
      },
    });
    const [seq] = await deposits(newStore(nc, tenant), [1]);
    await until(() => entered, Boolean);
    await doomed.close();

    const calls: number[] = [];
    const survivor = await start({
      ...options,
      store: newStore(nc, tenant),
      handler: (e) => void calls.push(e.sequence),
    });
    const [letter] = await until(
      () => survivor.deadLetters(),
      (l) => l.length === 1,
    );
    expect(letter).toMatchObject({ sequence: seq, attempts: 1, error: { name: 'DeliveriesExhausted' } });
    expect(calls).toEqual([]); // its one attempt was spent; the handler is not run again
    await crashed.stop({ timeoutMs: 50 }); // stopping on a dead connection still resolves
    expect(crashed.state).toBe('stopped');
  });
});

describe('processor: a dead-letter bucket that is down', () => {
  test('on the last delivery the record is retried until it lands, so the event is not lost', async () => {
    const store = newStore();
    const bucket = unique('dlb').toLowerCase();
    const letters = await DeadLetters.open(nc, { bucket });
    const errors: unknown[] = [];
    const processor = await start({
      store,
      name: unique('dl-down'),
      filter: { entityType: 'account' },
      deadLetters: letters,
      ...fast,
      maxDeliver: 2,
      backoffMs: [50],
      onError: (err) => errors.push(err),
      handler: () => {
        throw new Error('always');
      },
    });
    // Gone before the event fails for good: every record fails until it is back.
    await jsm.streams.delete(`KV_${bucket}`);
    const [seq] = await deposits(store, [1]);
    await until(
      () => errors.length,
      (n) => n >= 3,
    );
    await DeadLetters.open(nc, { bucket });
    const recorded = await until(
      () => processor.deadLetters().catch(() => []),
      (found) => found.length === 1,
      15_000,
    );
    // The handler's own error, not the spare delivery's "attempts ran out".
    expect(recorded[0]).toMatchObject({ sequence: seq, attempts: 2, error: { message: 'always' } });
  }, 30_000);
});

describe('processor: its consumer or server going away', () => {
  test('a deleted durable consumer stops the processor with an error, instead of a silent stall', async () => {
    const store = newStore();
    const errors: unknown[] = [];
    const processor = await start({
      store,
      name: unique('orphan'),
      filter: { entityType: 'account' },
      ...fast,
      onError: (err) => errors.push(err),
      handler: () => undefined,
    });
    // Running: its pull request waits at the server. Then an operator deletes the consumer.
    await until(
      () => jsm.consumers.info(stream, processor.consumer).then((info) => info.num_waiting),
      (waiting) => waiting > 0,
    );
    await jsm.consumers.delete(stream, processor.consumer);
    await deposits(store, [1]);
    await until(
      () => processor.state,
      (state) => state === 'stopped',
      15_000,
    );
    expect(errors.some((e) => e instanceof ProcessorConfigError && /is gone/.test(e.message))).toBe(true);
  }, 30_000);

  test('stop() during an outage still ends, and a successor carries on after it', async () => {
    await onOwnServer(async (own, options) => {
      const { processor } = await handlingTwo(options);
      await own.server.kill();
      await processor.stop({ timeoutMs: 100 });
      expect(processor.state).toBe('stopped');
      await own.server.restart();
      // At least once: a successor handles anything whose ack the outage swallowed, and new events.
      await depositWhenBack(options.store, 3);
      const again: number[] = [];
      const successor = await startProcessor({ ...options, handler: (e) => void again.push(amountOf(e)) });
      await until(
        () => again.includes(3),
        (yes) => yes,
        15_000,
      );
      expect(again.every((n) => [1, 2, 3].includes(n))).toBe(true);
      await successor.stop({ timeoutMs: 100 });
    });
  }, 40_000);

  test('a server restart is ridden out: events appended after it are handled', async () => {
    await onOwnServer(async (own, options) => {
      const { processor, handled } = await handlingTwo(options);
      await own.server.restart();
      await depositWhenBack(options.store, 3);
      await until(
        () => handled.includes(3),
        (yes) => yes,
        15_000,
      );
      expect(processor.state).toBe('running');
      await processor.stop({ timeoutMs: 100 });
    });
  }, 40_000);
});

describe('processor: concurrency', () => {
  test('runs at most `concurrency` handlers at once, and more than one', async () => {
    const store = newStore();
    let running = 0;
    let peak = 0;
    const p = await start({
      store,
      name: 'parallel',
      ...fast,
      concurrency: 3,
      handler: async () => {
        peak = Math.max(peak, ++running);
        await sleep(30);
        running--;
      },
    });
    await deposits(store, range(12));
    await until(
      () => p.metrics().processed,
      (n) => n === 12,
    );
    expect(peak).toBe(3);
  });

  test('events waiting for a handler slot longer than ackWait are not redelivered', async () => {
    const store = newStore();
    const attempts: Array<[number, number]> = [];
    const p = await start({
      store,
      name: 'patient',
      ...fast,
      ackWaitMs: 600,
      maxAckPending: 3,
      handler: async (e, ctx) => {
        attempts.push([e.sequence, ctx.attempt]);
        await sleep(450);
      },
    });
    const seqs = await deposits(store, [1, 2, 3]);
    await until(
      () => p.metrics().processed,
      (n) => n === 3,
      5000,
    );
    await sleep(400);
    // The third waited about 500 ms in this instance, past its 300 ms ack wait.
    expect(attempts).toEqual(seqs.map((s) => [s, 1]));
  });
});

describe('processor: shutdown and observability', () => {
  test('stop() waits for a running handler, and acks before it resolves', async () => {
    const store = newStore();
    let begun = false;
    const finished: number[] = [];
    const p = await start({
      store,
      name: 'slow',
      ...fast,
      handler: async (e) => {
        begun = true;
        await sleep(600);
        finished.push(e.sequence);
      },
    });
    const [seq] = await deposits(store, [1]);
    await until(() => begun, Boolean);
    const t0 = Date.now();
    await p.stop();

    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    expect(finished).toEqual([seq]);
    expect(p.state).toBe('stopped');
    expect(await p.lag()).toBe(0);
  });

  test('stop() gives up on a handler after its timeout and hands the event back', async () => {
    const store = newStore();
    const attempts: number[] = [];
    let aborted: unknown;
    const p = await start({
      store,
      name: 'stuck',
      ...fast,
      handler: (_e, ctx) =>
        new Promise<void>((resolve) => {
          attempts.push(ctx.attempt);
          if (ctx.attempt > 1) return resolve();
          ctx.signal.addEventListener('abort', () => (aborted = ctx.signal.reason));
        }),
    });
    await deposits(store, [1]);
    await until(
      () => attempts.length,
      (n) => n === 1,
    );
    const t0 = Date.now();
    await p.stop({ timeoutMs: 150 });

    expect(Date.now() - t0).toBeLessThan(900); // well before the 1 s ack wait
    expect(String(aborted)).toMatch(/stopped after waiting 150 ms/);
    expect(await p.lag()).toBe(1);
    const again = await start({
      store,
      name: 'stuck',
      ...fast,
      handler: (_e, ctx) => void attempts.push(ctx.attempt),
    });
    await until(
      () => attempts,
      (a) => a.length === 2,
    );
    expect(attempts).toEqual([1, 2]);
    await until(
      () => again.lag(),
      (n) => n === 0,
    );
  });

  test('metrics, outcomes and lag reflect what happened', async () => {
    const store = newStore();
    const outcomes: ProcessorOutcome[] = [];
    const p = await start({
      store,
      name: 'measured',
      ...fast,
      onOutcome: (o) => outcomes.push(o),
      handler: async (e) => {
        await sleep(3);
        if (amountOf(e) === 3 && outcomesFor(outcomes, e.sequence) === 0) throw new Error('flaky');
      },
    });
    const seqs = await deposits(store, range(6));
    await until(
      () => p.metrics().processed,
      (n) => n === 6,
    );
    await until(
      () => p.lag(),
      (n) => n === 0,
    );

    const m = p.metrics();
    expect(m).toMatchObject({ processed: 6, failed: 1, retried: 0, deadLettered: 0, inFlight: 0 });
    expect(m.handlerMs.avg).toBeGreaterThanOrEqual(2);
    expect(m.handlerMs.max).toBeGreaterThanOrEqual(m.handlerMs.p99);
    expect(m.handlerMs.p99).toBeGreaterThanOrEqual(2);
    expect(outcomes.filter((o) => o.result === 'processed').map((o) => o.sequence)).toEqual(
      expect.arrayContaining(seqs),
    );
    expect(outcomes.find((o) => o.result === 'retry')).toMatchObject({
      sequence: seqs[3],
      attempt: 1,
      error: { name: 'Error', message: 'flaky' },
    });

    await p.stop();
    await deposits(store, [7, 8, 9, 10]);
    expect(await p.lag()).toBe(4);
  });

  test('the handler context carries correlation, causation and trace parent for follow-up events', async () => {
    const store = newStore();
    const p = await start({
      store,
      name: 'auditor',
      filter: { eventType: 'Deposited' },
      ...fast,
      handler: async (e, ctx) => {
        await store.append(account('audit'), { type: 'Audited', data: { of: e.sequence } }, ctx.propagation);
      },
    });
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const [seq] = (await store.append(account('x'), deposit(1), { correlationId: 'flow-1', traceparent }))
      .sequences;
    const source = (await collect(store.read({ eventType: 'Deposited' })))[0]!;

    const [audit] = await until(
      () => collect(store.read({ eventType: 'Audited' })),
      (events) => events.length === 1,
    );
    expect(audit).toMatchObject({
      data: { of: seq },
      correlationId: 'flow-1',
      causationId: source.id,
      traceparent,
    });
    expect(p.metrics().processed).toBe(1); // the Audited event is outside its filter
  });
});

describe('processor: configuration', () => {
  test('a bad policy is refused before anything is created', async () => {
    const store = newStore();
    const attempt = startProcessor({
      store,
      name: 'bad',
      maxDeliver: 2,
      backoffMs: [10, 20],
      handler: () => {},
    });
    await expect(attempt).rejects.toBeInstanceOf(ProcessorConfigError);
    await expect(attempt).rejects.toThrow(/backoffMs has 2 entries but maxDeliver 2 allows only 1 retries/);
    const names: string[] = [];
    for await (const name of jsm.consumers.list(stream)) names.push(name.name);
    expect(names.some((n) => n.endsWith('~bad'))).toBe(false);
  });

  test('a processor without a handler or a store is refused before anything is created', async () => {
    const attempt = start({ store: newStore(), name: 'handless', handler: undefined as never, ...fast });
    await expect(attempt).rejects.toBeInstanceOf(ProcessorConfigError);
    await expect(attempt).rejects.toThrow(/processor "handless": handler must be a function/);
    const storeless = start({ store: undefined as never, name: 'handless', handler: () => {}, ...fast });
    await expect(storeless).rejects.toThrow(/processor "handless": store must be one from createEventStore/);
    const names: string[] = [];
    for await (const name of jsm.consumers.list(stream)) names.push(name.name);
    expect(names.some((n) => n.includes('~handless'))).toBe(false);
  });

  test('a timeoutMs or consumerStream it cannot use is refused before anything is created', async () => {
    const store = newStore();
    const refusals: Array<[Partial<ProcessorOptions<Events>>, RegExp]> = [
      [{ timeoutMs: -1 }, /^invalid timeoutMs -1: use an integer/],
      [{ timeoutMs: 'abc' as unknown as number }, /^invalid timeoutMs "abc"/],
      [{ consumerStream: 'my stream' }, /^invalid consumerStream "my stream"/],
      [{ consumerStream: 'X.*' }, /^invalid consumerStream "X\.\*"/],
    ];
    for (const [options, message] of refusals) {
      const attempt = start({ store, name: 'unusable', handler: () => {}, ...fast, ...options });
      await expect(attempt).rejects.toThrow(message);
    }
    const names: string[] = [];
    for await (const name of jsm.consumers.list(stream)) names.push(name.name);
    expect(names.some((n) => n.includes('~unusable'))).toBe(false);
  });

  test('a changed tunable updates the durable in place; a changed filter is refused', async () => {
    const store = newStore();
    const options = { store, name: 'tuned', filter: { entityType: 'account' }, handler: () => {}, ...fast };
    const p1 = await start(options);
    const before = await jsm.consumers.info(stream, p1.consumer);
    expect(before.config).toMatchObject({ max_ack_pending: 2, max_deliver: 4, ack_wait: 1_000_000_000 });
    expect(before.config.backoff).toBeUndefined();
    await p1.stop();

    const p2 = await start({ ...options, maxAckPending: 7 });
    const after = await jsm.consumers.info(stream, p2.consumer);
    expect(after.config.max_ack_pending).toBe(7);
    expect(after.created).toBe(before.created);
    await p2.stop();

    const moved = start({ ...options, filter: { entityType: 'order' } });
    await expect(moved).rejects.toBeInstanceOf(ProcessorConfigError);
    await expect(moved).rejects.toThrow(/position cannot carry over/);
  });

  test('a stream that removes idle consumers is refused: the durable would start over', async () => {
    const capped = unique('CAPPED');
    await ensureStore(nc, { stream: capped, prefix: capped.toLowerCase() });
    const store = createEventStore<Events>({
      connection: nc,
      tenant: 't',
      prefix: capped.toLowerCase(),
      stream: capped,
    });
    const err = await start({
      store,
      name: 'on-capped',
      handler: () => {},
      ...fast,
      consumerStream: capped,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcessorConfigError);
    expect((err as Error).message).toMatch(/removes idle consumers.*ensureProcessorStream/);
    expect((await jsm.consumers.list(capped).next()).length).toBe(0);
  });

  test('a consumerStream that does not exist names ensureProcessorStream, not ensureStore', async () => {
    const err = await start({
      store: newStore(),
      name: 'no-mirror',
      handler: () => {},
      ...fast,
      consumerStream: unique('NOPE'),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreNotFoundError);
    expect((err as Error).message).toMatch(/ensureProcessorStream\(\)/);
  });

  test("without consumerStream a processor reads the store's mirror, <stream>_WORK", async () => {
    const { origin, store } = await storeOnItsOwnStream('ORIGIN');
    const missing = await start({ store, name: 'default-mirror', handler: () => {}, ...onMirror }).catch(
      (e: unknown) => e,
    );
    expect(missing).toBeInstanceOf(StoreNotFoundError);
    expect((missing as Error).message).toContain(`${origin}_WORK`);
    await ensureProcessorStream(nc, { stream: origin });
    const seen: number[] = [];
    const processor = await start({
      store,
      name: 'default-mirror',
      handler: (e) => void seen.push(e.sequence),
      ...onMirror,
    });
    const [seq] = (await store.append(account('m'), deposit(1))).sequences;
    await until(
      () => seen,
      (s) => s.length === 1,
    );
    expect(seen).toEqual([seq]);
    expect((await jsm.consumers.info(`${origin}_WORK`, processor.consumer)).name).toBe(processor.consumer);
  });

  test('lag counts events the mirror has not copied yet, and those delivered but unsettled', async () => {
    const { origin, store } = await storeOnItsOwnStream('LAGGED');
    await ensureProcessorStream(nc, { stream: origin });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const settled: number[] = [];
    const processor = await start({
      store,
      name: 'lagging',
      handler: async (e) => {
        await gate;
        settled.push(e.sequence);
      },
      ...onMirror,
      ackWaitMs: 10_000,
    });
    for (let round = 0; round < 5; round++) {
      await store.append(account(`l${round}`), [deposit(1), deposit(2), deposit(3)]);
      // Right after the append, before the mirror may have it: the gate holds every handler.
      expect(await processor.lag()).toBe(3 * (round + 1));
    }
    release();
    await until(
      () => settled.length,
      (n) => n === 15,
    );
    await until(
      () => processor.lag(),
      (n) => n === 0,
    );
  });

  test("a processor whose durable is on the store's own stream is not moved to the mirror by default", async () => {
    const store = newStore();
    const before = await start({ store, name: 'stays', handler: () => {}, ...fast });
    await before.stop();
    const err = await start({ store, name: 'stays', handler: () => {}, ...onMirror }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProcessorConfigError);
    expect((err as Error).message).toContain(`consumerStream: '${stream}'`);
  });

  test('processors of the same name on two stores keep their dead letters apart', async () => {
    const other = unique('OTHER');
    await ensureStore(nc, {
      stream: other,
      prefix: other.toLowerCase(),
      storage: 'memory',
      consumerIdleLimitMs: 0,
    });
    const tenant = unique('tenant');
    const here = newStore(nc, tenant);
    const there = createEventStore<Events>({
      connection: nc,
      tenant,
      prefix: other.toLowerCase(),
      stream: other,
    });
    const a = await start({ store: here, name: 'mailer', handler: () => reject('bad address'), ...fast });
    const b = await start({
      store: there,
      name: 'mailer',
      handler: () => {},
      ...fast,
      consumerStream: other,
    });
    const [seq] = (await here.append(account('x'), deposit(1))).sequences;
    await until(
      () => a.deadLetters(),
      (letters) => letters.length === 1,
    );
    expect((await a.deadLetters()).map((l) => l.sequence)).toEqual([seq]);
    expect(await b.deadLetters()).toEqual([]);
    expect(await b.replayDeadLetters()).toEqual([]);
    await b.dismissDeadLetter(seq!);
    expect(await a.deadLetters()).toHaveLength(1);
  });

  test('processors of the same name in two tenants are separate', async () => {
    const a = await start({ store: newStore(), name: 'mailer', handler: () => {}, ...fast });
    const b = await start({ store: newStore(), name: 'mailer', handler: () => {}, ...fast });
    expect(a.durable).not.toBe(b.durable);
    expect(a.durable).toMatch(/~mailer$/);
  });

  test("a processor's consumer name cannot be guessed from its name, and every instance agrees on it", async () => {
    const store = newStore();
    const options = { store, name: 'secret', handler: () => {}, ...fast };
    // Started together: the first to store a name in the dead-letter bucket wins.
    const [a, b] = await Promise.all([start(options), start(options)]);
    expect(a.consumer).toMatch(new RegExp(`^${a.durable}~[0-9a-f]{32}$`));
    expect(b.consumer).toBe(a.consumer);
    const names = (await jsm.consumers.list(stream).next()).map((c) => c.name);
    expect(names.filter((n) => n.startsWith(a.durable))).toEqual([a.consumer]);
    expect(names).not.toContain(a.durable);
    await Promise.all([a.stop(), b.stop()]);
    expect((await start(options)).consumer).toBe(a.consumer);
  });

  test('a lost name record finds the secret-named consumer again, rather than starting over', async () => {
    const store = newStore();
    const seen: number[] = [];
    const options = { store, name: 'forgetful', handler: (e: Event) => void seen.push(e.sequence), ...fast };
    const first = await start(options);
    const done = await deposits(store, range(3));
    await until(
      () => seen.length,
      (n) => n === 3,
    );
    await first.stop();
    // The record is a key like any other: purged by hand, or gone with a recreated bucket.
    const kv = await new Kvm(nc).open('deadletters');
    await kv.purge(`=consumer.${encodeToken('processor', first.durable)}`);
    const again = await start(options);
    expect(again.consumer).toBe(first.consumer);
    const later = await deposits(store, [9]);
    await until(
      () => seen.length,
      (n) => n >= 4,
    );
    await sleep(200);
    expect(seen).toEqual([...done, ...later]);
  });

  test('a consumer named after the processor alone, from before secret names, is adopted', async () => {
    const store = newStore();
    const seen: number[] = [];
    const options = { store, name: 'legacy', handler: (e: Event) => void seen.push(e.sequence), ...fast };
    const durable = durableName(store.tenant, 'legacy');
    const filter = store.format.scheme.filter({});
    // Exactly what an older jetsource made, already past the first two events.
    await jsm.consumers.add(stream, consumerConfig(durable, filter, resolvePolicy('legacy', options)));
    const first = await deposits(store, range(3));
    const legacy = await jetstream(nc).consumers.get(stream, durable);
    for await (const m of await legacy.fetch({ max_messages: 2, expires: 1000 })) m.ack();
    const p = await start(options);
    expect(p.consumer).toBe(durable);
    await until(
      () => seen.length,
      (n) => n >= 1,
    );
    await sleep(200);
    expect(seen).toEqual([first[2]]);
  });
});

/** Subscriptions held by client connections (not the server's internal ones). */
async function clientSubscriptions(): Promise<number> {
  const connz = (await (await fetch(`${t.server.monitorUrl}/connz?subs=1`)).json()) as {
    connections: Array<{ subscriptions_list?: string[] }>;
  };
  return connz.connections.reduce((n, c) => n + (c.subscriptions_list?.length ?? 0), 0);
}

function outcomesFor(outcomes: ProcessorOutcome[], sequence: number): number {
  return outcomes.filter((o) => o.sequence === sequence).length;
}

async function collect<T>(events: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describe('processor on a mirror of the store', () => {
  test('a processor reading the mirror sees every event with the same sequences, and replays by sequence', async () => {
    const mirror = await ensureProcessorStream(nc, { stream });
    expect(mirror).toMatchObject({ stream: `${stream}_WORK`, created: true });
    expect((await ensureProcessorStream(nc, { stream })).created).toBe(false);
    const store = newStore();
    const seqs = await deposits(store, range(6));
    const seen: number[] = [];
    let fail = true;
    const processor = await start({
      store,
      name: unique('mirrored'),
      ...fast,
      consumerStream: mirror.stream,
      maxDeliver: 1,
      backoffMs: [],
      handler: (e) => {
        if (fail && e.sequence === seqs[2]) throw new Error('poison');
        seen.push(e.sequence);
      },
    });
    await until(
      () => seen.length,
      (n) => n === 5,
    );
    expect(seen).toEqual(seqs.filter((s) => s !== seqs[2]));
    fail = false;
    expect(await processor.replayDeadLetter(seqs[2]!)).toMatchObject({
      sequence: seqs[2],
      status: 'processed',
    });
    expect(seen).toContain(seqs[2]);
    expect(await processor.lag()).toBe(0);
  });
});
