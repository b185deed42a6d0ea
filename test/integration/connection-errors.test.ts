import { afterAll, beforeAll, expect, test } from 'vitest';
import { connect, createEventStore, PermissionDeniedError, TenantMismatchError } from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import { devUser, useServer, type TestServer } from '../support/nats.js';

// Connection mistakes a user makes first, each answered with what to change.
let t: TestServer;

beforeAll(async () => {
  t = await useServer({ configFile: 'nats-server.conf' });
  await ensureStore(await t.connectAs('acme', 'service'), {});
});
afterAll(() => t.close());

/** acme-writer's credentials without the inbox prefix its permissions require. */
const { inboxPrefix: _omitted, ...withoutInbox } = devUser('acme', 'writer');

test('a runtime without WebSocket and no wsFactory fails at once, saying what to pass', async () => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'WebSocket');
  delete (globalThis as { WebSocket?: unknown }).WebSocket;
  try {
    await expect(connect({ servers: t.server.wsUrl })).rejects.toThrow(/no WebSocket.*wsFactory/);
  } finally {
    if (saved) Object.defineProperty(globalThis, 'WebSocket', saved);
  }
});

test('a tenant check without the inbox prefix names the inbox prefix', async () => {
  const err = await t.connect({ ...withoutInbox, tenant: 'acme' }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(TenantMismatchError);
  expect((err as Error).message).toMatch(/inboxPrefix/);
});

test('an append whose reply inbox is refused says so, and a retry with the same id stores it once', async () => {
  const wrong = await t.connect(withoutInbox);
  const entity = { type: 'account', id: 'inbox-check' };
  const event = { type: 'Noted', data: {}, id: 'inbox-check-1' };
  const err = await createEventStore({ connection: wrong, tenant: 'acme' })
    .append(entity, event)
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(PermissionDeniedError);
  expect((err as Error).message).toMatch(/inboxPrefix.*retry it with the same event ids/);
  const right = createEventStore({ connection: await t.connectAs('acme', 'writer'), tenant: 'acme' });
  const stored = await right.version(entity);
  expect(stored).toBeGreaterThan(0); // it was published before the reply was refused
  expect((await right.append(entity, event)).version).toBe(stored);
  expect(await right.version(entity)).toBe(stored);
});
