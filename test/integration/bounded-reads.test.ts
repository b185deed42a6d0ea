import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEventStore, type JetStreamEventStore } from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import { useServer, type TestServer } from '../support/nats.js';

type Events = { Ticked: { n: number } };
const TOTAL = 3000;
const stream = 'BOUNDED';
const clock = { type: 'clock', id: 'c1' };
let t: TestServer;
let nc: NatsConnection;
let store: JetStreamEventStore<Events>;

beforeAll(async () => {
  t = await useServer();
  nc = await t.connect();
  await ensureStore(nc, { stream, prefix: 'bd' });
  store = createEventStore<Events>({ connection: nc, tenant: 'x', prefix: 'bd', stream });
  for (let i = 0; i < TOTAL; i += 1000) {
    const events = Array.from({ length: 1000 }, (_, k) => ({ type: 'Ticked' as const, data: { n: i + k } }));
    await store.append(clock, events);
  }
}, 60_000);
afterAll(() => t.close());

/** The sequences a read returns, and how many consumers it asked the server to create meanwhile. */
async function readWatchingCreates(read: AsyncIterable<{ sequence: number }>) {
  const watcher = await t.connect();
  const creates = watcher.subscribe(`$JS.API.CONSUMER.CREATE.${stream}.>`);
  await watcher.flush();
  const sequences: number[] = [];
  for await (const event of read) sequences.push(event.sequence);
  await nc.flush();
  await watcher.flush();
  const created = creates.getReceived();
  creates.unsubscribe();
  return { sequences, created };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('a read bounded by until within its first page', () => {
  test.each([
    ['the whole store, until 10', {}, { until: 10 }, range(1, 10)],
    ['the whole store, after 5 until 10', {}, { after: 5, until: 10 }, range(6, 10)],
    ['one entity, until 10', clock, { until: 10 }, range(1, 10)],
    ['one entity, after 5 until 10', clock, { after: 5, until: 10 }, range(6, 10)],
  ])('%s: returns just those events and creates no consumer', async (_, target, bounds, expected) => {
    const { sequences, created } = await readWatchingCreates(store.read(target, bounds));
    expect(sequences).toEqual(expected);
    expect(created).toBe(0);
  });
});
