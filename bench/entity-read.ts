// Metric 4: loading one 10-event entity, SDK (store.load) against a raw ordered consumer
// per read, on streams of different sizes to show whether latency grows with the stream.
import { jetstream } from '@nats-io/jetstream';
import { entity, type BenchStore } from './fixtures.js';
import { log, metric, now, percentile, random, type Metric } from './lib.js';

const READS = 500;
const WARMUP = 10;
/** Per side: if reads are slow (they are on big streams, see the report), stop sampling early. */
const BUDGET_MS = 12_000;
const MIN_READS = 50;
const counter = { initial: 0, evolve: (n: number) => n + 1 };

/** What one read saw, and any clean-up to run once the clock has stopped. */
interface ReadOutcome {
  count: number;
  cleanup?: () => Promise<unknown>;
}

/**
 * Times `read` on up to READS pseudo-random entities (the same ones for both sides, in
 * the same order) within BUDGET_MS; returns the samples in ms.
 */
async function latencies(
  entities: number,
  expected: number,
  read: (i: number) => Promise<ReadOutcome>,
): Promise<number[]> {
  const pick = random(42);
  const samples: number[] = [];
  const deadline = now() + BUDGET_MS;
  for (let r = 0; r < WARMUP + READS && (samples.length < MIN_READS || now() < deadline); r++) {
    const i = Math.floor(pick() * entities);
    const start = now();
    const { count, cleanup } = await read(i);
    if (r >= WARMUP) samples.push(now() - start);
    await cleanup?.();
    if (count !== expected) throw new Error(`entity e${i}: read ${count} events, expected ${expected}`);
  }
  return samples;
}

export async function entityReadBenchmarks(
  store: BenchStore,
  label: string,
  entities: number,
  perEntity: number,
): Promise<Metric[]> {
  log(`entity reads on the ${label} stream: up to ${READS} each within ${BUDGET_MS / 1000} s`);
  const sdk = await latencies(entities, perEntity, async (i) => ({
    count: (await store.load(entity(i), counter)).state,
  }));

  // What a raw nats.js client does without direct get: a push ordered consumer filtered to
  // the entity (no STREAM.INFO, no pull requests), read until nothing is pending. Deleting
  // it afterwards is needed (else it lingers 5 min) but kept outside the timed section.
  const js = jetstream(store.connection);
  const raw = await latencies(entities, perEntity, async (i) => {
    const consumer = await js.consumers.getPushConsumer(store.stream, {
      filter_subjects: store.format.scheme.entity(entity(i)),
    });
    let count = 0;
    if ((await consumer.info(true)).num_pending > 0) {
      const messages = await consumer.consume();
      for await (const m of messages) {
        m.json();
        count++;
        if (m.info.pending === 0) break;
      }
      await messages.close();
    }
    return { count, cleanup: () => consumer.delete() };
  });

  log(`  sampled ${sdk.length} SDK reads, ${raw.length} raw reads`);
  return [
    metric(
      `entity read (${perEntity} events) p50, ${label} stream`,
      percentile(sdk, 50),
      'ms',
      percentile(raw, 50),
      true,
    ),
    metric(
      `entity read (${perEntity} events) p99, ${label} stream`,
      percentile(sdk, 99),
      'ms',
      percentile(raw, 99),
      true,
    ),
  ];
}
