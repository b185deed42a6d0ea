import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { ensureStore } from '../../src/server.js';
import { quickstart } from '../../examples/quickstart.js';
import { useServer, type TestServer } from '../support/nats.js';

const run = promisify(execFile);
const tsx = 'node_modules/.bin/tsx';
let t: TestServer;
beforeAll(async () => {
  t = await useServer({ configFile: 'nats-server.conf' });
  await ensureStore(await t.connectAs('acme', 'service'), {});
});
afterAll(() => t.close());

test('the README quick start runs against the bundled config', async () => {
  const lines: string[] = [];
  await quickstart(t.server.wsUrl, (line) => lines.push(line));
  const text = lines.join('\n');
  expect(text).toMatch(/conflict: wallet\/alice-\w+ is at version \d+/);
  expect(text).toMatch(/balances: alice 70, bob 30/);
  expect(text).toMatch(/bob's deposits: 30/);
  expect(text).toMatch(/bob caught up at #\d+ after 2 events/);
  expect(lines.filter((l) => l.includes(' live ')).length).toBe(5);
});

test('run as a file, the quick start targets JETSOURCE_WS_URL, and a second run works too', async () => {
  const env = { ...process.env, JETSOURCE_WS_URL: t.server.wsUrl, NODE_OPTIONS: '' };
  for (let i = 0; i < 2; i++) {
    const { stdout } = await run(tsx, ['examples/quickstart.ts'], { env });
    expect(stdout).toMatch(/balances: alice 70, bob 30/);
  }
});

test('npm run example starts its own server and runs the quick start', async () => {
  const { stdout } = await run(tsx, ['scripts/example.ts'], { env: { ...process.env, NODE_OPTIONS: '' } });
  expect(stdout).toMatch(/quick start against a temporary nats-server at ws:\/\/127\.0\.0\.1:\d+/);
  expect(stdout).toMatch(/balances: alice 70, bob 30/);
}, 60_000);

test('run as a file with no server, the quick start says what to start', async () => {
  const env = { ...process.env, JETSOURCE_WS_URL: 'ws://127.0.0.1:9', NODE_OPTIONS: '' };
  const failed = await run(tsx, ['examples/quickstart.ts'], { env }).catch((err: { stderr: string }) => err);
  expect(failed).toMatchObject({ stderr: expect.stringContaining('npm start') });
});
