// Node without a WebSocket: a TCP connection from @nats-io/transport-node, handed to the store.
import { connect as tcpConnect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { filter, firstValueFrom, take, toArray } from 'rxjs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ConcurrencyError, createEventStore, type EnvelopeOf } from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
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

  // After the first request, so the connection's shared reply subscription is in the baseline.
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
