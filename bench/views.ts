// Materialized views: a projector rebuilding a view into KV against a raw nats.js consumer
// doing the same KV work, and how soon a view watcher sees an append with a live projector.
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { defineView, openView } from '../src/index.js';
import { startProjector } from '../src/server.js';
import { ViewKeys } from '../src/views/define-view.js';
import { ENTITY_TYPE, reopen, type BenchEvents, type BenchStore } from './fixtures.js';
import {
  compareRates,
  LatencyProbe,
  log,
  metric,
  now,
  paced,
  percentile,
  perSecond,
  type Metric,
} from './lib.js';

const KEYS = 20;
const BATCH = 500; // the projector's default, passed explicitly so both sides agree
const REBUILD_ROUNDS = 2;
const VIEW_APPENDS = 200;
const VIEW_WARMUP = 10;
const VIEW_SPACING_MS = 20;

export interface ViewFixtures {
  /** A tenant with 100k events over entities e0…, folded into KEYS keys. */
  history: BenchStore;
  /** An empty stream for live appends; its store's connection is the projector's (the service). */
  live: BenchStore;
  /** A second connection that appends and watches the view, as a browser would. */
  writer: NatsConnection;
}

export async function viewBenchmarks(f: ViewFixtures): Promise<Metric[]> {
  return [
    ...(await rebuild(f.history, 100_000)),
    ...(await viewLatency(f.live, reopen(f.live, { connection: f.writer }))),
  ];
}

type Tally = { count: number; sum: number };
const keyOf = (entityId: string) => `k${Number(entityId.slice(1)) % KEYS}`;
const tally = defineView<Tally, BenchEvents>({
  name: 'tally',
  version: 1,
  filter: {},
  initial: { count: 0, sum: 0 },
  evolve: (s, e) => ({ count: s.count + 1, sum: s.sum + e.data.n }),
  key: (e) => keyOf(e.entity.id),
});

/** startProjector into a fresh bucket, timed until caught up (bucket creation included). */
async function sdkRebuild(store: BenchStore, bucket: string): Promise<number> {
  const start = now();
  const projector = await startProjector(store, tally, { bucket, batchSize: BATCH });
  await Promise.race([projector.caughtUp, projector.done]);
  const ms = now() - start;
  await projector.stop();
  return ms;
}

interface Pending {
  value: { sequence: number; time: string; state: Tally };
  revision: number;
}

/**
 * The same KV writes with nats.js alone, not atomic: a push ordered consumer over the tenant; per batch
 * of BATCH events, each key's value is fetched once (kv.get on first touch, as the
 * projector, which keeps only the current batch in memory), folded in memory, written
 * once with compare-and-set on its revision (pipelined), then one checkpoint put.
 */
async function rawRebuild(store: BenchStore, bucket: string): Promise<number> {
  const start = now();
  const kv = await new Kvm(store.connection).create(bucket, { history: 1, allow_direct: true });
  const keys = new ViewKeys(store.tenant, tally.name);
  const checkpoint = keys.checkpoint(tally.version);
  await kv.get(checkpoint);
  const batch = new Map<string, Pending>();
  let folded = 0;
  let last = 0;
  const flush = async () => {
    await Promise.all(
      [...batch].map(([key, { value, revision }]) => {
        const data = JSON.stringify(value);
        return revision === 0 ? kv.create(key, data) : kv.update(key, data, revision);
      }),
    );
    batch.clear();
    await kv.put(checkpoint, JSON.stringify({ sequence: last }));
  };
  const consumer = await jetstream(store.connection).consumers.getPushConsumer(store.stream, {
    filter_subjects: store.format.scheme.filter({}),
  });
  if ((await consumer.info(true)).num_pending > 0) {
    const messages = await consumer.consume();
    for await (const m of messages) {
      const key = keys.entry(tally.version, keyOf(m.subject.split('.')[3]!));
      let entry = batch.get(key);
      if (!entry) {
        const found = await kv.get(key);
        entry =
          found?.operation === 'PUT'
            ? { value: found.json<Pending['value']>(), revision: found.revision }
            : { value: { sequence: 0, time: '', state: tally.initial }, revision: found?.revision ?? 0 };
        batch.set(key, entry);
      }
      const { state } = entry.value;
      entry.value = {
        sequence: m.seq,
        time: m.headers?.get('Es-Time') ?? '',
        state: { count: state.count + 1, sum: state.sum + m.json<{ n: number }>().n },
      };
      last = m.seq;
      if (++folded % BATCH === 0) await flush();
      if (m.info.pending === 0) break;
    }
    await messages.close();
  }
  await flush();
  await kv.put(keys.active, JSON.stringify({ version: tally.version }));
  const ms = now() - start;
  await consumer.delete();
  return ms;
}

/** Both sides must have folded every event; the bucket goes once checked. */
async function checkAndDrop(store: BenchStore, label: string, bucket: string, expected: number) {
  const kv: KV = await new Kvm(store.connection).open(bucket);
  const keys = new ViewKeys(store.tenant, tally.name);
  let count = 0;
  for (let k = 0; k < KEYS; k++) {
    const found = await kv.get(keys.entry(tally.version, `k${k}`));
    if (found?.operation === 'PUT') count += found.json<{ state: Tally }>().state.count;
  }
  if (count !== expected)
    log(`WARNING: ${label} folded ${count.toLocaleString('en-US')} of ${expected.toLocaleString('en-US')}`);
  await kv.destroy();
}

let buckets = 0;

async function rebuild(store: BenchStore, expected: number): Promise<Metric[]> {
  const name = `projector rebuild, ${expected / 1000}k events → ${KEYS} keys`;
  log(`${name}, best of ${REBUILD_ROUNDS}`);
  const run = async (label: string, side: (store: BenchStore, bucket: string) => Promise<number>) => {
    const bucket = `bench_${label}_${buckets++}`;
    const ms = await side(store, bucket);
    await checkAndDrop(store, label, bucket, expected);
    return perSecond(expected, ms);
  };
  const best = await compareRates(
    REBUILD_ROUNDS,
    () => run('projector', sdkRebuild),
    () => run('raw', rawRebuild),
  );
  const work = `per ${BATCH} events: get + CAS write per key, checkpoint put`;
  return [
    metric(`${name} (raw consumer; ${work})`, best.sdk, 'events/s into KV', best.raw),
    // The same runs, as time: 100k events at the best rate.
    metric(`${name}: rebuild time`, (expected / best.sdk) * 1000, 'ms', (expected / best.raw) * 1000, true),
  ];
}

/** Append → a view watcher (another connection) sees the new value, with a live projector. */
async function viewLatency(service: BenchStore, writer: BenchStore): Promise<Metric[]> {
  log(`view update latency: ${VIEW_APPENDS} appends ${VIEW_SPACING_MS} ms apart, live projector`);
  const bucket = 'bench_live';
  const latest = defineView<number, BenchEvents>({
    name: 'latest',
    version: 1,
    filter: {},
    initial: 0,
    evolve: (_, e) => e.data.n,
  });
  const projector = await startProjector(service, latest, { bucket });
  await projector.caughtUp;
  const probe = new LatencyProbe();
  const live = { type: ENTITY_TYPE, id: 'live' };
  let sub: { unsubscribe(): void } | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      sub = openView<number>(writer, latest, { bucket })
        .watch(live.id)
        .subscribe({
          next: (entry) => {
            resolve(); // the first value (null: no key yet) means loaded
            if (entry) probe.seen(entry.state);
          },
          error: reject,
        });
    });
    await paced(VIEW_WARMUP + VIEW_APPENDS, VIEW_SPACING_MS, async (i) => {
      const n = i + 1;
      if (i >= VIEW_WARMUP) probe.sent(n);
      await writer.append(live, { type: 'Ticked', data: { n } });
    });
    const { samples, missing } = await probe.settle(3_000);
    if (missing > 0) log(`WARNING: the view watcher never saw ${missing} of ${VIEW_APPENDS} appends`);
    const name = `view update latency, append → openView().watch(key)`;
    return [
      metric(`${name}, p50`, percentile(samples, 50), 'ms'),
      metric(`${name}, p99`, percentile(samples, 99), 'ms'),
      metric(`${name}: appends never seen`, missing, 'events'),
    ];
  } finally {
    sub?.unsubscribe();
    await projector.stop();
  }
}
