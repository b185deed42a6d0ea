import { headers } from '@nats-io/nats-core';
import { lastValueFrom, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createEventStore,
  InvalidArgumentError,
  MalformedEventError,
  PermissionDeniedError,
} from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import { OrderedConsumer } from '../../src/store/jetstream/ordered-consumer.js';
import { useServer, type TestServer } from '../support/nats.js';

type Events = { Noted: { text: string } };
let t: TestServer;

const user = (tenant: string, role: 'reader' | 'service') => t.connectAs(tenant, role);

beforeAll(async () => {
  t = await useServer({ configFile: 'nats-server.conf' });
  const service = await user('acme', 'service');
  await ensureStore(service, {});
  const store = createEventStore<Events>({ connection: service, tenant: 'acme' });
  await store.append({ type: 'note', id: 'n1' }, { type: 'Noted', data: { text: 'first' } });
  // A foreign writer's bytes: not JSON.
  const h = headers();
  h.set('Nats-Msg-Id', 'garbage-1');
  await service.request('es.acme.note.n1.Noted', new TextEncoder().encode('{oops'), {
    headers: h,
    timeout: 5000,
  });
  await store.append({ type: 'note', id: 'n1' }, { type: 'Noted', data: { text: 'third' } });
  await service.close();
}, 30_000);
afterAll(() => t.close());

describe('watch errors', () => {
  test('a malformed event errors the watch by default, with its sequence and bytes', async () => {
    const nc = await user('acme', 'reader');
    const store = createEventStore<Events>({ connection: nc, tenant: 'acme' });
    const err = await lastValueFrom(store.watch({}, { noWait: true })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MalformedEventError);
    expect(new TextDecoder().decode((err as MalformedEventError).raw)).toBe('{oops');
    await nc.close();
  });

  test("onMalformed: 'report' emits it in order and goes on", async () => {
    const nc = await user('acme', 'reader');
    const store = createEventStore<Events>({ connection: nc, tenant: 'acme' });
    const messages = await lastValueFrom(
      store.watch({}, { noWait: true, onMalformed: 'report' }).pipe(toArray()),
    );
    expect(messages.map((m) => m.kind)).toEqual(['event', 'malformed', 'event', 'caught-up']);
    await nc.close();
  });

  test('watching another tenant is a PermissionDeniedError on the error channel, not a hang', async () => {
    const nc = await user('acme', 'reader');
    const store = createEventStore<Events>({ connection: nc, tenant: 'globex' });
    const err = await lastValueFrom(store.watch()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect((err as PermissionDeniedError).subject).toContain('es.globex');
    await nc.close();
  });

  test('a consumer whose API subject nats.js refuses ends with InvalidArgumentError, not endless retries', async () => {
    const nc = await user('acme', 'reader');
    const outcome = await new Promise<unknown>((resolve) => {
      const consumer = new OrderedConsumer(
        { nc, stream: 'EVENTS', apiPrefix: 'JS API', filter: 'es.acme.>', after: 0 },
        { message: () => undefined, caughtUp: () => resolve('caught up'), error: resolve },
      );
      void consumer.start();
      setTimeout(() => resolve('still retrying'), 3000);
    });
    expect(outcome).toBeInstanceOf(InvalidArgumentError);
    expect((outcome as Error).message).toMatch(/^invalid apiPrefix "JS API": it makes no valid API subject/);
    await nc.close();
  });

  test("the longest heartbeat allowed fits ensureStore's default consumer idle cap", async () => {
    const nc = await user('acme', 'reader');
    const store = createEventStore<Events>({ connection: nc, tenant: 'acme' });
    const messages = await lastValueFrom(
      store.watch({}, { noWait: true, onMalformed: 'report', heartbeatMs: 60_000 }).pipe(toArray()),
    );
    expect(messages.map((m) => m.kind)).toEqual(['event', 'malformed', 'event', 'caught-up']);
    await nc.close();
  });
});
