// Reads and appends across a dropped connection. nats.js neither ends a request whose
// answer the drop lost (it waits out its timeout) nor keeps what is sent while it
// reconnects: the store waits for the link and sends again instead.
import { afterEach, expect, test } from 'vitest';
import { filter, firstValueFrom } from 'rxjs';
import type { NatsConnection } from '@nats-io/nats-core';
import { connectionState, createEventStore, UnavailableError } from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import { useServer, type TestServer } from '../support/nats.js';

type Events = { Ticked: { n: number } };

let own: TestServer | undefined;
afterEach(async () => {
  await own?.close();
  own = undefined;
});

/** A server of the test's own (it restarts it) and a store that waits long for answers. */
async function setUp(timeoutMs: number) {
  own = await useServer();
  const nc = await own.connect({ reconnectTimeWait: 100, reconnectJitter: 50 });
  await ensureStore(nc, { stream: 'RECONNECTS', prefix: 'rc' });
  const store = createEventStore<Events>({
    connection: nc,
    tenant: 't',
    prefix: 'rc',
    stream: 'RECONNECTS',
    timeoutMs,
  });
  return { nc, store, server: own.server };
}

const down = (nc: NatsConnection) =>
  firstValueFrom(connectionState(nc).pipe(filter((s) => s === 'disconnected' || s === 'reconnecting')));
const up = (nc: NatsConnection) => firstValueFrom(connectionState(nc).pipe(filter((s) => s === 'connected')));
const counter = { initial: 0, evolve: (n: number) => n + 1 };

test('reads and appends in flight when the server restarts are answered after the reconnect, not at their timeout', async () => {
  // A minute: a request left to its timeout would outlast the test's 30 s.
  const { store, server } = await setUp(60_000);
  for (let n = 0; n < 20; n++)
    await store.append({ type: 'account', id: `r${n % 4}` }, { type: 'Ticked', data: { n } });
  let running = true;
  let restartedAt = Infinity;
  // Operations that began before the server was back and ended after: one per loop, the
  // one in flight when it went down (a loop is serial, and nothing answers in between).
  const spanning = { reads: 0, appends: 0 };
  const appended: number[] = [];
  const loop = async (kind: keyof typeof spanning, op: () => Promise<void>) => {
    while (running) {
      const began = performance.now();
      await op();
      if (began < restartedAt && performance.now() > restartedAt) spanning[kind]++;
    }
  };
  const loops = [
    ...[0, 1, 2, 3].map((r) =>
      loop('reads', async () => {
        const { state } = await store.load({ type: 'account', id: `r${r}` }, counter);
        expect(state).toBe(5);
      }),
    ),
    loop('appends', async () => {
      const { sequences } = await store.append(
        { type: 'account', id: 'w' },
        { type: 'Ticked', data: { n: 0 } },
      );
      appended.push(...sequences);
    }),
  ];
  await new Promise((r) => setTimeout(r, 300));
  await server.restart();
  restartedAt = performance.now();
  await expect.poll(() => spanning.reads + spanning.appends, { timeout: 20_000 }).toBe(5);
  running = false;
  await Promise.all(loops);
  expect(spanning).toEqual({ reads: 4, appends: 1 });
  // Appends sent again after the drop are stored once.
  const stored: number[] = [];
  for await (const e of store.read({ type: 'account', id: 'w' })) stored.push(e.sequence);
  expect(stored).toEqual(appended);
}, 30_000);

test('a read or an append made while the connection is down waits for it to come back', async () => {
  const { nc, store, server } = await setUp(20_000);
  await server.kill();
  await down(nc);
  const entity = { type: 'account', id: 'a' };
  const appending = store.append(entity, { type: 'Ticked', data: { n: 1 } }, { expect: 'new' });
  const reading = store.load(entity, counter);
  await new Promise((r) => setTimeout(r, 300));
  await server.restart();
  const [{ version }, before] = await Promise.all([appending, reading]);
  expect((await store.load(entity, counter)).version).toBe(version);
  // The read ran after the reconnect, before or after the append.
  expect([0, version]).toContain(before.version);
}, 30_000);

test('past timeoutMs of a connection down, a read fails and an append says it was not sent', async () => {
  const { nc, store, server } = await setUp(300);
  await server.kill();
  await down(nc);
  const entity = { type: 'account', id: 'a' };
  const read = await store.load(entity, counter).catch((e: unknown) => e);
  expect(read).toBeInstanceOf(UnavailableError);
  expect((read as Error).message).toMatch(
    /connection has been down for 300 ms.*Retry once the connection is back/,
  );
  const appended = await store.append(entity, { type: 'Ticked', data: { n: 1 } }).catch((e: unknown) => e);
  expect(appended).toBeInstanceOf(UnavailableError);
  expect((appended as Error).message).toMatch(/down for 300 ms; the append of 1 event\(s\) was not sent/);
  expect((appended as UnavailableError).eventIds).toBeUndefined();
  await server.restart();
  await up(nc);
  expect(await store.version(entity)).toBe(0);
}, 30_000);
