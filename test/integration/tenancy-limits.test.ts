import { connect as tcpConnect } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Subscription } from 'rxjs';
import { Kvm } from '@nats-io/kv';
import { createEventStore, StoreConfigError, UnavailableError } from '../../src/index.js';
import { ensureStore, ensureViews } from '../../src/server.js';
import { eventually } from '../support/monitor.js';
import { devUser, type TestServer } from '../support/nats.js';
import { useTenantsServer } from '../support/tenancy.js';

// Account limits keep one tenant from exhausting the server for the others.
let t: TestServer;

beforeAll(async () => {
  t = await useTenantsServer([
    { name: 'acme', maxConnections: 3, maxSubscriptions: 20 },
    { name: 'globex', maxConnections: 3 },
    { name: 'initech', maxConsumers: 10 },
    { name: 'hooli', maxConsumers: 1 },
  ]);
});
afterAll(() => t.close());

// Limits apply to each of a tenant's accounts: its data account and each client role's.
test('a tenant role at its connection limit cannot connect more, and another tenant still can', async () => {
  const acme = [];
  for (let i = 0; i < 3; i++)
    acme.push(await t.connect({ ...devUser('acme', 'reader'), maxReconnectAttempts: 0 }));
  const extra = () => tcpConnect({ servers: t.server.url, ...devUser('acme', 'reader'), reconnect: false });
  await expect(extra()).rejects.toThrow();
  const other = await t.connect(devUser('globex', 'reader'));
  expect(other.isClosed()).toBe(false);
  // It was the limit: with one acme connection gone, the same connect succeeds.
  await acme[0]!.close();
  const fourth = await extra();
  expect(fourth.isClosed()).toBe(false);
  await fourth.close();
});

// Readers may not delete consumers: after a reconnect each watch's old consumer lingers
// until its idle limit (10 s) while the new one is created, which can pass max_consumers.
test('watches near the account consumer limit survive a reconnect and keep delivering', async () => {
  const service = await t.connect(devUser('initech', 'service'));
  await ensureStore(service, {});
  const writer = createEventStore({ connection: service, tenant: 'initech' });
  const reader = await t.connect({ ...devUser('initech', 'reader'), reconnectTimeWait: 100 });
  const store = createEventStore({ connection: reader, tenant: 'initech' });
  const received = Array.from({ length: 6 }, () => [] as number[]);
  const failures: unknown[] = [];
  let live = 0;
  const subs = received.map((seqs, i) =>
    store.watch({ type: 'counter', id: `c${i}` }, { heartbeatMs: 500 }).subscribe({
      next: (m) => (m.kind === 'event' ? seqs.push(m.event.sequence) : live++),
      error: (err) => failures.push(err),
    }),
  );
  try {
    await eventually(
      async () => live,
      (n) => n === 6,
    );
    // 6 old + 6 new consumers > 10: some creates are refused until the old ones expire.
    reader.reconnect();
    await new Promise((r) => setTimeout(r, 1000));
    for (let i = 0; i < 6; i++)
      await writer.append({ type: 'counter', id: `c${i}` }, { type: 'Added', data: {} });
    const counts = await eventually(
      async () => received.map((seqs) => seqs.length),
      (n) => n.every((c) => c === 1) || failures.length > 0,
      30_000,
    );
    expect(failures).toEqual([]);
    expect(counts).toEqual([1, 1, 1, 1, 1, 1]);
  } finally {
    for (const sub of subs) sub.unsubscribe();
  }
}, 60_000);

test('a watch refused by the consumer limit for longer than old consumers linger fails with UnavailableError', async () => {
  await ensureStore(await t.connect(devUser('hooli', 'service')), {});
  const reader = await t.connect(devUser('hooli', 'reader'));
  const store = createEventStore({ connection: reader, tenant: 'hooli' });
  // The first watch holds the one consumer before the second asks: the server may take
  // two creates in flight in either order.
  let first!: Subscription;
  await new Promise<void>((resolve, reject) => {
    first = store.watch().subscribe({ next: (m) => m.kind === 'caught-up' && resolve(), error: reject });
  });
  const startedAt = Date.now();
  try {
    const err = await new Promise((resolve) =>
      store.watch({}, { heartbeatMs: 500 }).subscribe({ error: resolve }),
    );
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/max_consumers.*Raise/);
    // Retried while the consumers a reconnect leaves behind (10 s idle limit) could expire.
    expect(Date.now() - startedAt).toBeGreaterThan(10_000);
  } finally {
    first.unsubscribe();
  }
}, 60_000);

// The service role may not update its views bucket's stream (so no tenant code can weaken it).
test('a views bucket made before atomic flushes is refused to the service role with what an operator switches on', async () => {
  const service = await t.connect(devUser('globex', 'service'));
  await new Kvm(service).create('views', { history: 1, allow_direct: true });
  const err = await ensureViews(service).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(StoreConfigError);
  expect((err as Error).message).toMatch(/allow_atomic off.*\$JS\.API\.STREAM\.UPDATE\.KV_views/);
});
