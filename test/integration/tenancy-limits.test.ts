import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tcpConnect } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, test } from 'vitest';
// @ts-expect-error -- plain ESM script without types
import { renderConfig } from '../../scripts/generate-server-config.mjs';
import { devUser, useServer, type TestServer } from '../support/nats.js';

// Account limits keep one tenant from exhausting the server for the others.
let t: TestServer;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jetsource-limits-'));
  const configFile = join(dir, 'limits.conf');
  const spec = {
    prefix: 'es',
    stream: 'EVENTS',
    viewsBucket: 'views',
    tenants: [
      { name: 'acme', maxConnections: 3, maxSubscriptions: 20 },
      { name: 'globex', maxConnections: 3 },
    ],
  };
  await writeFile(configFile, (renderConfig as (s: unknown) => string)(spec));
  t = await useServer({ configFile });
});
afterAll(async () => {
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

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
