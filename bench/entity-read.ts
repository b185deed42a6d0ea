// Metric 4: loading one 10-event entity, SDK (store.load) against what a raw nats.js client
// does, on streams of different sizes to show whether latency grows with the stream. Also
// how long a watch of one entity takes to catch up, the same question for live views.
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { entity, type BenchStore } from './fixtures.js';
import { log, metric, now, percentile, random, type Metric } from './lib.js';
import { drainConsumer } from './replay.js';

const READS = 500;
const WARMUP = 10;
/** Per side: if reads are slow (raw ones are on big streams, see the report), stop sampling early. */
const BUDGET_MS = 12_000;
const MIN_READS = 50;
const WATCHES = 30;
const counter = { initial: 0, evolve: (n: number) => n + 1 };

/** What one read saw, and any clean-up to run once the clock has stopped. */
interface ReadOutcome {
  count: number;
  cleanup?: () => Promise<unknown>;
}

/**
 * Times `read` on up to `reads` pseudo-random entities (the same ones for every side, in
 * the same order) within BUDGET_MS; returns the samples in ms.
 */
async function latencies(
  entities: number,
  expected: number,
  read: (i: number) => Promise<ReadOutcome>,
  reads = READS,
): Promise<number[]> {
  const pick = random(42);
  const samples: number[] = [];
  const deadline = now() + BUDGET_MS;
  for (let r = 0; r < WARMUP + reads && (samples.length < MIN_READS || now() < deadline); r++) {
    const i = Math.floor(pick() * entities);
    const start = now();
    const { count, cleanup } = await read(i);
    if (r >= WARMUP) samples.push(now() - start);
    await cleanup?.();
    if (count !== expected) throw new Error(`entity e${i}: read ${count} events, expected ${expected}`);
  }
  return samples;
}

/**
 * Times several sides reading the same pseudo-random entities, taking turns read by read
 * (each round starting with the next side), so a machine that speeds up or slows down
 * during the run weighs on all sides alike. Each side stops after `reads` samples, or
 * once it has spent BUDGET_MS and has MIN_READS. Returns each side's samples in ms.
 */
async function alternating<K extends string>(
  entities: number,
  expected: number,
  sides: Record<K, (i: number) => Promise<ReadOutcome>>,
  reads = READS,
): Promise<Record<K, number[]>> {
  const names = Object.keys(sides) as K[];
  const samples = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  const spent = Object.fromEntries(names.map((n) => [n, 0])) as Record<K, number>;
  const done = (n: K) =>
    samples[n].length >= reads || (samples[n].length >= MIN_READS && spent[n] > BUDGET_MS);
  const pick = random(42);
  for (let r = 0; !names.every(done); r++) {
    const i = Math.floor(pick() * entities);
    for (let k = 0; k < names.length; k++) {
      const name = names[(r + k) % names.length]!;
      if (done(name)) continue;
      const start = now();
      const { count, cleanup } = await sides[name](i);
      const took = now() - start;
      if (r >= WARMUP) {
        samples[name].push(took);
        spent[name] += took;
      }
      await cleanup?.();
      if (count !== expected)
        throw new Error(`${name}, entity e${i}: read ${count} events, expected ${expected}`);
    }
  }
  return samples;
}

/**
 * A raw nats.js ordered consumer filtered to the entity (no STREAM.INFO, no pull requests),
 * read until nothing is pending. Deleting it afterwards is needed (else it lingers) but is
 * clean-up, outside the timed section.
 */
async function rawConsumerRead(nc: NatsConnection, store: BenchStore, i: number): Promise<ReadOutcome> {
  const consumer = await jetstream(nc).consumers.getPushConsumer(store.stream, {
    filter_subjects: store.format.scheme.entity(entity(i)),
  });
  return { count: await drainConsumer(consumer), cleanup: () => consumer.delete() };
}

export async function entityReadBenchmarks(
  store: BenchStore,
  label: string,
  entities: number,
  perEntity: number,
): Promise<Metric[]> {
  log(
    `entity reads on the ${label} stream: up to ${READS} per side within ${BUDGET_MS / 1000} s, taking turns`,
  );

  // The cheapest raw read: one direct batch get on the entity's subject filter.
  const direct = (await jetstreamManager(store.connection, { checkAPI: false })).direct;
  const batchGet = (subject: string) => async () => {
    const batch = await direct.getBatch(store.stream, { seq: 1, next_by_subj: subject, batch: 1000 });
    let count = 0;
    for await (const m of batch) {
      m.json();
      count++;
    }
    return { count };
  };
  const { sdk, rawDirect, rawLiteral } = await alternating(entities, perEntity, {
    sdk: async (i) => ({ count: (await store.load(entity(i), counter)).state }),
    rawDirect: (i) => batchGet(store.format.scheme.entity(entity(i)))(),
    // The server's floor: the same get on the entity's one literal subject, which a raw
    // client can only use when it knows the entity has one event type (these have).
    rawLiteral: (i) => batchGet(store.format.scheme.event(entity(i), 'Ticked'))(),
  });
  const rawConsumer = await latencies(entities, perEntity, (i) =>
    rawConsumerRead(store.connection, store, i),
  );

  log(
    `  sampled ${sdk.length} SDK reads, ${rawDirect.length} + ${rawLiteral.length} raw direct gets, ${rawConsumer.length} raw consumers`,
  );
  const name = `entity read (${perEntity} events)`;
  return [
    metric(`${name} p50, ${label} stream`, percentile(sdk, 50), 'ms', percentile(rawDirect, 50), true),
    metric(`${name} p99, ${label} stream`, percentile(sdk, 99), 'ms', percentile(rawDirect, 99), true),
    metric(
      `${name} p50, ${label} stream, vs raw batch get on its literal subject (the server's floor)`,
      percentile(sdk, 50),
      'ms',
      percentile(rawLiteral, 50),
      true,
    ),
    metric(
      `${name} p50, ${label} stream, vs raw ordered consumer`,
      percentile(sdk, 50),
      'ms',
      percentile(rawConsumer, 50),
      true,
    ),
  ];
}

/** Subscribe → caught-up for a watch of one entity, against a raw ordered consumer on its filter. */
export async function entityWatchBenchmarks(
  store: BenchStore,
  label: string,
  entities: number,
  perEntity: number,
): Promise<Metric[]> {
  log(`entity watches on the ${label} stream: up to ${WATCHES} per side`);
  const sdk = await latencies(
    entities,
    perEntity,
    (i) =>
      new Promise<ReadOutcome>((resolve, reject) => {
        let count = 0;
        store.watch(entity(i), { noWait: true }).subscribe({
          next: (m) => void (m.kind === 'event' && count++),
          complete: () => resolve({ count }),
          error: reject,
        });
      }),
    WATCHES,
  );
  const raw = await latencies(
    entities,
    perEntity,
    (i) => rawConsumerRead(store.connection, store, i),
    WATCHES,
  );
  return [
    metric(
      `watch one entity (${perEntity} events): subscribe → caught-up p50, ${label} stream`,
      percentile(sdk, 50),
      'ms',
      percentile(raw, 50),
      true,
    ),
  ];
}
