import { headers } from '@nats-io/nats-core';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { createEventStore, type JetStreamEventStore } from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import {
  conformanceCases,
  conformanceSchemas,
  type ConformanceEvents,
  type ConformanceHarness,
} from '../../src/testing/index.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

let t: TestServer;
let nc: NatsConnection;
const maxBatch = 50;

beforeAll(async () => {
  t = await useServer();
  nc = await t.connect();
  await ensureStore(nc, { stream: 'CONFORMANCE', prefix: 'conf' });
});
afterAll(() => t.close());

const harness: ConformanceHarness = {
  maxBatch,
  async store({ validated } = {}) {
    return createEventStore<ConformanceEvents>({
      connection: nc,
      tenant: unique('tenant'),
      prefix: 'conf',
      stream: 'CONFORMANCE',
      maxBatch,
      schemas: validated ? conformanceSchemas : undefined,
    });
  },
  async injectRaw(store, raw) {
    const subject = (store as JetStreamEventStore<ConformanceEvents>).format.scheme.event(
      raw.entity,
      raw.eventType,
    );
    const h = headers();
    for (const [k, v] of raw.headers) h.append(k, v);
    await nc.request(subject, raw.data, { headers: h, timeout: 5000 });
  },
};

describe('JetStream store conformance (WebSocket, real nats-server)', () => {
  for (const c of conformanceCases) test(c.name, () => c.run(harness));
});
