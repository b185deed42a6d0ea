import { afterAll, beforeAll, expect, test } from 'vitest';
import { firstValueFrom } from 'rxjs';
import {
  AuthenticationError,
  connect,
  createEventStore,
  defineView,
  InvalidArgumentError,
  openView,
  PermissionDeniedError,
  StoreNotFoundError,
  UnavailableError,
  type ReadTarget,
} from '../../src/index.js';
import {
  ensureProcessorStream,
  ensureStore,
  ensureViews,
  startProcessor,
  startProjector,
} from '../../src/server.js';
import { startNatsServer } from '../../src/testing/index.js';
import { devUser, useServer, wsFactory, type TestServer } from '../support/nats.js';

// Connection mistakes a user makes first, each answered with what to change.
let t: TestServer;

beforeAll(async () => {
  t = await useServer({ configFile: 'nats-server.conf' });
  await ensureStore(await t.connectAs('acme', 'service'), {});
});
afterAll(() => t.close());

/** acme-writer's credentials without the inbox prefix its permissions require. */
const { inboxPrefix: _omitted, ...withoutInbox } = devUser('acme', 'writer');

test('a runtime without WebSocket and no wsFactory fails at once, saying what to pass', async () => {
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'WebSocket');
  delete (globalThis as { WebSocket?: unknown }).WebSocket;
  try {
    const err = await connect({ servers: t.server.wsUrl }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/^invalid wsFactory: this runtime has no WebSocket.*wsFactory/);
  } finally {
    if (saved) Object.defineProperty(globalThis, 'WebSocket', saved);
  }
});

test('a wsFactory that fails rejects at once, naming it and keeping its error', async () => {
  const missing = new Error('ws module missing');
  const factories = [
    async () => Promise.reject(missing),
    () => {
      throw missing;
    },
  ];
  for (const failing of factories) {
    const started = Date.now();
    const err = await connect({ servers: t.server.wsUrl, wsFactory: failing }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/^invalid wsFactory: it made no WebSocket .*ws module missing/);
    expect((err as Error).cause).toBe(missing);
    expect(Date.now() - started).toBeLessThan(2000);
  }
  const noSocket = async () => ({}) as Awaited<ReturnType<typeof wsFactory>>;
  const err = await connect({ servers: t.server.wsUrl, wsFactory: noSocket }).catch((e: unknown) => e);
  expect((err as Error).message).toMatch(/invalid wsFactory: .*returned no \{ socket, encrypted \}/);
});

test('a wsFactory that never makes a socket fails at the connect timeout, and one made late is closed', async () => {
  // When the late socket was made, and when it closed (nats-server itself drops a socket
  // that sends no CONNECT, but only after seconds).
  let madeAt = 0;
  let closedAt = 0;
  const slow = () =>
    new Promise<Awaited<ReturnType<typeof wsFactory>>>((resolve) =>
      setTimeout(async () => {
        const made = await wsFactory(t.server.wsUrl, {});
        madeAt = Date.now();
        made.socket.addEventListener('close', () => (closedAt = Date.now()));
        resolve(made);
      }, 600),
    );
  for (const factory of [() => new Promise<never>(() => {}), slow]) {
    const started = Date.now();
    const err = await connect({ servers: t.server.wsUrl, timeout: 300, wsFactory: factory }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(
      /^invalid wsFactory: it made no WebSocket .*within the connect timeout \(300 ms\)/,
    );
    expect(Date.now() - started).toBeLessThan(2000);
  }
  await expect.poll(() => closedAt, { timeout: 3000 }).toBeGreaterThan(0);
  expect(closedAt - madeAt).toBeLessThan(500);
});

test('a connect timeout that fires in a busy turn, with nats.js timing out alongside, still ends the connect', async () => {
  // The loop is busy from 400 to 600 ms: jetsource's deadline (450) and nats.js's (500)
  // then fire in one turn, before the failed socket can report its error.
  const busy = setTimeout(() => {
    const until = Date.now() + 200;
    while (Date.now() < until);
  }, 400);
  const err = await connect({
    servers: t.server.wsUrl,
    timeout: 500,
    wsFactory: () => new Promise<never>(() => {}),
  })
    .catch((e: unknown) => e)
    .finally(() => clearTimeout(busy));
  expect(err).toBeInstanceOf(InvalidArgumentError);
}, 5000);

test('timeout 0 is nats.js default, not no time for the factory', async () => {
  const slow: typeof wsFactory = async (url, options) => {
    await new Promise((done) => setTimeout(done, 30));
    return wsFactory(url, options);
  };
  const nc = await t.connectAs('acme', 'writer', { timeout: 0, wsFactory: slow });
  expect(nc.isClosed()).toBe(false);
  await nc.close();
});

test('an apiPrefix that cannot prefix a subject is refused before connecting', async () => {
  const err = await t.connect({ apiPrefix: 'bad prefix' }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(InvalidArgumentError);
  expect((err as Error).message).toMatch(/^invalid apiPrefix "bad prefix": use a subject prefix such as/);
});

test('a server address that is no URL is an InvalidArgumentError naming it', async () => {
  const err = await connect({ servers: 'ws://', wsFactory }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(InvalidArgumentError);
  expect((err as Error).message).toMatch(/invalid servers "ws:\/\/": use WebSocket URLs/);
});

test('a tenant check without the inbox prefix is a permission problem that names the inbox prefix', async () => {
  const err = await t.connect({ ...withoutInbox, tenant: 'acme' }).catch((e: unknown) => e);
  // The credentials are acme's: this is not a tenant mismatch.
  expect(err).toBeInstanceOf(PermissionDeniedError);
  expect((err as Error).message).toMatch(/inboxPrefix/);
});

test('a wrong password is an AuthenticationError naming the user, never the password', async () => {
  const err = await t
    .connect({ ...devUser('acme', 'writer'), pass: 'not-the-password' })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AuthenticationError);
  expect((err as Error).message).toMatch(/"acme-writer".*Check the user name and password/);
  expect((err as Error).message).not.toMatch(/not-the-password/);
});

test('a server that is not listening is an UnavailableError naming the URL', async () => {
  // A port that was just free: a server started and stopped on it.
  const gone = await startNatsServer();
  const url = gone.wsUrl;
  await gone.stop();
  const err = await connect({ servers: url, wsFactory }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UnavailableError);
  expect((err as Error).message).toContain(`cannot connect to ${url}`);
});

test('reads and watches without the inbox prefix name it, and do not talk about appends', async () => {
  const store = createEventStore({ connection: await t.connect(withoutInbox), tenant: 'acme' });
  const entity = { type: 'account', id: 'inbox-read' };
  const errs = [
    await (async () => {
      for await (const _ of store.read(entity));
    })().catch((e: unknown) => e),
    await firstValueFrom(store.watch(entity)).catch((e: unknown) => e),
    await firstValueFrom(store.watch({ entityType: 'account' })).catch((e: unknown) => e),
  ];
  for (const err of errs) {
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect((err as Error).message).toMatch(/inboxPrefix/);
    expect((err as Error).message).not.toMatch(/append/);
  }
});

test('admin steps run by a tenant writer say they need the service role', async () => {
  const writer = await t.connectAs('acme', 'writer');
  const store = createEventStore({ connection: writer, tenant: 'acme' });
  const view = defineView({
    name: 'admin-check',
    version: 1,
    filter: {},
    initial: 0,
    evolve: (n: number) => n + 1,
  });
  const errs = [
    await ensureStore(writer, {}).catch((e: unknown) => e),
    await ensureProcessorStream(writer, {}).catch((e: unknown) => e),
    await ensureViews(writer).catch((e: unknown) => e),
    await startProjector(store, view).catch((e: unknown) => e),
    await startProcessor({ store, name: 'admin-check', handler: () => {} }).catch((e: unknown) => e),
  ];
  // Each names the step its caller took.
  expect((errs[3] as Error).message).toMatch(
    /startProjector \(view admin-check, bucket views\) is an admin step/,
  );
  for (const err of errs) {
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect((err as Error).message).toMatch(/is an admin step: .*service role/);
    // Another API prefix would not help: these need the service role.
    expect((err as Error).message).not.toMatch(/apiPrefix/);
  }
});

test('a watch on a closed connection ends with UnavailableError', async () => {
  const nc = await t.connectAs('acme', 'reader');
  const store = createEventStore({ connection: nc, tenant: 'acme' });
  await nc.close();
  const targets: ReadTarget[] = [{}, { type: 'account', id: 'closed' }];
  for (const target of targets) {
    const err = await firstValueFrom(store.watch(target)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/closed.*Connect again/);
  }
});

test('watching a view before its bucket exists says who creates it', async () => {
  const store = createEventStore({ connection: await t.connectAs('acme', 'reader'), tenant: 'acme' });
  // Nothing in this file creates the views bucket (the writer's projector above is refused).
  const view = openView<number>(store, { name: 'nobody', version: 1 });
  for (const err of [
    await firstValueFrom(view.watch('k')).catch((e: unknown) => e),
    await view.get('k').catch((e: unknown) => e),
  ]) {
    expect(err).toBeInstanceOf(StoreNotFoundError);
    expect((err as Error).message).toMatch(/ensureViews\(\) or by starting a projector/);
  }
});

test('an append whose reply inbox is refused says so, and a retry with the same id stores it once', async () => {
  const wrong = await t.connect(withoutInbox);
  const entity = { type: 'account', id: 'inbox-check' };
  const event = { type: 'Noted', data: {}, id: 'inbox-check-1' };
  const err = await createEventStore({ connection: wrong, tenant: 'acme' })
    .append(entity, event)
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(PermissionDeniedError);
  expect((err as Error).message).toMatch(/inboxPrefix.*retry it with the same event ids/);
  const right = createEventStore({ connection: await t.connectAs('acme', 'writer'), tenant: 'acme' });
  const stored = await right.version(entity);
  expect(stored).toBeGreaterThan(0); // it was published before the reply was refused
  expect((await right.append(entity, event)).version).toBe(stored);
  expect(await right.version(entity)).toBe(stored);
});
