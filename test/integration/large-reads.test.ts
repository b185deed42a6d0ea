import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEventStore, type JetStreamEventStore } from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import { useServer, type TestServer } from '../support/nats.js';

type Events = { Ticked: { n: number; pad: string } };
const TOTAL = 60_000;
let t: TestServer;
let nc: NatsConnection;
let store: JetStreamEventStore<Events>;

beforeAll(async () => {
  t = await useServer();
  nc = await t.connect();
  await ensureStore(nc, { stream: 'LARGE', prefix: 'big' });
  store = createEventStore<Events>({ connection: nc, tenant: 'x', prefix: 'big', stream: 'LARGE' });
  // Interleaved entities and ~300-byte payloads, so flow control kicks in during replay.
  const pad = 'x'.repeat(300);
  for (let i = 0; i < TOTAL; i += 1000) {
    await store.appendAll(
      Array.from({ length: 10 }, (_, e) => ({
        entity: { type: 'clock', id: `c${e}` },
        events: Array.from({ length: 100 }, (_, k) => ({
          type: 'Ticked' as const,
          data: { n: i + e * 100 + k, pad },
        })),
      })),
    );
  }
}, 120_000);
afterAll(() => t.close());

describe('large reads hand off to a consumer and still deliver everything', () => {
  test(`a slow reader gets all ${TOTAL} events, in order, exactly once`, async () => {
    let count = 0;
    let last = 0;
    for await (const event of store.read()) {
      expect(event.sequence).toBeGreaterThan(last);
      last = event.sequence;
      // Stall longer than the idle heartbeat (2 s), so the server's flow control waits for
      // us and reports the stall: a stalled heartbeat must not read as "caught up".
      if (++count === 20_000) await new Promise((r) => setTimeout(r, 2_500));
    }
    expect(count).toBe(TOTAL);
    expect(last).toBe(await store.lastSequence());
  }, 120_000);

  test('until stops a bulk read exactly there', async () => {
    let count = 0;
    for await (const _ of store.read({}, { after: 10, until: 40_010 })) count++;
    expect(count).toBe(40_000);
  }, 60_000);
});
