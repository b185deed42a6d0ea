// A store on a replicated stream (3 replicas in a JetStream cluster of 4 nats-servers): the
// whole conformance suite, and what only replication can cause, such as a retry that
// reaches the server while the attempt it repeats is still being replicated. One server
// holds no replica of a stream, as in most clusters: its clients' direct gets go to any
// replica, one lookup to one and the next to another.
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { firstValueFrom, ReplaySubject, take, toArray } from 'rxjs';
import {
  ConcurrencyError,
  connect,
  createEventStore,
  defineView,
  openView,
  UnavailableError,
  type EventStore,
} from '../../src/index.js';
import {
  DeadLetters,
  ensureProcessorStream,
  ensureStore,
  ensureViews,
  reject,
  startProcessor,
  startProjector,
} from '../../src/server.js';
import { conformanceCases, type ConformanceHarness } from '../../src/testing/index.js';
import { startCluster, type TestCluster } from '../support/cluster.js';
import { jetStreamHarness } from '../support/conformance.js';
import { eventually } from '../support/monitor.js';
import { unique, wsFactory } from '../support/nats.js';

type Events = { Ticked: { n: number } };

const ticks = (key: string, count: number) =>
  Array.from({ length: count }, (_, n) => ({ type: 'Ticked' as const, data: { n }, id: `${key}-${n}` }));

/**
 * Runs `work` while another tenant appends batches of 20 all along (4 writers), so that followers
 * always have appends to catch up on and answer from a little behind.
 */
async function whileBusy(at: { stream: string; prefix: string }, work: () => Promise<void>): Promise<void> {
  const busy = createEventStore<Events>({ connection: connections[0]!, tenant: 'busy', ...at });
  let working = true;
  const flood = [0, 1, 2, 3].map(async (w) => {
    for (let n = 0; working; n++)
      await busy.append({ type: 'account', id: `b${w}-${n % 50}` }, ticks(`flood-${w}-${n}`, 20));
  });
  try {
    await work();
  } finally {
    working = false;
    await Promise.all(flood);
  }
}

/** The server leading the REPLICATED stream (undefined between leaders). */
async function streamLeader(): Promise<string | undefined> {
  const reply = await connections[0]!.request('$JS.API.STREAM.INFO.REPLICATED', '', { timeout: 5000 });
  return reply.json<{ cluster?: { leader?: string } }>().cluster?.leader;
}

/** The servers (`n<i>`, by index) holding no replica of `stream`. */
async function outsiders(stream: string): Promise<number[]> {
  const reply = await connections[0]!.request(`$JS.API.STREAM.INFO.${stream}`, '', { timeout: 5000 });
  const { leader, replicas = [] } = reply.json<{
    cluster: { leader: string; replicas?: { name: string }[] };
  }>().cluster;
  const holders = [leader, ...replicas.map((r) => r.name)];
  return cluster.servers.flatMap((_, i) => (holders.includes(`n${i}`) ? [] : [i]));
}

let cluster: TestCluster;
/** A client on each server, `connections[i]` on `n<i>`. */
let connections: NatsConnection[];
let harness: ConformanceHarness;

beforeAll(async () => {
  cluster = await startCluster(4);
  // Clients on different servers, as an app's instances would be.
  connections = await Promise.all(cluster.servers.map((s) => connect({ servers: s.wsUrl, wsFactory })));
  await ensureStore(connections[0]!, { stream: 'REPLICATED', prefix: 'r3', replicas: 3 });
  // The suite reads right after appending, through the server with no replica: each of
  // its reads is answered by any replica, the leader or a follower a moment behind.
  const [outsider] = await eventually(
    () => outsiders('REPLICATED'),
    (found) => found.length === 1,
  );
  harness = jetStreamHarness(connections[outsider!]!, { stream: 'REPLICATED', prefix: 'r3', maxBatch: 50 });
}, 60_000);
afterAll(async () => {
  await Promise.all((connections ?? []).map((nc) => nc.close()));
  await cluster?.stop();
});

describe('JetStream store conformance on a stream with 3 replicas', () => {
  for (const c of conformanceCases) test(c.name, () => c.run(harness));
});

// Any replica answers direct gets, and a follower applies an append a moment after the
// leader acknowledged it; right after a stream is created, its replicas do not answer yet.
describe('reading on a replicated stream', () => {
  test('a store reads its own appends at once, by entity and by filter, through any server (one with no replica too), from the moment ensureStore resolves', async () => {
    const stream = unique('RYW').toUpperCase();
    const prefix = stream.toLowerCase();
    await ensureStore(connections[0]!, { stream, prefix, replicas: 3 });
    expect(await outsiders(stream)).toHaveLength(1);
    const counter = { initial: 0, evolve: (n: number) => n + 1 };
    await whileBusy({ stream, prefix }, async () => {
      for (const connection of connections) {
        const store = createEventStore<Events>({ connection, tenant: unique('tenant'), prefix, stream });
        for (let round = 0; round < 150; round++) {
          const entity = { type: 'account', id: `a${round % 3}` };
          const before = await store.load(entity, counter);
          const written = await store.append(
            entity,
            { type: 'Ticked', data: { n: round } },
            { expect: before.version || 'new' },
          );
          // Filter reads first, right after the append: this store is its tenant's only writer.
          const read = [];
          for await (const e of store.read({ eventType: 'Ticked' }, { after: written.version - 1 }))
            read.push(e.sequence);
          expect(read).toEqual([written.version]);
          expect(await store.lastSequence({ entityType: 'account' })).toBe(written.version);
          const after = await store.load(entity, counter);
          expect([after.state, after.version]).toEqual([before.state + 1, written.version]);
          expect(await store.version(entity)).toBe(written.version);
        }
      }
    });
  });
});

describe('views on replicated streams', () => {
  test('a projector builds a view in a replicated bucket, and a reader through another server follows it', async () => {
    type Bank = { Deposited: { amount: number } };
    const view = defineView<{ total: number; count: number }, Bank>({
      name: 'totals',
      version: 1,
      filter: { entityType: 'account' },
      initial: { total: 0, count: 0 },
      evolve: (s, e) => ({ total: s.total + e.data.amount, count: s.count + 1 }),
    });
    const bucket = unique('views');
    await ensureViews(connections[0]!, { bucket, replicas: 3 });
    const tenant = unique('tenant');
    const [writer, other] = connections.map((connection) =>
      createEventStore<Bank>({ connection, tenant, prefix: 'r3', stream: 'REPLICATED' }),
    );
    for (let n = 1; n <= 20; n++)
      await writer!.append({ type: 'account', id: `a${n % 4}` }, { type: 'Deposited', data: { amount: n } });
    const projector = await startProjector(writer!, view, { bucket });
    try {
      await projector.caughtUp;
      const reader = openView(other!, view, { bucket });
      expect((await reader.get('a1'))?.state).toEqual({ total: 1 + 5 + 9 + 13 + 17, count: 5 });
      // The append goes in once the watch has its first value, so it is the second.
      const watched = new ReplaySubject<unknown>();
      const subscription = reader.watch('a1').subscribe(watched);
      await firstValueFrom(watched);
      const updates = firstValueFrom(watched.pipe(take(2), toArray()));
      const appended = await writer!.append(
        { type: 'account', id: 'a1' },
        { type: 'Deposited', data: { amount: 100 } },
      );
      const [, live] = await updates;
      subscription.unsubscribe();
      expect(live).toMatchObject({ sequence: appended.version, state: { total: 145, count: 6 } });
    } finally {
      await projector.stop();
    }
  });
});

describe('processors on replicated streams', () => {
  test('a processor on a replicated work stream handles every event once, with replicated dead letters', async () => {
    await ensureProcessorStream(connections[0]!, { stream: 'REPLICATED', replicas: 3 });
    const deadLetters = await DeadLetters.open(connections[0]!, { bucket: unique('letters'), replicas: 3 });
    const store = createEventStore<Events>({
      connection: connections[1]!,
      tenant: unique('tenant'),
      prefix: 'r3',
      stream: 'REPLICATED',
    });
    const written = (await store.append({ type: 'account', id: 'p' }, ticks('work', 20))).sequences;
    const seen: number[] = [];
    const processor = await startProcessor({
      store,
      name: 'tally',
      deadLetters,
      handler: (e) => {
        if (e.data.n === 7) return reject('seven is refused');
        seen.push(e.sequence);
      },
    });
    try {
      // The mirror the processor reads copies the stream's earlier tests' events first.
      await expect.poll(() => seen.length, { timeout: 20_000 }).toBe(19);
      expect((await processor.deadLetters()).map((l) => l.sequence)).toEqual([written[7]]);
      await new Promise((r) => setTimeout(r, 200)); // room for a duplicate to show
      expect(seen).toEqual(written.filter((_, i) => i !== 7));
    } finally {
      await processor.stop();
    }
  });
});

describe('retries on a replicated stream', () => {
  const stores = (tenant: string, retries?: number) =>
    connections.map((connection) =>
      createEventStore<Events>({ connection, tenant, prefix: 'r3', stream: 'REPLICATED', retries }),
    );
  // A whole-tenant read may be answered by a replica a moment behind, so counts are
  // polled; a duplicate would never settle on the expected count.
  const count = async (store: EventStore<Events>) => {
    let n = 0;
    for await (const _ of store.read()) n++;
    return n;
  };

  // nats-server refuses an id whose first attempt is still being replicated (10158) rather
  // than call it a duplicate: the store waits and asks again, and then finds it stored.
  test('an append repeated while its first attempt is being replicated is stored once', async () => {
    const [a, b] = stores(unique('tenant'));
    const account = (id: string) => ({ type: 'account', id });
    for (const events of [ticks('one', 1), ticks('batch', 3)]) {
      const entity = account(events[0]!.id);
      const attempts = [a!, a!, b!, a!, b!].map((store) => store.append(entity, events, { expect: 'new' }));
      const results = await Promise.all(attempts);
      for (const r of results) expect(r).toEqual(results[0]);
    }
    const writes = [
      { entity: account('x'), events: ticks('x', 2), expect: 'new' as const },
      { entity: account('y'), events: ticks('y', 1) },
    ];
    const all = await Promise.all([a!.appendAll(writes), b!.appendAll(writes), a!.appendAll(writes)]);
    for (const r of all) expect(r).toEqual(all[0]);
    await expect.poll(() => count(a!), { timeout: 5_000 }).toBe(1 + 3 + 3);
  });

  // Two writers racing on one entity: the loser's conflict may be seen while the winner's
  // append is still being replicated (10164, with no version in it).
  test('a writer that loses a race learns the version that beat it', async () => {
    const [a, b] = stores(unique('tenant'));
    const losses: ConcurrencyError[] = [];
    for (let round = 0; round < 40; round++) {
      const entity = { type: 'account', id: `race-${round}` };
      const outcomes = await Promise.allSettled(
        [a!, b!, a!, b!].map((store, i) =>
          store.append(entity, ticks(`${round}-${i}`, 1 + (i % 2)), { expect: 'new' }),
        ),
      );
      const won = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      // What each append came to, for the failure message of any check below.
      const told = outcomes
        .map((o) => (o.status === 'fulfilled' ? JSON.stringify(o.value) : String(o.reason)))
        .join('; ');
      expect(won, told).toHaveLength(1);
      for (const o of outcomes) if (o.status === 'rejected') losses.push(o.reason as ConcurrencyError);
      for (const loss of losses.splice(0)) {
        expect(loss, told).toBeInstanceOf(ConcurrencyError);
        expect(loss.entityRef).toEqual(entity);
        // Its version, also from a replica part-way through storing the winner's atomic
        // append (nats-server 2.15 lets a direct get see one): the lookup waits it out.
        expect(loss.actual, told).toBe(won[0]!.version);
      }
    }
  });

  test('a retry of a stored append is recognised when a replica behind the leader answers the lookups', async () => {
    // Through every server: followers answer their own clients' gets, and the clients of
    // the server with no replica get answers from any replica, lookup by lookup.
    expect(await outsiders('REPLICATED')).toHaveLength(1);
    for (const [s, store] of stores(unique('tenant')).entries()) {
      const account = { type: 'account', id: `a${s}` };
      await whileBusy({ stream: 'REPLICATED', prefix: 'r3' }, async () => {
        let version = 0;
        for (let round = 0; round < 200; round++) {
          const events = ticks(`again-${s}-${round}`, 1 + (round % 3) * 4);
          const expect_ = round % 2 === 0 ? { expect: version || ('new' as const) } : {};
          const first = await store.append(account, events, expect_);
          expect(await store.append(account, events, expect_)).toEqual(first);
          version = first.version;
        }
      });
    }
  });

  test('appends go on while the stream changes leader', async () => {
    const [a, b] = stores(unique('tenant'));
    const results: number[] = [];
    let writing = true;
    const writers = [a!, b!].map(async (store, w) => {
      for (let n = 0; writing; n++) {
        const written = await store.append(
          { type: 'account', id: `w${w}` },
          ticks(`lead-${w}-${n}`, 1 + (n % 2) * 9),
        );
        results.push(...written.sequences);
      }
    });
    try {
      for (let stepdown = 0; stepdown < 2; stepdown++) {
        await new Promise((r) => setTimeout(r, 300));
        const before = await streamLeader();
        const reply = await connections[0]!.request('$JS.API.STREAM.LEADER.STEPDOWN.REPLICATED', '', {
          timeout: 5000,
        });
        expect(reply.json<{ success?: boolean }>()).toMatchObject({ success: true });
        await expect
          .poll(async () => [before, undefined].includes(await streamLeader()), { timeout: 10_000 })
          .toBe(false);
      }
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      writing = false;
      await Promise.all(writers);
    }
    await expect.poll(() => count(a!), { timeout: 5_000 }).toBe(results.length);
    expect(new Set(results).size).toBe(results.length);
  });

  test('without retries, the repeat says the append may be stored and names its ids', async () => {
    const [a] = stores(unique('tenant'), 0);
    const entity = { type: 'account', id: 'a' };
    // Whether a repeat meets the first attempt in flight is up to timing: try until one does.
    let refused: unknown;
    for (let round = 0; round < 20 && refused === undefined; round++) {
      const events = ticks(`r${round}`, 2);
      const outcomes = await Promise.allSettled([0, 1, 2].map(() => a!.append(entity, events)));
      const stored = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      expect(stored.length).toBeGreaterThan(0);
      for (const r of stored) expect(r).toEqual(stored[0]);
      refused = outcomes.find((o) => o.status === 'rejected')?.reason;
    }
    expect(refused).toBeInstanceOf(UnavailableError);
    expect((refused as UnavailableError).message).toMatch(
      /still being stored.*Retry with the same event ids/,
    );
    expect((refused as UnavailableError).eventIds).toHaveLength(2);
  });
});
