// Reads and appends across a dropped connection. nats.js neither ends a request whose
// answer the drop lost (it waits out its timeout) nor keeps what is sent while it
// reconnects: the store waits for the link and sends again instead.
import { afterEach, expect, test } from 'vitest';
import { filter, firstValueFrom } from 'rxjs';
import { wsconnect, type NatsConnection } from '@nats-io/nats-core';
import { connectionState, createEventStore, UnavailableError, type EventStore } from '../../src/index.js';
import { DeadLetters, ensureStore } from '../../src/server.js';
import { useServer, wsFactory, type TestServer } from '../support/nats.js';

type Events = { Ticked: { n: number } };

let own: TestServer | undefined;
afterEach(async () => {
  await own?.close();
  own = undefined;
});

/** A server of the test's own (it restarts it) and a store with these timeout and retries. */
async function setUp(timeoutMs: number, retries?: number) {
  own = await useServer();
  const nc = await own.connect({ reconnectTimeWait: 100, reconnectJitter: 50 });
  await ensureStore(nc, { stream: 'RECONNECTS', prefix: 'rc' });
  const open = (connection: NatsConnection) =>
    createEventStore<Events>({
      connection,
      tenant: 't',
      prefix: 'rc',
      stream: 'RECONNECTS',
      timeoutMs,
      retries,
    });
  return { nc, store: open(nc), open, server: own.server, own };
}

const entity = { type: 'account', id: 'a' };
const tick = (n: number) => ({ type: 'Ticked' as const, data: { n } });

/** The ids of the entity's stored events. */
async function storedIds(store: EventStore<Events>): Promise<string[]> {
  const ids: string[] = [];
  for await (const e of store.read(entity)) ids.push(e.id);
  return ids;
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

test('a store follows a connection handed in from when it is opened: its first append, made while the connection is down, waits for it', async () => {
  // No retries: sent while down, the append would be lost with the connection's buffer
  // and could only fail as "may have been stored".
  const { open, server } = await setUp(20_000, 0);
  // nats.js's own connect, not jetsource's, which would follow the connection from the start.
  const handedIn = await wsconnect({
    servers: server.wsUrl,
    wsFactory,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
    reconnectJitter: 50,
  });
  try {
    const store = open(handedIn);
    const dropped = (async () => {
      for await (const s of handedIn.status()) if (s.type === 'disconnect') return;
    })();
    await server.kill();
    await dropped;
    const appending = store.append(entity, tick(1), { expect: 'new' });
    await new Promise((r) => setTimeout(r, 300));
    await server.restart();
    const { version } = await appending;
    expect((await store.load(entity, counter)).version).toBe(version);
  } finally {
    await handedIn.close();
  }
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

test('a connection closed while down fails reads and appends at once, as closed', async () => {
  const { nc, store, server } = await setUp(20_000);
  await server.kill();
  await down(nc);
  await nc.close();
  for (const attempt of [store.load(entity, counter), store.append(entity, tick(1))]) {
    const err = await attempt.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/connection is closed.*Connect again/);
  }
}, 10_000);

test('an append in flight at a drop may be stored: without retries, or with the connection down past timeoutMs', async () => {
  for (const retries of [0, 1]) {
    const { nc, store, server, own: testServer } = await setUp(retries === 0 ? 20_000 : 300, retries);
    // Paused, the server takes the append and does not answer; then the client drops the
    // connection (as it does when pings go unanswered).
    server.pause();
    const appending = store.append(entity, [tick(1), tick(2)]).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    await nc.reconnect();
    const err = await appending;
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(
      retries === 0
        ? /connection dropped before an answer came, after 1 attempt.*may have been stored.*Retry with the same event ids/
        : /connection went down.*may have been stored/,
    );
    const ids = (err as UnavailableError).eventIds!;
    expect(ids).toHaveLength(2);
    server.resume();
    await up(nc);
    // The server stores what it was sent before the drop: the retry with the ids is harmless.
    await store.append(
      entity,
      [tick(1), tick(2)].map((e, i) => ({ ...e, id: ids[i] })),
    );
    expect(await storedIds(store)).toEqual(ids);
    await testServer.close();
  }
}, 30_000);

test('an append in flight when its connection is closed may be stored, and says so with its ids', async () => {
  const { nc, store, server, open, own: testServer } = await setUp(20_000);
  server.pause();
  const appending = store.append(entity, tick(1)).catch((e: unknown) => e);
  await new Promise((r) => setTimeout(r, 100));
  // The close itself waits for the paused server to end the WebSocket.
  const closing = nc.close();
  const err = await appending;
  expect(err).toBeInstanceOf(UnavailableError);
  expect((err as Error).message).toMatch(/connection closed before an answer came.*may have been stored/);
  const ids = (err as UnavailableError).eventIds!;
  expect(ids).toHaveLength(1);
  server.resume();
  await closing;
  const again = open(await testServer.connect());
  await again.append(entity, { ...tick(1), id: ids[0] });
  expect(await storedIds(again)).toEqual(ids);
}, 30_000);

test('a connection whose pings go unanswered is down at once, and a read in flight is answered after the reconnect', async () => {
  own = await useServer();
  const nc = await own.connect({ pingInterval: 200, maxPingOut: 1, reconnectTimeWait: 100 });
  await ensureStore(nc, { stream: 'RECONNECTS', prefix: 'rc' });
  const store = createEventStore<Events>({ connection: nc, tenant: 't', prefix: 'rc', stream: 'RECONNECTS' });
  await store.append(entity, tick(1));
  own.server.pause();
  const reading = store.load(entity, counter);
  // Long before the WebSocket gives up on its close (30 s), and before the read's 5 s timeout.
  await down(nc);
  own.server.resume();
  expect((await reading).state).toBe(1);
}, 15_000);

test('dead letters are read and written while the connection comes back', async () => {
  const { nc, server } = await setUp(20_000);
  const letters = await DeadLetters.open(nc, { bucket: 'letters' });
  const letter = { processor: 'EVENTS/mailer', sequence: 7, subject: 'rc.t.account.a.Ticked', attempts: 3 };
  await letters.record({ ...letter, error: { name: 'Error', message: 'refused' } });
  await server.kill();
  await down(nc);
  const reading = letters.get(letter.processor, letter.sequence);
  const recording = letters.record({ ...letter, sequence: 8, error: { name: 'Error', message: 'again' } });
  await new Promise((r) => setTimeout(r, 300));
  await server.restart();
  expect(await reading).toMatchObject(letter);
  await recording;
  expect((await letters.list(letter.processor)).map((l) => l.sequence)).toEqual([7, 8]);
}, 30_000);
