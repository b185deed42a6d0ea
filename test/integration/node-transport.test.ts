// Node without a WebSocket: a TCP connection from @nats-io/transport-node, handed to the store.
import { connect as tcpConnect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { filter, firstValueFrom, take, toArray } from 'rxjs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  ConcurrencyError,
  createEventStore,
  openView,
  PermissionDeniedError,
  type EnvelopeOf,
} from '../../src/index.js';
import { ensureStore, ensureViews } from '../../src/server.js';
import { eventually, serverCounts } from '../support/monitor.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

type Bank = { Opened: { owner: string }; Deposited: { amount: number } };

let t: TestServer;
let nc: NatsConnection;
beforeAll(async () => {
  // No tenant config: tenant users may not delete consumers, so the leak check would wait out inactive_threshold.
  t = await useServer();
  nc = await tcpConnect({ servers: t.server.url });
  await ensureStore(nc, {});
});
afterAll(async () => {
  await nc?.close();
  await t?.close();
});

test('append, read and watch over TCP', async () => {
  expect(nc.getServer()).toBe(t.server.url.replace('nats://', ''));
  const store = createEventStore<Bank>({ connection: nc, tenant: unique('tenant') });
  const account = { type: 'account', id: unique('tcp') };

  const opened = await store.append(
    account,
    [
      { type: 'Opened', data: { owner: 'Ann' } },
      { type: 'Deposited', data: { amount: 5 } },
    ],
    { expect: 'new' },
  );
  await expect(
    store.append(account, { type: 'Deposited', data: { amount: 1 } }, { expect: 'new' }),
  ).rejects.toBeInstanceOf(ConcurrencyError);

  const read: EnvelopeOf<Bank>[] = [];
  for await (const e of store.read(account)) read.push(e);
  expect(read.map((e) => [e.type, e.data])).toEqual([
    ['Opened', { owner: 'Ann' }],
    ['Deposited', { amount: 5 }],
  ]);
  expect(read.at(-1)!.sequence).toBe(opened.version);

  // After the first request, so the connection's reply subscriptions are in the baseline.
  const baseline = await serverCounts(t.server);
  // History, caught-up, then a live event appended after the watch caught up.
  const watch = store.watch(account);
  const seen = firstValueFrom(watch.pipe(take(4), toArray()));
  await firstValueFrom(watch.pipe(filter((m) => m.kind === 'caught-up')));
  const live = await store.append(
    account,
    { type: 'Deposited', data: { amount: 7 } },
    { expect: opened.version },
  );
  const messages = await seen;
  expect(messages.map((m) => (m.kind === 'event' ? m.event.sequence : m.kind))).toEqual([
    opened.sequences[0],
    opened.sequences[1],
    'caught-up',
    live.version,
  ]);

  // Both watches are gone: no consumer or subscription left on the server.
  const after = await eventually(
    () => serverCounts(t.server),
    (c) => c.consumers === baseline.consumers && c.subscriptions === baseline.subscriptions,
  );
  expect(after).toEqual(baseline);
});

test("a role account's TCP connection reaches the JetStream API through the store's apiPrefix", async () => {
  const bundled = await useServer({ configFile: 'nats-server.conf' });
  const as = (role: string) =>
    tcpConnect({
      servers: bundled.server.url,
      user: `acme-${role}`,
      pass: `dev-acme-${role}`,
      inboxPrefix: `_INBOX_acme_${role}`,
    });
  const [service, writer] = await Promise.all([as('service'), as('writer')]);
  try {
    await ensureStore(service, {});
    await ensureViews(service);
    const account = { type: 'account', id: unique('tcp') };
    // Not made by connect(), so the connection carries no prefix: the store is told.
    const store = createEventStore<Bank>({ connection: writer, tenant: 'acme', apiPrefix: 'JS.API' });
    const { version } = await store.append(
      account,
      { type: 'Opened', data: { owner: 'Ann' } },
      { expect: 'new' },
    );
    await expect(
      store.append(account, { type: 'Opened', data: { owner: 'Bob' } }, { expect: 'new' }),
    ).rejects.toBeInstanceOf(ConcurrencyError);
    expect((await store.load(account, { initial: 0, evolve: (n) => n + 1 })).state).toBe(1);
    const caughtUp = await firstValueFrom(
      store.watch({ entityType: 'account' }).pipe(filter((m) => m.kind === 'caught-up')),
    );
    expect(caughtUp.sequence).toBe(version);
    expect(await openView(store, { name: 'balances', version: 1 }).get('nobody')).toBeNull();

    const unprefixed = createEventStore<Bank>({ connection: writer, tenant: 'acme' });
    const err = await unprefixed.version(account).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect((err as Error).message).toMatch(/apiPrefix/);
  } finally {
    await Promise.all([service.close(), writer.close()]);
    await bundled.close();
  }
});
