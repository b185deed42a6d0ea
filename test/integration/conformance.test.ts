import { afterAll, beforeAll, describe, test } from 'vitest';
import { ensureStore } from '../../src/server.js';
import { conformanceCases, type ConformanceHarness } from '../../src/testing/index.js';
import { jetStreamHarness } from '../support/conformance.js';
import { useServer, type TestServer } from '../support/nats.js';

let t: TestServer;
let harness: ConformanceHarness;

beforeAll(async () => {
  t = await useServer();
  const nc = await t.connect();
  await ensureStore(nc, { stream: 'CONFORMANCE', prefix: 'conf' });
  harness = jetStreamHarness(nc, { stream: 'CONFORMANCE', prefix: 'conf', maxBatch: 50 });
});
afterAll(() => t.close());

describe('JetStream store conformance (WebSocket, real nats-server)', () => {
  for (const c of conformanceCases) test(c.name, () => c.run(harness));
});
