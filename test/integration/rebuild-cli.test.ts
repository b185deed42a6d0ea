import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createEventStore, openView } from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import type { AccountSummary, BankEvents } from '../../demo/src/domain.js';
import { useServer, type TestServer } from '../support/nats.js';

const run = promisify(execFile);
let t: TestServer;

beforeAll(async () => {
  t = await useServer({ configFile: 'nats-server.conf' });
  const nc = await t.connectAs('acme', 'service');
  await ensureStore(nc, {});
  const store = createEventStore<BankEvents>({ connection: nc, tenant: 'acme' });
  for (let i = 0; i < 5; i++) {
    await store.append({ type: 'account', id: `a${i}` }, [
      { type: 'AccountOpened', data: { owner: `Owner ${i}` } },
      ...Array.from({ length: 200 }, () => ({ type: 'Deposited' as const, data: { amount: 1 } })),
    ]);
  }
  await nc.close();
}, 60_000);
afterAll(() => t.close());

test('view:rebuild builds a new version with a progress bar, then readers switch to it', async () => {
  const env = { ...process.env, JETSOURCE_WS_URL: t.server.wsUrl, NODE_OPTIONS: '' };
  const tsx = 'node_modules/.bin/tsx';
  const first = await run(tsx, ['scripts/rebuild-view.ts', 'acme', 'balances'], { env });
  expect(first.stderr).toMatch(/\[#{30}\] 100%\s+1005\/1005 events/);
  const second = await run(tsx, ['scripts/rebuild-view.ts', 'acme', 'balances', '--version', '2'], { env });
  expect(second.stderr).toContain('balances v2 for acme is built and serving');
  const nc = await t.connectAs('acme', 'reader', { tenant: 'acme' });
  const view = openView<AccountSummary>({ connection: nc, tenant: 'acme' }, { name: 'balances', version: 1 });
  expect(await view.activeVersion()).toBe(2);
  expect((await view.get('a3'))?.state).toEqual({ owner: 'Owner 3', balance: 200, events: 201 });
  await expect(run(tsx, ['scripts/rebuild-view.ts', 'acme', 'nope'], { env })).rejects.toMatchObject({
    stderr: expect.stringContaining('usage: npm run view:rebuild'),
  });
  await nc.close();
}, 60_000);
