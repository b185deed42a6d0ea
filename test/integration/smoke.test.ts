import { afterAll, beforeAll, expect, test } from 'vitest';
import { createEventStore, ensureStore } from '../../src/index.js';
import { useServer, type TestServer } from '../support/nats.js';

let t: TestServer;
beforeAll(async () => {
  t = await useServer();
});
afterAll(() => t.close());

test('smoke', async () => {
  const nc = await t.connect();
  await ensureStore(nc, { stream: 'S1', prefix: 'p1' });
  const store = createEventStore<{ A: { n: number }; B: { s: string } }>({ connection: nc, tenant: 'acme', prefix: 'p1', stream: 'S1' });
  const e = { type: 'x', id: 'a.b' };
  const r1 = await store.append(e, { type: 'A', data: { n: 1 } }, { expect: 'new' });
  const r2 = await store.append(e, [{ type: 'A', data: { n: 2 } }, { type: 'B', data: { s: 'x' } }], { expect: r1.version });
  console.log(r1, r2);
  await expect(store.append(e, { type: 'A', data: { n: 3 } }, { expect: r1.version })).rejects.toThrow(/version 3/);
  const all = [];
  for await (const ev of store.read(e)) all.push(ev);
  console.log(all);
  expect(all.map((x) => x.sequence)).toEqual([1, 2, 3]);
});
