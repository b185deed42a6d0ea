// Reading one entity goes through its literal per-event-type subjects (see entity-range.ts):
// these check that nothing is lost, duplicated or reordered on the way, whatever the mix of
// event types, bounds, page sizes and permissions.
import { headers, type NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEventStore, type EnvelopeOf, type JetStreamEventStore } from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import { sendAtomicBatch } from '../../src/store/jetstream/atomic-batch.js';
import { useServer, type TestServer } from '../support/nats.js';

type Events = Record<string, { n: number }>;
const TENANT = 'acme';
const account = { type: 'account', id: 'a1' };
/** Shares a prefix with a1 (a subject token is matched whole, so it must never leak in). */
const neighbour = { type: 'account', id: 'a10' };
const TYPES = ['Opened', 'Deposited', 'Withdrawn', 'Renamed'];
const ROUNDS = 120;

let t: TestServer;
let nc: NatsConnection;
let store: JetStreamEventStore<Events>;
/** Sequences of every event written to `account`, in order, with their types. */
const written: { sequence: number; type: string; n: number }[] = [];

const open = (options: { readPageSize?: number; connection?: NatsConnection } = {}) =>
  createEventStore<Events>({ connection: options.connection ?? nc, tenant: TENANT, ...options });

const summary = (events: EnvelopeOf<Events>[]) =>
  events.map((e) => ({ sequence: e.sequence, type: e.type, n: e.data.n }));

async function all(reader: AsyncIterable<EnvelopeOf<Events>>) {
  const events: EnvelopeOf<Events>[] = [];
  for await (const event of reader) events.push(event);
  return events;
}

beforeAll(async () => {
  t = await useServer({ configFile: 'nats-server.conf' });
  nc = await t.connectAs(TENANT, 'service');
  await ensureStore(nc, {});
  store = open();
  // The account's events of four types interleave with a neighbour's and with each other.
  for (let n = 0; n < ROUNDS; n++) {
    const type = TYPES[(n * 7) % TYPES.length]!;
    const [mine] = await store.appendAll([
      { entity: account, events: [{ type, data: { n } }] },
      { entity: neighbour, events: [{ type: 'Deposited', data: { n: -n } }] },
    ]);
    written.push({ sequence: mine!.sequences[0]!, type, n });
  }
}, 60_000);
afterAll(() => t.close());

describe('entity reads', () => {
  test('return exactly the entity’s events of every type, in order, at any page size', async () => {
    for (const readPageSize of [1000, 7, 1]) {
      expect(summary(await all(open({ readPageSize }).read(account))), `page ${readPageSize}`).toEqual(
        written,
      );
    }
  });

  test('after and until bound the read exactly, across event types', async () => {
    const after = written[10]!.sequence;
    const until = written[100]!.sequence;
    const expected = written.filter((e) => e.sequence > after && e.sequence <= until);
    expect(summary(await all(store.read(account, { after, until })))).toEqual(expected);
    expect(summary(await all(open({ readPageSize: 5 }).read(account, { after, until })))).toEqual(expected);
    // Bounds that fall between the entity's events, or past them all.
    expect(summary(await all(store.read(account, { after: after + 1, until: until - 1 })))).toEqual(
      written.filter((e) => e.sequence > after + 1 && e.sequence <= until - 1),
    );
    expect(await all(store.read(account, { after: written.at(-1)!.sequence }))).toEqual([]);
    expect(await all(store.read(account, { until: 0 }))).toEqual([]);
    expect(await all(store.read(account, { after, until: after }))).toEqual([]);
  });

  test('progress counts down to zero across event types', async () => {
    const pending: number[] = [];
    await all(open({ readPageSize: 9 }).read(account, { onProgress: (p) => pending.push(p.pending) }));
    expect(pending).toEqual(written.map((_, i) => written.length - 1 - i));
  });

  test('an entity with no events reads as empty and loads as new', async () => {
    expect(await all(store.read({ type: 'account', id: 'never' }))).toEqual([]);
    expect(await store.load({ type: 'account', id: 'never' }, { initial: 0, evolve: (s) => s + 1 })).toEqual({
      state: 0,
      version: 0,
      malformed: [],
    });
  });

  test('a tenant reader, with direct get only, loads the entity', async () => {
    const reader = open({ connection: await t.connectAs(TENANT, 'reader', { tenant: TENANT }) });
    const loaded = await reader.load(account, {
      initial: [] as number[],
      evolve: (s, e) => [...s, e.data.n],
    });
    expect(loaded).toEqual({
      state: written.map((e) => e.n),
      version: written.at(-1)!.sequence,
      malformed: [],
    });
  });

  test('an entity with more event types than one multi_last answer lists still reads whole', async () => {
    const crowded = { type: 'account', id: 'crowded' };
    const types = Array.from({ length: 1100 }, (_, i) => `T${i}`);
    for (let i = 0; i < types.length; i += 550) {
      await store.append(
        crowded,
        types.slice(i, i + 550).map((type, k) => ({ type, data: { n: i + k } })),
      );
    }
    const events = await all(store.read(crowded));
    expect(events.map((e) => e.type)).toEqual(types);
    expect(events.map((e) => e.data.n)).toEqual(types.map((_, i) => i));
  });
});

describe('entity watches', () => {
  /** Collects a watch until `stop(messages)` says so, then unsubscribes. */
  function watchUntil(
    source: ReturnType<typeof store.watch>,
    stop: (seen: string[]) => boolean,
    onCaughtUp = () => {},
  ): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const seen: string[] = [];
      const sub = source.subscribe({
        next: (m) => {
          if (m.kind === 'event') seen.push(`${m.event.sequence} ${m.event.type} ${m.event.data.n}`);
          if (m.kind === 'caught-up') {
            seen.push(`caught-up ${m.sequence}`);
            onCaughtUp();
          }
          if (stop(seen)) {
            sub.unsubscribe();
            resolve(seen);
          }
        },
        error: reject,
      });
    });
  }
  const line = (e: (typeof written)[number]) => `${e.sequence} ${e.type} ${e.n}`;

  test('catch up on every event type in order, say so at the last one, then go live', async () => {
    const entity = { type: 'account', id: 'watched' };
    const history = [];
    for (const [n, type] of TYPES.entries()) {
      const [, mine] = await store.appendAll([
        { entity: neighbour, events: [{ type: 'Deposited', data: { n: -1 } }] },
        { entity, events: [{ type, data: { n } }] },
      ]);
      history.push({ sequence: mine!.sequences[0]!, type, n });
    }
    const live: typeof history = [];
    let caughtUp!: () => void;
    const ready = new Promise<void>((resolve) => (caughtUp = resolve));
    const seen = watchUntil(store.watch(entity), (s) => s.length === history.length + 1 + 2, caughtUp);
    await ready;
    for (const n of [100, 101]) {
      const [, mine] = await store.appendAll([
        { entity: neighbour, events: [{ type: 'Deposited', data: { n: -1 } }] },
        { entity, events: [{ type: 'Renamed', data: { n } }] },
      ]);
      live.push({ sequence: mine!.sequences[0]!, type: 'Renamed', n });
    }
    const lastHistory = history.at(-1)!.sequence;
    expect(await seen).toEqual([...history.map(line), `caught-up ${lastHistory}`, ...live.map(line)]);
  });

  test('after skips the history up to that sequence; an unknown entity is caught up at once', async () => {
    const after = written[100]!.sequence;
    const expected = written.filter((e) => e.sequence > after);
    const seen = await watchUntil(
      store.watch(account, { after }),
      (s) => s.at(-1)?.startsWith('caught-up') ?? false,
    );
    expect(seen).toEqual([...expected.map(line), `caught-up ${written.at(-1)!.sequence}`]);
    expect(await watchUntil(store.watch({ type: 'account', id: 'never' }), (s) => s.length > 0)).toEqual([
      'caught-up 0',
    ]);
  });
});

describe('a listing larger than one answer holds', () => {
  test('falls back to the wildcard and still reads every event type', async () => {
    const entity = { type: 'report', id: 'r1' };
    const types = Array.from({ length: 40 }, (_, i) => `Section${i}`);
    const pad = 'x'.repeat(40_000);
    await store.append(
      entity,
      types.map((type, n) => ({ type, data: { n, pad } as { n: number } })),
    );
    // One listing would carry 40 last events of about 40 KB each: more than its 1 MiB cap.
    const events = await all(store.read(entity));
    expect(events.map((e) => e.type)).toEqual(types);
    expect(events.map((e) => e.data.n)).toEqual(types.map((_, n) => n));
  });
});

// A replica stores an atomic append message by message, and nats-server 2.15 lets a direct
// get see one part-way: an entity listing waits for a replica past the end of the entity's
// events in the append of its newest event. On one replica they are always there, so no
// get of that end is sent; an end a get does not find is waited for two more asks, then dropped.
describe('atomic appends in entity reads', () => {
  /** The direct gets `read` sends whose body matches `pattern`. */
  async function requests(pattern: RegExp, read: () => Promise<unknown>): Promise<number> {
    const publish = nc.publish.bind(nc);
    let sent = 0;
    nc.publish = ((...args: Parameters<typeof publish>) => {
      const [subject, data] = args;
      if (subject.includes('.DIRECT.GET.') && typeof data === 'string' && pattern.test(data)) sent++;
      return publish(...args);
    }) as typeof nc.publish;
    try {
      await read();
    } finally {
      nc.publish = publish;
    }
    return sent;
  }
  /** Gets of one message by sequence: the check of an append's end. */
  const endChecks = (read: () => Promise<unknown>) => requests(/^\{"seq":\d+\}$/, read);

  test("an entity's events in a multi-entity append are read whole, with no extra request", async () => {
    const entity = { type: 'account', id: 'in-batch' };
    const [mine] = await store.appendAll([
      { entity, events: [0, 1, 2].map((n) => ({ type: 'Opened', data: { n } })) },
      { entity: { type: 'account', id: 'beside-batch' }, events: [{ type: 'Opened', data: { n: 3 } }] },
    ]);
    const [first, , last] = mine!.sequences;
    expect(await endChecks(async () => expect((await open().load(entity, counter)).state).toBe(3))).toBe(0);
    expect(await endChecks(async () => expect(await open().version(entity)).toBe(last))).toBe(0);
    // Bounded inside the append, the newest event listed names an end past the bound: one
    // listing, and no check.
    const bounded = () => all(open().read(entity, { until: first! + 1 }));
    expect((await bounded()).map((e) => e.data.n)).toEqual([0, 1]);
    expect(await requests(/multi_last/, bounded)).toBe(1);
    expect(await endChecks(bounded)).toBe(0);
  });

  /** Stores one event of `id` carrying `Es-Append-Following: following`, as an atomic append with another entity's. */
  async function claiming(id: string, following: string): Promise<number> {
    const message = (entityId: string) => {
      const h = headers();
      h.set('Nats-Msg-Id', `${entityId}-claim`);
      h.set('Es-Type', 'Opened');
      h.set('Es-Time', new Date().toISOString());
      h.set('Es-Tenant', TENANT);
      if (entityId === id) h.set('Es-Append-Following', following);
      return {
        subject: `es.${TENANT}.account.${entityId}.Opened`,
        data: JSON.stringify({ n: 1 }),
        headers: h,
      };
    };
    const { commit } = await sendAtomicBatch(nc, [message(id), message(`${id}-beside`)], 5000);
    return (await commit()).seq! - 1;
  }

  // Another writer of the tenant may set the header: it counts only while the replica
  // answering has not got to the end it names, and once a get finds the same append there.
  test('an end header naming an event the replica has, of another append, costs nothing', async () => {
    const sequence = await claiming('claims-other', '2');
    await store.append({ type: 'account', id: 'after-claims' }, { type: 'Opened', data: { n: 3 } });
    const checks = await endChecks(async () => {
      const loaded = await open().load({ type: 'account', id: 'claims-other' }, counter);
      expect([loaded.state, loaded.version]).toEqual([1, sequence]);
    });
    expect(checks).toBe(0);
  });

  test('an end header that names an event not stored is waited for briefly, then dropped', async () => {
    const sequence = await claiming('claims-beyond', '1000');
    const checks = await endChecks(async () => {
      const loaded = await open().load({ type: 'account', id: 'claims-beyond' }, counter);
      expect([loaded.state, loaded.version]).toEqual([1, sequence]);
    });
    // Asked while the replica may still be storing it (twice), then no more.
    expect(checks).toBe(3);
  });
});

const counter = { initial: 0, evolve: (n: number) => n + 1 };
