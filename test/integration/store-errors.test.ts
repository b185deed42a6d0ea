import { headers, type NatsConnection } from '@nats-io/nats-core';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  BatchTooLargeError,
  createEventStore,
  InvalidArgumentError,
  PayloadTooLargeError,
  ServerError,
  StoreConfigError,
  StoreNotFoundError,
  UnavailableError,
  UnsupportedServerError,
  openView,
  verifyTenant,
} from '../../src/index.js';
import { DeadLetters, ensureProcessorStream, ensureStore, ensureViews } from '../../src/server.js';
import { createMemoryEventStore } from '../../src/testing/index.js';
import { eventually } from '../support/monitor.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

let t: TestServer;
let nc: NatsConnection;

beforeAll(async () => {
  t = await useServer({ extraConfig: 'max_payload: 65536' });
  nc = await t.connect();
});
afterAll(() => t.close());

describe('ensureStore', () => {
  test('creates a stream with every guarantee, then accepts it as it is', async () => {
    const stream = unique('S');
    const created = await ensureStore(nc, { stream, prefix: 'ens' });
    expect(created.created).toBe(true);
    expect(created.config).toMatchObject({
      subjects: ['ens.>'],
      storage: 'file',
      allow_atomic: true,
      allow_direct: true,
      deny_delete: true,
      deny_purge: true,
      compression: 's2',
      max_age: 0,
      consumer_limits: { inactive_threshold: 300_000_000_000 },
    });
    expect((await ensureStore(nc, { stream, prefix: 'ens' })).created).toBe(false);
    // The consumer idle cap leaves room for nats.js's own ordered consumers (5 minutes).
    const ordered = await jetstream(nc).consumers.getPushConsumer(stream);
    await ordered.delete();
  });

  test('refuses, and never changes, a stream that would lose events or weaken guarantees', async () => {
    const stream = unique('S');
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: ['weak.>'], max_age: 60_000_000_000 });
    const err = await ensureStore(nc, { stream, prefix: 'weak' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreConfigError);
    expect((err as StoreConfigError).problems.join()).toMatch(
      /max_age.*allow_atomic is off.*allow_direct is off.*deny_delete.*inactive_threshold is unset/,
    );
    expect((await jsm.streams.info(stream)).config.max_age).toBe(60_000_000_000);
  });

  // Each setting is added to an otherwise compatible stream, as an admin might by hand.
  test.each([
    ['allow_msg_ttl', { allow_msg_ttl: true }, /Nats-TTL header expire/],
    ['republish', { republish: { src: '>', dest: 'copied.>' } }, /republish copies/],
    ['subject_transform', { subject_transform: { src: '>', dest: 'moved.>' } }, /subject_transform/],
    ['sealed', { sealed: true }, /sealed/],
    ['no_ack', { no_ack: true }, /no_ack/],
    ['max_msg_size', { max_msg_size: 16 }, /max_msg_size is 16/],
    [
      'a consumer idle limit under what watches ask for',
      { consumer_limits: { inactive_threshold: 1_000_000_000 } },
      /inactive_threshold is 1000 ms, under the 10000 ms a watch's consumer asks/,
    ],
  ] as const)('refuses a stream with %s', async (_, setting, problem) => {
    const stream = unique('S');
    const prefix = stream.toLowerCase();
    const { config } = await ensureStore(nc, { stream, prefix });
    const jsm = await jetstreamManager(nc);
    const changed = { ...config, ...setting };
    if ('republish' in setting || 'subject_transform' in setting)
      Object.assign(changed, {
        [Object.keys(setting)[0]!]: { ...Object.values(setting)[0], src: `${prefix}.>` },
      });
    await jsm.streams.update(stream, changed);
    const err = await ensureStore(nc, { stream, prefix }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreConfigError);
    expect((err as StoreConfigError).problems.join('; ')).toMatch(problem);
  });

  test('a stream with a consumer idle limit is refused to a caller asking for none, a longer duplicate window is kept', async () => {
    const stream = unique('S');
    const prefix = stream.toLowerCase();
    await ensureStore(nc, { stream, prefix }); // the default 5 minute cap
    // Asking for no cap means a processor's durable on this stream: it would be removed when idle.
    const err = await ensureStore(nc, { stream, prefix, consumerIdleLimitMs: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreConfigError);
    expect((err as StoreConfigError).problems.join('; ')).toMatch(
      /inactive_threshold is 300000 ms, though consumerIdleLimitMs: 0 asks for none/,
    );
    // A window longer than asked remembers retries longer: nothing is weaker.
    const kept = await ensureStore(nc, { stream, prefix, duplicateWindowMs: 60_000 });
    expect([kept.created, kept.config.duplicate_window]).toEqual([false, 120_000_000_000]);
  });

  test('a watch on a stream whose consumer idle limit is too short says which limit, not a bare server error', async () => {
    const stream = unique('S');
    const prefix = stream.toLowerCase();
    const { config } = await ensureStore(nc, { stream, prefix });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.update(stream, { ...config, consumer_limits: { inactive_threshold: 1_000_000_000 } });
    const store = createEventStore({ connection: nc, tenant: 'x', prefix, stream });
    const err = await new Promise((resolve) =>
      store.watch().subscribe({ error: resolve, next: () => undefined }),
    );
    expect(err).toBeInstanceOf(StoreConfigError);
    expect((err as Error).message).toMatch(/inactive_threshold is below what a consumer on .* asks for/);
    expect((err as Error).message).toMatch(/consumerIdleLimitMs/);
  });

  test('refuses a stream that sources another, whose messages would bypass expectations', async () => {
    const stream = unique('S');
    const prefix = stream.toLowerCase();
    const jsm = await jetstreamManager(nc);
    const other = unique('OTHER');
    await jsm.streams.add({ name: other, subjects: [`${other.toLowerCase()}.>`] });
    const { config } = await ensureStore(nc, { stream, prefix });
    await jsm.streams.update(stream, { ...config, sources: [{ name: other }] });
    const err = await ensureStore(nc, { stream, prefix }).catch((e: unknown) => e);
    expect((err as StoreConfigError).problems.join('; ')).toMatch(/sources other streams/);
  });

  test('two clients creating the same store at once: one creates it, the other verifies it', async () => {
    const stream = unique('S');
    const prefix = stream.toLowerCase();
    // The second asks for a longer window: fine if it comes first, refused if it comes second.
    const [a, b] = await Promise.allSettled([
      ensureStore(nc, { stream, prefix, duplicateWindowMs: 60_000 }),
      ensureStore(await t.connect(), { stream, prefix, duplicateWindowMs: 120_000 }),
    ]);
    const outcomes = [a, b].map((r) =>
      r.status === 'fulfilled' ? `created ${r.value.created}` : (r.reason as Error).name,
    );
    expect(outcomes).toContain('created true');
    expect(outcomes.filter((o) => o === 'created false' || o === 'StoreConfigError')).toHaveLength(1);
  });

  test('a prefix another stream already captures is named, with that stream', async () => {
    const owner = unique('S');
    const prefix = owner.toLowerCase();
    await ensureStore(nc, { stream: owner, prefix });
    const err = await ensureStore(nc, { stream: unique('S'), prefix }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreConfigError);
    expect((err as Error).message).toContain(`overlap those of stream "${owner}"`);
  });

  test('options the server would refuse, or store as something else, are refused up front', async () => {
    const stream = unique('S');
    const prefix = stream.toLowerCase();
    for (const options of [
      { replicas: 1.5 },
      { maxAgeMs: 1000 }, // shorter than the duplicate window
      { duplicateWindowMs: 99 }, // the server's minimum is 100 ms
      { consumerIdleLimitMs: -1 },
      { consumerIdleLimitMs: 1 }, // watches ask for 10 s: the server would refuse them all
      { consumerIdleLimitMs: 9999 },
      { prefix: '_INBOX' },
      { storage: 'disk' as 'file' },
    ]) {
      await expect(ensureStore(nc, { stream, prefix, ...options })).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    }
    await expect(jetstreamManager(nc).then((jsm) => jsm.streams.info(stream))).rejects.toThrow(/not found/);
    // The server stores a 0 byte limit as unlimited; asking again must not then differ.
    expect((await ensureStore(nc, { stream, prefix, maxBytes: 0 })).created).toBe(true);
    expect((await ensureStore(nc, { stream, prefix, maxBytes: 0 })).created).toBe(false);
  });

  test('options a single server cannot meet are a ServerError that says what to change', async () => {
    const stream = unique('S');
    const prefix = stream.toLowerCase();
    const bucket = stream.toLowerCase();
    const refusals: Array<[() => Promise<unknown>, number, RegExp]> = [
      [() => ensureStore(nc, { stream, prefix, replicas: 3 }), 10074, /Use replicas: 1/],
      [() => ensureStore(nc, { stream, prefix, maxBytes: 2 ** 52 }), 10047, /Ask for less \(maxBytes\)/],
      [
        async () => {
          await ensureStore(nc, { stream, prefix });
          return ensureProcessorStream(nc, { stream, replicas: 3 });
        },
        10074,
        /Use replicas: 1/,
      ],
      [() => ensureViews(nc, { bucket, replicas: 3 }), 10074, /Use replicas: 1/],
      [() => DeadLetters.open(nc, { bucket, replicas: 3 }), 10074, /Use replicas: 1/],
    ];
    for (const [step, errCode, remedy] of refusals) {
      const err = await step().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ServerError);
      expect(err).toMatchObject({ errCode, cause: expect.any(Error) });
      expect((err as Error).message).toMatch(remedy);
    }
    for (const replicas of [-1, 1.5, '2' as unknown as number]) {
      await expect(DeadLetters.open(nc, { bucket, replicas })).rejects.toThrow(
        /^invalid replicas .*: use an integer >= 1$/,
      );
      await expect(ensureViews(nc, { bucket, replicas })).rejects.toThrow(
        /^invalid replicas .*: use an integer >= 1$/,
      );
    }
  });

  test('a views or dead-letter bucket whose values expire is refused; one without direct get gets it', async () => {
    const kvm = new Kvm(nc);
    const [expiring, letters, plain] = [
      unique('v').toLowerCase(),
      unique('d').toLowerCase(),
      unique('p').toLowerCase(),
    ];
    await kvm.create(expiring, { history: 1, allow_direct: true, ttl: 60_000 });
    await kvm.create(letters, { history: 1, allow_direct: true, ttl: 60_000 });
    await kvm.create(plain, { history: 1, allow_direct: false });
    await expect(ensureViews(nc, { bucket: expiring })).rejects.toThrow(/values expire \(max_age 60 s\)/);
    await expect(DeadLetters.open(nc, { bucket: letters })).rejects.toThrow(/letters expire \(TTL 60 s\)/);
    await expect(ensureViews(nc, { bucket: expiring })).rejects.toBeInstanceOf(StoreConfigError);
    const revisions = unique('h').toLowerCase();
    await kvm.create(revisions, { history: 2, allow_direct: true });
    await expect(DeadLetters.open(nc, { bucket: revisions })).rejects.toThrow(/more than one revision/);
    await ensureViews(nc, { bucket: plain });
    const { config } = await (await jetstreamManager(nc)).streams.info(`KV_${plain}`);
    expect([config.allow_direct, config.allow_atomic]).toEqual([true, true]);
  });

  test('a processor stream of a store that does not exist is refused, and not created', async () => {
    const origin = unique('S');
    const err = await ensureProcessorStream(nc, { stream: origin }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreNotFoundError);
    expect((err as Error).message).toMatch(/ensureStore/);
    const names: string[] = [];
    for await (const name of (await jetstreamManager(nc)).streams.names()) names.push(name);
    expect(names).not.toContain(`${origin}_WORK`);
  });

  test('a processor stream that copies only part of the store is refused', async () => {
    const origin = unique('S');
    await ensureStore(nc, { stream: origin, prefix: origin.toLowerCase() });
    const jsm = await jetstreamManager(nc);
    const name = `${origin}_WORK`;
    await jsm.streams.add({
      name,
      mirror: { name: origin, filter_subject: `${origin.toLowerCase()}.acme.>` },
      max_msgs: 10,
    });
    const err = await ensureProcessorStream(nc, { stream: origin }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreConfigError);
    expect((err as StoreConfigError).problems.join('; ')).toMatch(
      /copies part of the origin.*max_msgs is 10.*deny_delete is off/,
    );
  });
});

/** Makes a connection report another server release, as after a reconnect onto an old node. */
function reportVersion(connection: NatsConnection, version: string): void {
  const info = connection.info!;
  Object.defineProperty(connection, 'info', { get: () => ({ ...info, version }), configurable: true });
}

test('a consumer nobody uses is removed by the server, even a durable that asked to stay', async () => {
  const stream = unique('S');
  await ensureStore(nc, { stream, prefix: 'idle', consumerIdleLimitMs: 10_000 });
  const jsm = await jetstreamManager(nc);
  await jsm.consumers.add(stream, { durable_name: 'forever', ack_policy: 'explicit' as never });
  await expect(
    jsm.consumers.add(stream, { durable_name: 'longer', inactive_threshold: 60_000_000_000 }),
  ).rejects.toThrow(/exceeds/);
  const gone = await eventually(
    () =>
      jsm.consumers.info(stream, 'forever').then(
        () => false,
        () => true,
      ),
    (removed) => removed,
    15_000,
  );
  expect(gone).toBe(true);
}, 30_000);

describe('servers too old for atomic appends', () => {
  test('ensureStore refuses one and creates nothing', async () => {
    const old = await t.connect();
    reportVersion(old, '2.11.9');
    const stream = unique('S');
    await expect(ensureStore(old, { stream, prefix: 'old' })).rejects.toBeInstanceOf(UnsupportedServerError);
    await expect((await jetstreamManager(nc)).streams.info(stream)).rejects.toThrow(/not found/);
  });

  test('an append after a reconnect onto one is refused before anything is sent', async () => {
    const stream = unique('S');
    await ensureStore(nc, { stream, prefix: 'moved' });
    const connection = await t.connect();
    const store = createEventStore({ connection, tenant: 'x', prefix: 'moved', stream });
    reportVersion(connection, '2.12.3');
    const twoEvents = [
      { type: 'E', data: { n: 1 } },
      { type: 'E', data: { n: 2 } },
    ];
    const err = await store.append({ type: 'a', id: '1' }, twoEvents).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedServerError);
    expect((err as Error).message).toMatch(/2\.12\.3 lacks atomic batches that keep expectations/);
    const reader = createEventStore({ connection: nc, tenant: 'x', prefix: 'moved', stream });
    expect(await reader.lastSequence({})).toBe(0);
  });

  test('a server that stores a batch message by message is caught at the first ack', async () => {
    // What a pre-2.12 stream does with an ADR-50 batch: it ignores the batch headers,
    // stores each message on arrival and acks it with a sequence.
    let seq = 0;
    const legacy = nc.subscribe('legacy.>', {
      callback: (_, m) => void m.respond(JSON.stringify({ stream: 'LEGACY', seq: ++seq })),
    });
    await nc.flush();
    const store = createEventStore({ connection: nc, tenant: 'x', prefix: 'legacy', stream: 'LEGACY' });
    const err = await store
      .append(
        { type: 'a', id: '1' },
        [1, 2, 3].map((n) => ({ type: 'E', data: { n } })),
      )
      .catch((e: unknown) => e);
    legacy.unsubscribe();
    expect(err).toBeInstanceOf(UnsupportedServerError);
    expect((err as Error).message).toMatch(/stored the first of the 3 events of an atomic append on its own/);
  });
});

describe('store errors', () => {
  test('options that would hang, retry forever or read nothing are refused when the store is opened', async () => {
    const bad: Array<[string, Record<string, unknown>]> = [
      ['timeoutMs', { timeoutMs: -1 }],
      ['timeoutMs', { timeoutMs: 'abc' }],
      ['timeoutMs', { timeoutMs: 2 ** 31 }], // a timer that long fires at once
      ['readPageSize', { readPageSize: 0 }],
      ['readPageSize', { readPageSize: 'x' }],
      ['readPageSize', { readPageSize: -5 }],
      ['retries', { retries: Number.NaN }],
      ['retries', { retries: -1 }],
      ['duplicateWindowMs', { duplicateWindowMs: 0 }],
      ['apiPrefix', { apiPrefix: 'bad prefix' }],
      ['apiPrefix', { apiPrefix: 'X.*' }],
      ['apiPrefix', { apiPrefix: 'JS..API' }],
      ['apiPrefix', { apiPrefix: '' }],
      ['connection', { connection: undefined }],
      ['connection', { connection: { servers: 'ws://localhost:8080' } }],
    ];
    for (const [name, options] of bad) {
      const open = () => createEventStore({ connection: nc, tenant: 'x', ...options });
      expect(open, name).toThrow(InvalidArgumentError);
      expect(open, name).toThrow(new RegExp(`^invalid ${name}\\b`));
    }
    // A connect() not awaited: said so at once, not as a TypeError in the background later.
    const notAwaited = { connection: Promise.resolve(nc) as unknown as NatsConnection, tenant: 'x' };
    expect(() => createEventStore(notAwaited)).toThrow(/invalid connection.*await connect\(\) first/);
    expect(() => openView(notAwaited, { name: 'v', version: 1 })).toThrow(/await connect\(\) first/);
    await expect(DeadLetters.open(notAwaited.connection)).rejects.toThrow(/await connect\(\) first/);
    expect(createEventStore({ connection: nc, tenant: 'x', apiPrefix: 'JS.API', retries: 0 }).apiPrefix).toBe(
      'JS.API',
    );
  });

  test('a missing stream is reported as StoreNotFoundError on append and read', async () => {
    const store = createEventStore({
      connection: nc,
      tenant: 'x',
      prefix: 'nostream',
      stream: 'MISSING',
      retries: 0,
    });
    await expect(store.append({ type: 'a', id: '1' }, { type: 'E', data: {} })).rejects.toBeInstanceOf(
      StoreNotFoundError,
    );
    const read = async () => {
      for await (const _ of store.read()) void _;
    };
    await expect(read()).rejects.toBeInstanceOf(StoreNotFoundError);
  });

  test('a store named after a stream that does not capture its prefix stores nothing in the one that does', async () => {
    const real = unique('S');
    const prefix = real.toLowerCase();
    await ensureStore(nc, { stream: real, prefix });
    const typo = createEventStore({ connection: nc, tenant: 'x', prefix, stream: 'TYPO', retries: 0 });
    const entity = { type: 'a', id: '1' };
    const single = await typo.append(entity, { type: 'E', data: {} }).catch((e: unknown) => e);
    const twoEvents = [1, 2].map((n) => ({ type: 'E', data: { n } }));
    const batch = await typo.append(entity, twoEvents, { expect: 'new' }).catch((e: unknown) => e);
    for (const err of [single, batch]) {
      expect(err).toBeInstanceOf(StoreConfigError);
      expect((err as Error).message).toMatch(
        new RegExp(`"TYPO".*stream "${real}" captures.*nothing was stored.*on stream "${real}".*own prefix`),
      );
    }
    const store = createEventStore({ connection: nc, tenant: 'x', prefix, stream: real });
    expect(await store.lastSequence()).toBe(0);
    // The right stream stores it, and a retry with the same ids is stored once.
    const ids = [
      { ...twoEvents[0]!, id: 'e1' },
      { ...twoEvents[1]!, id: 'e2' },
    ];
    const first = await store.append(entity, ids, { expect: 'new' });
    expect(await store.append(entity, ids, { expect: 'new' })).toEqual(first);
    expect(await store.append(entity, { ...ids[1]!, id: 'e3' })).toMatchObject({ version: 3 });
    expect(await store.append(entity, { ...ids[1]!, id: 'e3' })).toMatchObject({ version: 3 });
  });

  test('a store whose prefix its stream does not capture is told so once timeoutMs has passed', async () => {
    const real = unique('S');
    await ensureStore(nc, { stream: real, prefix: real.toLowerCase() });
    // Nothing takes the append, as between a replicated stream's leaders; but it never will.
    const store = createEventStore({
      connection: nc,
      tenant: 'x',
      prefix: 'elsewhere',
      stream: real,
      timeoutMs: 300,
    });
    const started = Date.now();
    const err = await store.append({ type: 'a', id: '1' }, { type: 'E', data: {} }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `no leader of stream ${real} took an append for \\d+ ms on elsewhere\\.x\\.a\\.1\\.E; nothing was stored.*store's prefix`,
      ),
    );
  });

  test('headers count in bytes toward max_payload, with the expectation they carry', async () => {
    const stream = unique('S');
    await ensureStore(nc, { stream, prefix: 'hdr' });
    const store = createEventStore({ connection: nc, tenant: 'x', prefix: 'hdr', stream });
    // 20k UTF-16 units of meta, 60 KB in UTF-8 (under NATS's 64 KiB for headers), and 6 KB
    // of data: under the 64 KiB limit by length, over it in bytes.
    const meta = { note: '€'.repeat(20_000) };
    const err = await store
      .append(
        { type: 'a', id: '1' },
        [
          { type: 'E', data: { pad: 'x'.repeat(6_000) }, meta },
          { type: 'E', data: {} },
        ],
        { expect: 'new' },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect((err as PayloadTooLargeError).size).toBeGreaterThan(65_536);
    expect(await store.version({ type: 'a', id: '1' })).toBe(0);
  });

  test('an append on a closed connection says to connect again, and leaves nothing unhandled', async () => {
    const stream = unique('S');
    await ensureStore(nc, { stream, prefix: 'closed' });
    const connection = await t.connect();
    const store = createEventStore({ connection, tenant: 'x', prefix: 'closed', stream });
    await connection.close();
    const three = [1, 2, 3].map((n) => ({ type: 'E', data: { n } }));
    const err = await store.append({ type: 'a', id: '1' }, three).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/closed.*connect again/i);
  });

  test('an event over max_payload is refused before sending, naming the limit', async () => {
    const stream = unique('S');
    await ensureStore(nc, { stream, prefix: 'big' });
    const store = createEventStore({ connection: nc, tenant: 'x', prefix: 'big', stream });
    const err = await store
      .append({ type: 'a', id: '1' }, { type: 'E', data: { blob: 'x'.repeat(70_000) } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect((err as PayloadTooLargeError).limit).toBe(65536);
    expect(await store.version({ type: 'a', id: '1' })).toBe(0);
  });

  test('a single event may fill max_payload up to its last bytes', async () => {
    const stream = unique('S');
    await ensureStore(nc, { stream, prefix: 'edge' });
    const store = createEventStore({ connection: nc, tenant: 'x', prefix: 'edge', stream });
    const fits = (n: number, id: string) =>
      store.append({ type: 'a', id }, { type: 'E', data: { blob: 'x'.repeat(n) } }).then(
        () => true,
        (e: unknown) => (expect(e).toBeInstanceOf(PayloadTooLargeError), false),
      );
    let [low, high] = [60_000, 65_536];
    while (high - low > 1) {
      const mid = (low + high) >> 1;
      if (await fits(mid, `probe${mid}`)) low = mid;
      else high = mid;
    }
    // The largest event jetsource sends, as the server receives it: within a few bytes of the limit.
    const sub = nc.subscribe('edge.x.a.last.E', { max: 1 });
    expect(await fits(low, 'last')).toBe(true);
    for await (const m of sub) {
      const size = (m.headers as unknown as { encode(): Uint8Array }).encode().length + m.data.length;
      expect(size).toBeLessThanOrEqual(65_536);
      expect(size).toBeGreaterThan(65_536 - 8);
    }
  });

  test('the in-memory store refuses an event at the size the JetStream store counts', async () => {
    const options = { tenant: 'x', prefix: 'twin', stream: unique('S') };
    const stores = [
      createEventStore({ connection: nc, ...options }),
      createMemoryEventStore({ ...options, maxPayload: nc.info!.max_payload }),
    ];
    const sizes = await Promise.all(
      stores.map((store) =>
        store
          .append(
            { type: 'a', id: '1' },
            { type: 'E', data: { blob: 'x'.repeat(70_000) } },
            { expect: 'new' },
          )
          .catch((e: PayloadTooLargeError) => e.size),
      ),
    );
    expect(sizes[0]).toBeGreaterThan(65_536);
    expect(sizes[1]).toBe(sizes[0]);
  });

  test('a store whose maxBatch is above the server limit gets BatchTooLargeError from the server', async () => {
    const stream = unique('S');
    await ensureStore(nc, { stream, prefix: 'many' });
    const store = createEventStore({ connection: nc, tenant: 'x', prefix: 'many', stream, maxBatch: 1500 });
    const events = Array.from({ length: 1001 }, (_, i) => ({ type: 'E', data: { i } }));
    const err = await store.append({ type: 'a', id: '1' }, events).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BatchTooLargeError);
    expect(err).toMatchObject({ count: 1001, limit: 1000, cause: expect.any(ServerError) });
    expect(await store.version({ type: 'a', id: '1' })).toBe(0);
  });

  test('a multi-event append to a stream without atomic batches is a StoreConfigError keeping the refusal', async () => {
    const stream = unique('S');
    const prefix = stream.toLowerCase();
    await (await jetstreamManager(nc)).streams.add({ name: stream, subjects: [`${prefix}.>`] });
    const store = createEventStore({ connection: nc, tenant: 'x', prefix, stream });
    const events = [1, 2].map((i) => ({ type: 'E', data: { i } }));
    const err = await store.append({ type: 'a', id: '1' }, events).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreConfigError);
    expect((err as Error).message).toMatch(/allow_atomic is off/);
    expect((err as Error).cause).toMatchObject({ errCode: 10174 });
  });
});

test('an append left unanswered names its event ids, and a retry with them stores it once', async () => {
  const own = await useServer();
  try {
    const conn = await own.connect();
    await ensureStore(conn, { stream: 'UNANSWERED', prefix: 'un' });
    const store = createEventStore({
      connection: conn,
      tenant: 'x',
      prefix: 'un',
      stream: 'UNANSWERED',
      timeoutMs: 300,
      retries: 1,
    });
    const account = { type: 'a', id: '1' };
    const events = [1, 2].map((n) => ({ type: 'E', data: { n } }));
    // A hung server: both attempts reach it, and neither gets an answer in time.
    own.server.pause();
    const err = await store.append(account, events).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/no answer after 2 attempt.*may have been stored.*eventIds/);
    const ids = (err as UnavailableError).eventIds ?? [];
    expect(ids).toHaveLength(2);
    // Once it goes on, it stores the first attempt: the ids make the retry harmless.
    own.server.resume();
    const retried = events.map((e, i) => ({ ...e, id: ids[i] }));
    const result = await store.append(account, retried);
    expect(result.sequences).toHaveLength(2);
    const stored: string[] = [];
    for await (const e of store.read(account)) stored.push(e.id);
    expect(stored).toEqual(ids);
  } finally {
    await own.close();
  }
}, 60_000);

test('a tenant check the server leaves unanswered fails after its timeoutMs, not a fixed 5 s', async () => {
  const own = await useServer();
  try {
    const conn = await own.connect();
    own.server.pause();
    const started = Date.now();
    const err = await verifyTenant(conn, 'x', 300).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect(Date.now() - started).toBeLessThan(3_000);
    own.server.resume();
  } finally {
    await own.close();
  }
});

test('an atomic append refused while too many are in flight says nothing was stored, and stores nothing', async () => {
  const own = await useServer({
    extraConfig: 'jetstream { limits { batch { max_inflight_per_stream: 2 } } }',
  });
  try {
    const conn = await own.connect();
    await ensureStore(conn, { stream: 'BUSY', prefix: 'busy' });
    // Two batches started and never committed hold the stream's limit (until their 10 s timeout).
    for (const id of ['held1', 'held2']) {
      const h = headers();
      h.set('Nats-Batch-Id', id);
      h.set('Nats-Batch-Sequence', '1');
      conn.publish(`busy.x.a.${id}.E`, '{}', { headers: h });
    }
    await conn.flush();
    const store = createEventStore({
      connection: conn,
      tenant: 'x',
      prefix: 'busy',
      stream: 'BUSY',
      retries: 0,
    });
    const events = [1, 2].map((n) => ({ type: 'E', data: { n } }));
    const err = await store.append({ type: 'a', id: '1' }, events).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/too many atomic appends in flight.*none stored.*Retry/);
    expect((err as Error).cause).toMatchObject({ errCode: 10210 });
    expect(await store.lastSequence()).toBe(0);
  } finally {
    await own.close();
  }
});
