// A store on a replicated stream (3 nats-servers in a JetStream cluster): the whole
// conformance suite, and what only replication can cause, such as a retry that reaches
// the server while the attempt it repeats is still being replicated.
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ConcurrencyError,
  connect,
  createEventStore,
  UnavailableError,
  type EventStore,
} from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import { conformanceCases, type ConformanceHarness } from '../../src/testing/index.js';
import { startCluster, type TestCluster } from '../support/cluster.js';
import { jetStreamHarness } from '../support/conformance.js';
import { unique, wsFactory } from '../support/nats.js';

type Events = { Ticked: { n: number } };

const ticks = (key: string, count: number) =>
  Array.from({ length: count }, (_, n) => ({ type: 'Ticked' as const, data: { n }, id: `${key}-${n}` }));

let cluster: TestCluster;
let connections: NatsConnection[];
let harness: ConformanceHarness;

beforeAll(async () => {
  cluster = await startCluster(3);
  // Clients on two different servers, as an app's instances would be.
  connections = await Promise.all(
    cluster.servers.slice(0, 2).map((s) => connect({ servers: s.wsUrl, wsFactory })),
  );
  await ensureStore(connections[0]!, { stream: 'REPLICATED', prefix: 'r3', replicas: 3 });
  harness = jetStreamHarness(connections[0]!, { stream: 'REPLICATED', prefix: 'r3', maxBatch: 50 });
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
  test('a store reads its own appends at once, through any server, from the moment ensureStore resolves', async () => {
    const stream = unique('RYW').toUpperCase();
    const prefix = stream.toLowerCase();
    await ensureStore(connections[0]!, { stream, prefix, replicas: 3 });
    const counter = { initial: 0, evolve: (n: number) => n + 1 };
    // Another tenant appends batches all along, so followers have work to catch up on.
    const busy = createEventStore<Events>({ connection: connections[0]!, tenant: 'busy', prefix, stream });
    let reading = true;
    const flood = (async () => {
      for (let n = 0; reading; n++)
        await busy.append({ type: 'account', id: `b${n % 50}` }, ticks(`flood-${n}`, 20));
    })();
    try {
      for (const connection of [connections[1]!, connections[0]!]) {
        const store = createEventStore<Events>({ connection, tenant: unique('tenant'), prefix, stream });
        for (let round = 0; round < 150; round++) {
          const entity = { type: 'account', id: `a${round % 3}` };
          const before = await store.load(entity, counter);
          const written = await store.append(
            entity,
            { type: 'Ticked', data: { n: round } },
            { expect: before.version || 'new' },
          );
          const after = await store.load(entity, counter);
          expect([after.state, after.version]).toEqual([before.state + 1, written.version]);
          expect(await store.version(entity)).toBe(written.version);
        }
      }
    } finally {
      reading = false;
      await flood;
    }
  });
});

describe('retries on a replicated stream', () => {
  const stores = (tenant: string, retries?: number) =>
    connections.map((connection) =>
      createEventStore<Events>({ connection, tenant, prefix: 'r3', stream: 'REPLICATED', retries }),
    );
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
    expect(await count(a!)).toBe(1 + 3 + 3);
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
      expect(won).toHaveLength(1);
      for (const o of outcomes) if (o.status === 'rejected') losses.push(o.reason as ConcurrencyError);
      for (const loss of losses.splice(0)) {
        expect(loss).toBeInstanceOf(ConcurrencyError);
        expect(loss.entityRef).toEqual(entity);
        expect(loss.actual).toBe(won[0]!.version);
      }
    }
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
