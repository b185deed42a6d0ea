// Users of their own (`users` in config/tenants.json): each reader gets its own inbox
// prefix under the role's, which no other user may subscribe to. Readers who share one
// user see each other's API answers, and so their watches' consumers (see
// tenancy-attacks.test.ts); readers with users of their own do not.
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
// @ts-expect-error -- plain ESM script without types
import { devPassword, inboxPrefix } from '../../scripts/generate-server-config.mjs';
import { createEventStore } from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import { eventually } from '../support/monitor.js';
import { devUser, unique, type TestServer } from '../support/nats.js';
import { useTenantsServer } from '../support/tenancy.js';

let t: TestServer;

beforeAll(async () => {
  t = await useTenantsServer([{ name: 'acme', users: { reader: ['alice', 'bob'] } }]);
  await ensureStore(await t.connect(devUser('acme', 'service')), {});
});
afterAll(() => t.close());

/** A named reader of acme, connected with its own password and inbox prefix. */
const reader = (name: string) =>
  t.connect({
    user: `acme-reader-${name}`,
    pass: (devPassword as (t: string, r: string, u: string) => string)('acme', 'reader', name),
    inboxPrefix: (inboxPrefix as (t: string, r: string, u: string) => string)('acme', 'reader', name),
    apiPrefix: 'JS.API',
    tenant: 'acme',
  });

/** Whether the server lets `nc` subscribe to `subject` (a refusal closes the subscription with an error). */
async function maySubscribe(nc: NatsConnection, subject: string): Promise<boolean> {
  let refused: unknown;
  const sub = nc.subscribe(subject);
  void sub.closed.then((err) => (refused = err));
  await nc.flush();
  await new Promise((r) => setTimeout(r, 100));
  if (!sub.isClosed()) sub.unsubscribe();
  return refused === undefined;
}

test("a reader with a user of its own watches as usual, and another reader can see neither the answers nor the watch's consumer", async () => {
  const [alice, bob] = await Promise.all([reader('alice'), reader('bob')]);
  const service = createEventStore({
    connection: await t.connect(devUser('acme', 'service')),
    tenant: 'acme',
  });
  const entity = { type: 'acct', id: unique('a') };
  const { version } = await service.append(entity, { type: 'Opened', data: {} });
  const seen: Array<number | string> = [];
  const watch = createEventStore({ connection: bob, tenant: 'acme' })
    .watch(entity)
    .subscribe((m) => seen.push(m.kind === 'event' ? m.event.sequence : m.kind));
  await eventually(
    async () => seen.slice(),
    (s) => s.includes('caught-up'),
  );
  const live = await service.append(entity, { type: 'Closed', data: {} });
  await eventually(
    async () => seen.slice(),
    (s) => s.includes(live.version),
  );
  watch.unsubscribe();
  expect(seen).toEqual([version, 'caught-up', live.version]);
  expect(
    await Promise.all(
      ['_INBOX_acme_reader.>', '_INBOX_acme_reader.bob.>', '>'].map((subject) =>
        maySubscribe(alice, subject),
      ),
    ),
  ).toEqual([false, false, false]);
  // Her own inbox is hers: the check above can tell a refusal from a subscription.
  expect(await maySubscribe(alice, '_INBOX_acme_reader.alice.>')).toBe(true);
});
