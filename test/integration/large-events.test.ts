import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createEventStore } from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

// Megabyte events (max_payload raised to 4 MiB here), on a server that cuts a client once
// 4 MiB wait unsent for it (max_pending; 64 MiB by default, and a slow link gets there
// too). Reads and retry checks must page in answers the client can drain.
type Events = { Attached: { file: string; body: string } };

const body = 'x'.repeat(900_000);
let t: TestServer;
let nc: NatsConnection;

beforeAll(async () => {
  t = await useServer({ extraConfig: `max_pending: ${4 << 20}\nmax_payload: ${4 << 20}` });
  nc = await t.connect();
  await ensureStore(nc, { stream: 'LARGE', prefix: 'lg' });
});
afterAll(() => t.close());

function open(tenant = unique('t')) {
  return createEventStore<Events>({ connection: nc, tenant, prefix: 'lg', stream: 'LARGE' });
}
const attach = (file: string, id?: string) => ({ type: 'Attached' as const, data: { file, body }, id });
const folder = { type: 'folder', id: 'f1' };

test('an entity of megabyte events reads and loads in full, again and again', async () => {
  const store = open();
  for (let b = 0; b < 3; b++)
    await store.append(
      folder,
      [0, 1, 2, 3].map((i) => attach(`${b}-${i}`)),
    );

  const files: string[] = [];
  for await (const e of store.read(folder)) files.push(e.data.file);
  expect(files).toEqual(['0-0', '0-1', '0-2', '0-3', '1-0', '1-1', '1-2', '1-3', '2-0', '2-1', '2-2', '2-3']);

  // Later loads read the event type they expect while the listing is in flight.
  const evolver = {
    initial: 0,
    evolve: (n: number, e: { data: { body: string } }) => n + e.data.body.length,
  };
  for (let i = 0; i < 3; i++) expect((await store.load(folder, evolver)).state).toBe(12 * body.length);
  expect(nc.isClosed()).toBe(false);
});

test('a retried batch of megabyte events is recognised across several answers', async () => {
  const store = open();
  const batch = [1, 2, 3, 4, 5].map((i) => attach(`r${i}`, `big-retry-${i}`));
  const first = await store.append(folder, batch, { expect: 'new' });
  // The ack was "lost": the same append again must report what is stored, not a conflict.
  const retried = await store.append(folder, batch, { expect: 'new' });
  expect(retried).toEqual(first);
  let count = 0;
  for await (const e of store.read(folder)) count += e.data.body.length === body.length ? 1 : 0;
  expect(count).toBe(5);
});

test('an event bigger than one answer (max_payload raised) still reads, alone in its page', async () => {
  const store = open();
  const huge = 'y'.repeat(2_500_000);
  await store.append(folder, [
    attach('small-1'),
    { type: 'Attached', data: { file: 'huge', body: huge } },
    attach('small-2'),
  ]);
  const files: Array<[string, number]> = [];
  for await (const e of store.read({ entityType: 'folder' })) files.push([e.data.file, e.data.body.length]);
  expect(files).toEqual([
    ['small-1', body.length],
    ['huge', huge.length],
    ['small-2', body.length],
  ]);
});
