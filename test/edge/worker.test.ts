// The Cloudflare Worker example in workerd (Miniflare), built from dist/ as users get it,
// talking WebSocket to a nats-server with the bundled tenant config.
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEventStore } from '../../src/index.js';
import { ensureStore, startProjector, type Projector } from '../../src/server.js';
import { balances, schemas, type Bank } from '../../examples/cloudflare-worker/src/bank.js';
import { jetsourceAt } from '../support/bundle.js';
import { ensureDist } from '../support/dist.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

const workerEntry = fileURLToPath(new URL('../../examples/cloudflare-worker/src/worker.ts', import.meta.url));
const role = (name: string) => ({
  NATS_USER: `acme-${name}`,
  NATS_PASS: `dev-acme-${name}`,
  NATS_INBOX_PREFIX: `_INBOX_acme_${name}`,
  NATS_API_PREFIX: 'JS.API',
});

let t: TestServer;
let mf: Miniflare;
let projector: Projector;

async function buildWorker(): Promise<string> {
  const result = await build({
    entryPoints: [workerEntry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    conditions: ['worker', 'browser'],
    target: 'es2022',
    logLevel: 'silent',
    plugins: [jetsourceAt(await ensureDist())],
  });
  return result.outputFiles[0]!.text;
}

beforeAll(async () => {
  const [script, server] = await Promise.all([buildWorker(), useServer({ configFile: 'nats-server.conf' })]);
  t = server;
  const service = await t.connectAs('acme', 'service');
  await ensureStore(service, {});
  // The backend keeps the view up to date; the worker only reads it.
  projector = await startProjector(
    createEventStore<Bank>({ connection: service, tenant: 'acme', schemas }),
    balances,
  );
  await projector.caughtUp;
  const worker = (name: string) => ({
    name,
    modules: true,
    script,
    compatibilityDate: '2025-09-01',
    routes: [`${name}.test/*`],
    bindings: { NATS_URL: t.server.wsUrl, TENANT: 'acme', ...role(name) },
  });
  mf = new Miniflare({ workers: [worker('writer'), worker('reader')] });
  await mf.ready;
}, 60_000);

afterAll(async () => {
  await projector?.stop();
  await mf?.dispose();
  await t?.close();
});

async function call(worker: 'writer' | 'reader', path: string, init?: { method: string; body: string }) {
  const response = await mf.dispatchFetch(`http://${worker}.test${path}`, init);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
const deposit = (id: string, body: unknown, worker: 'writer' | 'reader' = 'writer') =>
  call(worker, `/accounts/${encodeURIComponent(id)}/deposit`, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('a Cloudflare Worker on jetsource, in workerd', () => {
  test('appends with expectations and reads the projected view', async () => {
    const id = unique('alice.');
    const first = await deposit(id, { amount: 25, expect: 'new' });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ id, sequences: [expect.any(Number)] });
    const version = first.body.version as number;
    expect(version).toBeGreaterThan(0);

    const second = await deposit(id, { amount: 15, expect: version });
    expect(second.status).toBe(200);
    expect(second.body.version).toBeGreaterThan(version);

    // The projector runs in Node; the worker reads its KV view over the same WebSocket.
    await expect
      .poll(async () => (await call('writer', `/accounts/${encodeURIComponent(id)}`)).body, {
        timeout: 10_000,
      })
      .toEqual({ id, version: second.body.version, balance: { amount: 40, asOf: second.body.version } });
  });

  test('a stale expectation is a 409 with the versions', async () => {
    const id = unique('bob');
    const { body } = await deposit(id, { amount: 5, expect: 'new' });
    await deposit(id, { amount: 5, expect: body.version });
    const stale = await deposit(id, { amount: 5, expect: body.version });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({
      error: 'CONCURRENCY',
      message: expect.stringContaining(`not ${body.version}`),
    });
    expect((await deposit(id, { amount: 5, expect: 'new' })).status).toBe(409);
  });

  test('a reader may read but not append: 403', async () => {
    const id = unique('carol');
    await deposit(id, { amount: 5 });
    const denied = await deposit(id, { amount: 5 }, 'reader');
    expect(denied).toMatchObject({ status: 403, body: { error: 'PERMISSION_DENIED' } });
    expect(denied.body.message).toMatch(/readers cannot append/);
    const read = await call('reader', `/accounts/${id}`);
    expect(read.status).toBe(200);
    expect(read.body.version).toBeGreaterThan(0);
  });

  test('bad input is a 400 that says what is wrong', async () => {
    const cases: Array<[unknown, string, RegExp]> = [
      ['{"amount": ', 'BAD_JSON', /must be JSON/],
      [[25], 'BAD_JSON', /JSON object/],
      [{ amount: -5 }, 'VALIDATION', /Deposited is invalid: amount: must be a positive number/],
      [{ amount: '5' }, 'VALIDATION', /amount: must be a positive number/],
      [{ amount: 5, expect: 'soon' }, 'BAD_EXPECT', /expect must be "new", "any" or a version number/],
    ];
    for (const [body, error, message] of cases) {
      const response = await deposit(unique('dave'), body);
      expect(response, JSON.stringify(body)).toMatchObject({ status: 400, body: { error } });
      expect(response.body.message).toMatch(message);
    }
    const badPath = await call('writer', '/accounts/%E0%A4%A/deposit', { method: 'POST', body: '{}' });
    expect(badPath).toMatchObject({ status: 400, body: { error: 'BAD_PATH' } });
    expect((await call('writer', '/nowhere')).status).toBe(404);
  });
});
