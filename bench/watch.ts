// Live watch: append-to-emission latency, time from subscribe to caught-up, and catch-up
// throughput, store.watch() against a raw nats.js push ordered consumer doing the same.
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { entity, reopen, type BenchStore } from './fixtures.js';
import {
  bestRates,
  LatencyProbe,
  log,
  metric,
  now,
  paced,
  percentile,
  perSecond,
  type Metric,
} from './lib.js';
import { rateOf, rawReplay, type Replay } from './replay.js';

const LIVE_RATE = 1_000; // appends per second
const LIVE_MS = 5_000; // per side, split into alternating rounds
const LIVE_ROUNDS = 2;
const LIVE_WARMUP = 100; // appends per round that are not sampled
const LIVE_TARGET_P99_MS = 10;
const SUBSCRIPTIONS = 20;
const THROUGHPUT_ROUNDS = 3;
const THROUGHPUT_TARGET = 0.9;

export interface WatchFixtures {
  /** An empty stream for live appends; its store's connection is the watcher's. */
  live: BenchStore;
  /** A second connection that appends. */
  writer: NatsConnection;
  /** A tenant with 10k events; another tenant on its stream has none. */
  tenK: BenchStore;
  /** A tenant with 100k events. */
  hundredK: BenchStore;
}

export async function watchBenchmarks(f: WatchFixtures): Promise<Metric[]> {
  return [
    ...(await liveLatency(f.live, reopen(f.live, { connection: f.writer }))),
    ...(await caughtUpTimes(f.tenK)),
    ...(await catchUpThroughput(f.hundredK, 100_000)),
  ];
}

/** Follows new events of the tenant, calling `seen(n)` per event; resolves with a stop once ready. */
type Follower = (store: BenchStore, seen: (n: number) => void) => Promise<() => Promise<void>>;

const sdkFollower: Follower = (store, seen) =>
  new Promise((resolve, reject) => {
    const sub = store.watch({}, { after: 'new' }).subscribe({
      next: (m) => {
        if (m.kind === 'event') seen(m.event.data.n);
        else if (m.kind === 'caught-up') resolve(async () => sub.unsubscribe());
      },
      error: reject,
    });
  });

/** nats.js's push ordered consumer from the stream's end; ready once its inbox subscription is on the server. */
const rawFollower: Follower = async (store, seen) => {
  const consumer = await jetstream(store.connection).consumers.getPushConsumer(store.stream, {
    filter_subjects: store.format.scheme.filter({}),
    deliver_policy: DeliverPolicy.New,
  });
  const messages = await consumer.consume();
  const reading = (async () => {
    for await (const m of messages) seen(m.json<{ n: number }>().n);
  })();
  await store.connection.flush();
  return async () => {
    await messages.close();
    await reading;
    await consumer.delete();
  };
};

let tags = 0;

/** One round: `follow` on the watcher's connection while `writer` appends at LIVE_RATE. */
async function liveRound(follow: Follower, watcher: BenchStore, writer: BenchStore) {
  const probe = new LatencyProbe();
  const stop = await follow(watcher, (n) => probe.seen(n));
  try {
    const count = (LIVE_RATE * LIVE_MS) / 1000 / LIVE_ROUNDS;
    await paced(count, 1000 / LIVE_RATE, async (i) => {
      const n = tags++;
      if (i >= LIVE_WARMUP) probe.sent(n); // the clock starts just before the append call
      await writer.append(entity(i % 100), { type: 'Ticked', data: { n } });
    });
    return await probe.settle(2_000);
  } finally {
    await stop();
  }
}

async function liveLatency(watcher: BenchStore, writer: BenchStore): Promise<Metric[]> {
  log(`live watch: ${LIVE_RATE} appends/s from a second connection, ${LIVE_MS / 1000} s per side`);
  const sdk = { samples: [] as number[], missing: 0 };
  const raw = { samples: [] as number[], missing: 0 };
  for (let r = 0; r < LIVE_ROUNDS; r++) {
    for (const [side, follow] of [
      [raw, rawFollower],
      [sdk, sdkFollower],
    ] as const) {
      const { samples, missing } = await liveRound(follow, watcher, writer);
      side.samples.push(...samples);
      side.missing += missing;
    }
  }
  if (sdk.missing + raw.missing > 0)
    log(`WARNING: appends never seen within 2 s: store.watch ${sdk.missing}, raw consumer ${raw.missing}`);
  const name = `live watch, append→emission (${LIVE_RATE / 1000}k/s from a 2nd connection)`;
  return [
    metric(`${name}, p50`, percentile(sdk.samples, 50), 'ms', percentile(raw.samples, 50), true),
    metric(
      `${name}, p99 (target < ${LIVE_TARGET_P99_MS} ms)`,
      percentile(sdk.samples, 99),
      'ms',
      percentile(raw.samples, 99),
      true,
    ),
    metric(`${name}: appends never seen`, sdk.missing, 'events', raw.missing, true),
  ];
}

/** A bounded watch (`noWait`) of the whole tenant, counting events; it completes once caught up. */
function sdkWatchReplay(store: BenchStore): Promise<Replay> {
  return new Promise((resolve, reject) => {
    let count = 0;
    const start = now();
    store.watch({}, { noWait: true }).subscribe({
      next: (m) => {
        if (m.kind === 'event') count++;
      },
      complete: () => {
        const ms = now() - start;
        resolve({ rate: perSecond(count, ms), count, ms });
      },
      error: reject,
    });
  });
}

async function caughtUpTimes(tenK: BenchStore): Promise<Metric[]> {
  const cases = [
    { label: 'empty filter', store: reopen(tenK, { tenant: 'nobody' }), expected: 0 },
    { label: '10k-event filter', store: tenK, expected: 10_000 },
  ];
  const metrics: Metric[] = [];
  for (const { label, store, expected } of cases) {
    log(`watch subscribe → caught-up, ${label}: ${SUBSCRIPTIONS} subscriptions per side, alternating`);
    const sdk: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < SUBSCRIPTIONS; i++) {
      const s = await sdkWatchReplay(store);
      rateOf(`store.watch (${label})`, expected, s);
      sdk.push(s.ms);
      const r = await rawReplay(store);
      rateOf(`raw consumer (${label})`, expected, r);
      raw.push(r.ms);
    }
    metrics.push(
      metric(
        `watch subscribe → caught-up, ${label}, p50 of ${SUBSCRIPTIONS}`,
        percentile(sdk, 50),
        'ms',
        percentile(raw, 50),
        true,
      ),
    );
  }
  return metrics;
}

async function catchUpThroughput(store: BenchStore, expected: number): Promise<Metric[]> {
  const name = `watch catch-up, ${expected / 1000}k events (noWait)`;
  log(`${name}, best of ${THROUGHPUT_ROUNDS}`);
  const best = await bestRates(THROUGHPUT_ROUNDS, {
    raw: async () => rateOf('raw consumer', expected, await rawReplay(store)),
    rawHeaders: async () =>
      rateOf('raw consumer + headers', expected, await rawReplay(store, undefined, { headers: true })),
    sdk: async () => rateOf('store.watch', expected, await sdkWatchReplay(store)),
  });
  return [
    metric(`${name} (target ≥ ${THROUGHPUT_TARGET}× raw)`, best.sdk, 'events/s', best.raw),
    // The baseline above never decodes headers; the SDK must (type, time, id live there).
    metric(`${name} vs raw consumer that also reads Es-Type`, best.sdk, 'events/s', best.rawHeaders),
  ];
}
