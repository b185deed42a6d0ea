import { afterAll, beforeAll, expect, test } from 'vitest';
import { ensureStore } from '../../src/server.js';
import { quickstart } from '../../examples/quickstart.js';
import { useServer, type TestServer } from '../support/nats.js';

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
  expect(text).toMatch(/conflict: account\/alice-\w+ is at version \d+/);
  expect(text).toMatch(/balances: alice 70, bob 30/);
  expect(text).toMatch(/bob caught up at #\d+ after 2 events/);
  expect(lines.filter((l) => l.includes(' live ')).length).toBe(5);
});
