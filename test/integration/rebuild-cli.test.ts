import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createEventStore, defineView, openView } from '../../src/index.js';
import { DeadLetters, ensureStore, startProjector } from '../../src/server.js';
import { views, type AccountSummary, type BankEvents } from '../../demo/src/domain.js';
import { eventually } from '../support/monitor.js';
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
      ...Array.from({ length: 200 }, () => ({ type: 'Deposited' as const, data: { cents: 1 } })),
    ]);
  }
  await nc.close();
}, 60_000);
afterAll(() => t.close());

test('view:rebuild builds a version ahead of its deploy; its projector then resumes and switches readers', async () => {
  const env = { ...process.env, JETSOURCE_WS_URL: t.server.wsUrl, NODE_OPTIONS: '' };
  const tsx = 'node_modules/.bin/tsx';
  const first = await run(tsx, ['scripts/rebuild-view.ts', 'acme', 'balances'], { env });
  expect(first.stderr).toMatch(/\[#{30}\] 100%\s+1005\/1005 events/);
  const second = await run(tsx, ['scripts/rebuild-view.ts', 'acme', 'balances', '--version', '2'], { env });
  expect(second.stderr).toMatch(
    /balances v2 for acme is built up to event #\d+\. Deploy the view at version 2/,
  );
  const nc = await t.connectAs('acme', 'reader', { tenant: 'acme' });
  const view = openView<AccountSummary>({ connection: nc, tenant: 'acme' }, { name: 'balances', version: 1 });
  // Nothing keeps v2 current yet, so readers stay where they were.
  expect(await view.activeVersion()).not.toBe(2);
  // The deploy: v2's projector resumes from the build (no history left) and switches readers.
  const service = await t.connectAs('acme', 'service', { tenant: 'acme' });
  const store = createEventStore<BankEvents>({ connection: service, tenant: 'acme' });
  const deployed = await startProjector(
    store,
    defineView({ ...views.find((v) => v.name === 'balances')!, version: 2 }),
    {
      deadLetters: await DeadLetters.open(service),
    },
  );
  await deployed.caughtUp;
  expect(deployed.progress().done).toBe(0);
  expect(await view.activeVersion()).toBe(2);
  await store.append({ type: 'account', id: 'a3' }, { type: 'Deposited', data: { cents: 5 } });
  await eventually(
    () => view.get('a3'),
    (entry) => entry?.state.balance === 205,
  );
  expect((await view.get('a3'))?.state).toEqual({ owner: 'Owner 3', balance: 205, events: 202 });
  await deployed.stop();
  await service.close();
  await expect(run(tsx, ['scripts/rebuild-view.ts', 'acme', 'nope'], { env })).rejects.toMatchObject({
    stderr: expect.stringContaining('usage: npm run view:rebuild'),
  });
  await nc.close();
}, 60_000);
