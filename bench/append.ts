// Metrics 1 and 2: appends with optimistic concurrency, one event at a time and in
// atomic batches of 100, against raw nats.js sending the very same messages.
import { headers, nuid, type NatsConnection } from '@nats-io/nats-core';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { entity, TENANT, type BenchStore, ENTITY_TYPE } from './fixtures.js';
import { bestRates, compareRates, concurrently, log, metric, perSecond, timed, type Metric } from './lib.js';

const IN_FLIGHT = 64;
const APPENDS_PER_WORKER = 250;
const BATCH = 100;
const BATCH_IN_FLIGHT = 8;
const BATCHES_PER_WORKER = 25;
// Best of several interleaved rounds: the box is shared (2 cores, nats-server on it too).
const ROUNDS = 5;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Raw nats.js writer that puts on the wire what the SDK does: the Es-* headers, the event
 * id as Nats-Msg-Id, the stream and per-entity expectations on the first message, and for batches the
 * ADR-50 headers with the same request/publish/request pattern.
 */
class RawWriter {
  private readonly js: JetStreamClient;

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    private readonly stream: string,
  ) {
    this.js = jetstream(nc);
  }

  /**
   * Appends one event to entity `id` expecting `version` through nats.js's JetStream client
   * (`js.publish`, the headers as above); returns the new version.
   */
  async publish(id: string, version: number): Promise<number> {
    const base = `${this.prefix}.${TENANT}.${ENTITY_TYPE}.${id}`;
    const h = headers();
    h.set('Nats-Msg-Id', crypto.randomUUID());
    h.set('Es-Type', 'Ticked');
    h.set('Es-Time', new Date().toISOString());
    h.set('Es-Tenant', TENANT);
    h.set('Nats-Expected-Stream', this.stream);
    h.set('Nats-Expected-Last-Subject-Sequence', String(version));
    h.set('Nats-Expected-Last-Subject-Sequence-Subject', `${base}.*`);
    const data = encoder.encode(JSON.stringify({ n: 0 }));
    return (await this.js.publish(`${base}.Ticked`, data, { headers: h, timeout: 5000 })).seq;
  }

  /** Appends `count` events to entity `id` expecting `version`; returns the new version. */
  async append(id: string, version: number, count: number): Promise<number> {
    const base = `${this.prefix}.${TENANT}.${ENTITY_TYPE}.${id}`;
    const time = new Date().toISOString();
    const msgs = Array.from({ length: count }, (_, i) => {
      const h = headers();
      h.set('Nats-Msg-Id', crypto.randomUUID());
      h.set('Es-Type', 'Ticked');
      h.set('Es-Time', time);
      h.set('Es-Tenant', TENANT);
      if (i === 0) {
        h.set('Nats-Expected-Stream', this.stream);
        h.set('Nats-Expected-Last-Subject-Sequence', String(version));
        h.set('Nats-Expected-Last-Subject-Sequence-Subject', `${base}.*`);
      }
      return { h, data: encoder.encode(JSON.stringify({ n: i })) };
    });
    const subject = `${base}.Ticked`;
    const send = (m: (typeof msgs)[number]) =>
      this.nc.request(subject, m.data, { headers: m.h, timeout: 5000 });
    if (count === 1) return ackedSeq(await send(msgs[0]!));
    const batchId = nuid.next();
    msgs.forEach((m, i) => {
      m.h.set('Nats-Batch-Id', batchId);
      m.h.set('Nats-Batch-Sequence', String(i + 1));
    });
    msgs[count - 1]!.h.set('Nats-Batch-Commit', '1');
    const first = send(msgs[0]!);
    for (const m of msgs.slice(1, -1)) this.nc.publish(subject, m.data, { headers: m.h });
    const commit = send(msgs[count - 1]!);
    await first;
    return ackedSeq(await commit);
  }
}

function ackedSeq(reply: { data: Uint8Array }): number {
  const ack = JSON.parse(decoder.decode(reply.data)) as { seq?: number; error?: { description: string } };
  if (ack.error || typeof ack.seq !== 'number')
    throw new Error(`append refused: ${ack.error?.description ?? 'no sequence'}`);
  return ack.seq;
}

const events = (count: number) =>
  Array.from({ length: count }, (_, n) => ({ type: 'Ticked' as const, data: { n } }));

/**
 * Rounds of `workers` entities each appended `each` times in a row, every append
 * expecting the version the previous one returned, so nothing conflicts yet every
 * append is checked. Returns appends per second.
 */
async function appendRate(
  workers: number,
  each: number,
  write: (worker: number, version: number) => Promise<number>,
): Promise<number> {
  const versions = new Array<number>(workers).fill(0);
  const ms = await timed(() =>
    concurrently(workers, each, async (w) => void (versions[w] = await write(w, versions[w]!))),
  );
  return perSecond(workers * each, ms);
}

export async function appendBenchmarks(store: BenchStore): Promise<Metric[]> {
  const raw = new RawWriter(store.connection, store.format.scheme.prefix, store.stream);
  let round = 0;
  // Every round writes fresh entities, so each starts at version 0 ("new").
  const sdkOnce = (n: number, workers: number, each: number) => {
    const r = round++;
    return appendRate(workers, each, async (w, version) => {
      const result = await store.append(entity(r * 1000 + w), events(n), { expect: version });
      return result.version;
    });
  };
  const rawOnce = (n: number, workers: number, each: number) => {
    const r = round++;
    return appendRate(workers, each, (w, version) => raw.append(`raw${r * 1000 + w}`, version, n));
  };
  const publishOnce = (workers: number, each: number) => {
    const r = round++;
    return appendRate(workers, each, (w, version) => raw.publish(`pub${r * 1000 + w}`, version));
  };

  log(
    `single appends: ${IN_FLIGHT} in flight, ${IN_FLIGHT * APPENDS_PER_WORKER} per round, best of ${ROUNDS}`,
  );
  await sdkOnce(1, IN_FLIGHT, 20); // warm-up: JIT, server subject index
  await rawOnce(1, IN_FLIGHT, 20);
  await publishOnce(IN_FLIGHT, 20);
  const single = await bestRates(ROUNDS, {
    sdk: () => sdkOnce(1, IN_FLIGHT, APPENDS_PER_WORKER),
    raw: () => rawOnce(1, IN_FLIGHT, APPENDS_PER_WORKER),
    publish: () => publishOnce(IN_FLIGHT, APPENDS_PER_WORKER),
  });

  log(`atomic batches of ${BATCH}: ${BATCH_IN_FLIGHT} in flight, best of ${ROUNDS}`);
  await sdkOnce(BATCH, BATCH_IN_FLIGHT, 2);
  await rawOnce(BATCH, BATCH_IN_FLIGHT, 2);
  const batches = await compareRates(
    ROUNDS,
    () => sdkOnce(BATCH, BATCH_IN_FLIGHT, BATCHES_PER_WORKER),
    () => rawOnce(BATCH, BATCH_IN_FLIGHT, BATCHES_PER_WORKER),
  );

  return [
    metric(`append 1 event, expect version (${IN_FLIGHT} in flight)`, single.sdk, 'events/s', single.raw),
    metric(
      `append 1 event, expect version (${IN_FLIGHT} in flight), vs raw js.publish`,
      single.sdk,
      'events/s',
      single.publish,
    ),
    metric(
      `append batch of ${BATCH}, expect version (${BATCH_IN_FLIGHT} in flight)`,
      batches.sdk,
      'batches/s',
      batches.raw,
    ),
    metric(
      `append batch of ${BATCH}, expect version (${BATCH_IN_FLIGHT} in flight)`,
      batches.sdk * BATCH,
      'events/s',
      batches.raw * BATCH,
    ),
  ];
}
