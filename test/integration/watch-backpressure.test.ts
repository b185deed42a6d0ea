// A watch whose events decode asynchronously (an async Standard Schema validator) must not
// let the server push the whole backlog into client memory: flow control is answered only
// once the events before it are emitted, and an entity's catch-up reads its next page
// only once the last one is out.
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstreamManager } from '@nats-io/jetstream';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { filter, firstValueFrom, type Observable } from 'rxjs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createEventStore, type WatchMessage } from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import { eventually } from '../support/monitor.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

type Events = { Padded: { n: number; pad: string } };

let t: TestServer;
let nc: NatsConnection;

beforeAll(async () => {
  t = await useServer();
  nc = await t.connect();
});
afterAll(() => t.close());

/** A validator that holds every decode until `open()`, as a slow one would. */
function gatedSchema(): { schema: StandardSchemaV1<Events['Padded']>; open: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const schema: StandardSchemaV1<Events['Padded']> = {
    '~standard': {
      version: 1,
      vendor: 'test',
      validate: async (value) => {
        await gate;
        return { value: value as Events['Padded'] };
      },
    },
  };
  return { schema, open };
}

const EVENTS = 2000;
const pad = 'x'.repeat(4096);

/**
 * A fresh stream, a writer, and a watcher whose validator holds every decode until the
 * gate opens (schemas also check appends: the writer has none).
 */
async function gatedStores() {
  const stream = unique('BACKPRESSURE');
  const prefix = stream.toLowerCase();
  await ensureStore(nc, { stream, prefix });
  const gate = gatedSchema();
  const options = { connection: nc, tenant: 't', prefix, stream };
  return {
    stream,
    gate,
    writer: createEventStore<Events>(options),
    watcher: createEventStore<Events>({ ...options, schemas: { Padded: gate.schema } }),
  };
}

/** Watches until caught up, collecting each event's `n` into `seen` as it is emitted. */
function collect(watch: Observable<WatchMessage<Events>>, seen: number[]): Promise<unknown> {
  return firstValueFrom(
    watch.pipe(
      filter((m) => {
        if (m.kind === 'event') seen.push(m.event.data.n);
        return m.kind === 'caught-up';
      }),
    ),
  );
}

test('a watch with an async validator holds the server back instead of buffering the backlog', async () => {
  const { stream, gate, writer, watcher } = await gatedStores();
  for (let i = 0; i < EVENTS; i += 100)
    await writer.appendAll(
      Array.from({ length: 100 }, (_, k) => ({
        entity: { type: 'row', id: `r${i + k}` },
        events: [{ type: 'Padded' as const, data: { n: i + k, pad } }],
      })),
    );
  const seen: number[] = [];
  const watching = collect(watcher.watch({ entityType: 'row' }), seen);
  // Nothing can be emitted yet. The server may run ahead by its first flow-control window
  // (2 MB, about 500 of these events), not by the whole backlog (8 MB).
  const jsm = await jetstreamManager(nc);
  const delivered = async () => (await jsm.consumers.list(stream).next())[0]?.delivered.stream_seq ?? 0;
  await eventually(delivered, (n) => n > 0);
  // Time for the rest to arrive, were nothing holding the server back.
  await new Promise((r) => setTimeout(r, 500));
  expect(seen).toEqual([]);
  expect(await delivered()).toBeLessThan(EVENTS / 2);
  gate.open();
  await watching;
  expect(seen).toEqual(Array.from({ length: EVENTS }, (_, i) => i));
}, 30_000);

test("an entity watch with an async validator reads its history's next page only once the last is out", async () => {
  const { stream, gate, writer, watcher } = await gatedStores();
  const row = { type: 'row', id: 'one' };
  for (let i = 0; i < EVENTS; i += 100)
    await writer.append(
      row,
      Array.from({ length: 100 }, (_, k) => ({ type: 'Padded' as const, data: { n: i + k, pad } })),
    );
  const seen: number[] = [];
  const watching = collect(watcher.watch(row), seen);
  // The first page (1000 events) waits on the validator: no consumer for the rest of the
  // history, nor for the live tail, is made meanwhile.
  await new Promise((r) => setTimeout(r, 500));
  const jsm = await jetstreamManager(nc);
  expect(seen).toEqual([]);
  expect(await jsm.consumers.list(stream).next()).toEqual([]);
  gate.open();
  await watching;
  expect(seen).toEqual(Array.from({ length: EVENTS }, (_, i) => i));
}, 30_000);
