// Streams, stores and data sets the metric groups share.
import type { NatsConnection } from '@nats-io/nats-core';
import { createEventStore, type EntityRef, type JetStreamEventStore } from '../src/index.js';
import { ensureStore } from '../src/server.js';
import { concurrently } from './lib.js';

/** The one event type every benchmark writes: a tiny payload like {"n":123}. */
export type BenchEvents = { Ticked: { n: number } };
export type BenchStore = JetStreamEventStore<BenchEvents>;

export const TENANT = 'bench';
export const ENTITY_TYPE = 'acct';
export const entity = (i: number): EntityRef => ({ type: ENTITY_TYPE, id: `e${i}` });

/** A fresh stream with its own prefix, and a store on it. */
export async function openStore(
  nc: NatsConnection,
  name: string,
  storage: 'file' | 'memory' = 'file',
): Promise<BenchStore> {
  const prefix = name.toLowerCase();
  await ensureStore(nc, { stream: name, prefix, storage });
  return createEventStore<BenchEvents>({ connection: nc, tenant: TENANT, prefix, stream: name });
}

/** The same stream seen through another connection (a second client) or as another tenant. */
export function reopen(
  store: BenchStore,
  { connection = store.connection, tenant = store.tenant }: { connection?: NatsConnection; tenant?: string },
): BenchStore {
  const { prefix } = store.format.scheme;
  return createEventStore<BenchEvents>({ connection, tenant, prefix, stream: store.stream });
}

/**
 * Writes `perEntity` events to each of `entities` entities in rounds (one event per entity
 * per round), so an entity's events lie far apart as they would in a long-lived stream,
 * and a read of one entity cannot ride on contiguous storage. Each atomic batch carries
 * 1000 entities' events; several batches are in flight (the server allows 50 per stream).
 */
export async function fill(
  store: BenchStore,
  entities: number,
  perEntity: number,
  batch = 1000,
  inFlight = 8,
): Promise<void> {
  const chunks = Math.ceil(entities / batch);
  const total = chunks * perEntity;
  await concurrently(inFlight, Math.ceil(total / inFlight), async (w, i) => {
    const k = i * inFlight + w;
    if (k >= total) return;
    const round = Math.floor(k / chunks);
    const first = (k % chunks) * batch;
    const writes = Array.from({ length: Math.min(batch, entities - first) }, (_, j) => ({
      entity: entity(first + j),
      events: [{ type: 'Ticked' as const, data: { n: round } }],
    }));
    await store.appendAll(writes);
  });
}
