import type { NatsConnection } from '@nats-io/nats-core';
import { headers } from '@nats-io/nats-core';
import { filter, firstValueFrom, map, takeWhile, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createEventStore,
  jsonCodec,
  MalformedEventError,
  type EventCodec,
  type ReadTarget,
} from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import { eventually, serverCounts } from '../support/monitor.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

// Reads must hold up against what other writers can store: empty payloads, and headers
// named like the ones nats-server adds to its replies.
type Events = { Deposited: { amount: number } };

let t: TestServer;
let nc: NatsConnection;
const stream = 'ROBUST';
const prefix = 'rb';

beforeAll(async () => {
  t = await useServer();
  nc = await t.connect();
  await ensureStore(nc, { stream, prefix });
});
afterAll(() => t.close());

const account = (id: string) => ({ type: 'account', id });
const deposit = (amount: number) => ({ type: 'Deposited' as const, data: { amount } });

function open(options: { readPageSize?: number; codec?: EventCodec } = {}) {
  return createEventStore<Events>({ connection: nc, tenant: unique('t'), prefix, stream, ...options });
}

/** Stores bytes and headers on an entity's event subject as a raw NATS client would. */
async function publishRaw(
  store: ReturnType<typeof open>,
  id: string,
  data: Uint8Array,
  extra: Array<[string, string]> = [],
): Promise<number> {
  const h = headers();
  for (const [k, v] of extra) h.set(k, v);
  const reply = await nc.request(store.format.scheme.event(account(id), 'Deposited'), data, {
    headers: h,
    timeout: 5000,
  });
  return (reply.json() as { seq: number }).seq;
}

const all = async <T>(it: AsyncIterable<T>) => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};

describe('reads over unusual stored events', () => {
  test('an empty payload is read like any other event, not taken for the end of a page', async () => {
    const store = open({ readPageSize: 3 });
    await store.append(account('a'), [deposit(1), deposit(2)]);
    const empty = await publishRaw(store, 'a', new Uint8Array());
    await store.append(account('a'), [deposit(3), deposit(4)]);
    for (const target of [account('a'), { entityType: 'account' }]) {
      const reader = store.read(target, { onMalformed: 'report' });
      expect((await all(reader)).map((e) => e.data.amount)).toEqual([1, 2, 3, 4]);
      expect(reader.malformed.map((m) => m.sequence)).toEqual([empty]);
    }
    await expect(all(store.read(account('a')))).rejects.toBeInstanceOf(MalformedEventError);
  });

  test('a codec may encode an event as zero bytes', async () => {
    // Encodes an amount of 0 as nothing, as protobuf-style codecs do with defaults.
    const codec: EventCodec = {
      encode: (d) => ((d as { amount?: number }).amount === 0 ? new Uint8Array() : jsonCodec.encode(d)),
      decode: (b) => (b.length === 0 ? { amount: 0 } : jsonCodec.decode(b)),
    };
    const store = open({ codec, readPageSize: 2 });
    await store.append(account('z'), [deposit(0), deposit(5), deposit(0), deposit(7)]);
    expect(
      (await store.load(account('z'), { initial: [] as number[], evolve: (s, e) => [...s, e.data.amount] }))
        .state,
    ).toEqual([0, 5, 0, 7]);
  });

  test('stored headers named like the server reply headers change nothing', async () => {
    const store = open({ readPageSize: 2 });
    const forge = (id: string, amount: number) =>
      publishRaw(store, id, jsonCodec.encode({ amount }), [
        ['Nats-Sequence', '1'],
        ['Nats-Subject', 'rb.other.account.x.Deposited'],
        ['Nats-Num-Pending', '0'],
      ]);
    // The forged event ends the first page, where its pending count would end the read.
    const first = await store.append(account('f'), deposit(1));
    const forged = await forge('f', 2);
    const last = await store.append(account('f'), [deposit(3), deposit(4), deposit(5)]);
    const expected = [first.version, forged, ...last.sequences];
    const targets: ReadTarget<Events>[] = [
      account('f'),
      { eventType: 'Deposited' },
      { entityType: 'account' },
    ];
    for (const target of targets) {
      const events = await all(store.read(target));
      expect(events.map((e) => e.sequence)).toEqual(expected);
      expect(events.map((e) => e.entity.id)).toEqual(['f', 'f', 'f', 'f', 'f']);
    }
    expect(await store.version(account('f'))).toBe(last.version);
    const newest = await forge('g', 6);
    expect(await store.version(account('g'))).toBe(newest);
  });
});

describe('events published without jetsource headers', () => {
  test('take the time the server stored them, on every read path', async () => {
    const store = open({ readPageSize: 1 });
    const before = Date.now() - 1000; // the server's clock is this machine's
    const raws = [await publishRaw(store, 'r', jsonCodec.encode({ amount: 1 }))];
    raws.push(await publishRaw(store, 'r', jsonCodec.encode({ amount: 2 })));
    raws.push(await publishRaw(store, 'r', jsonCodec.encode({ amount: 3 })));
    const after = Date.now() + 1000;
    const paths = {
      'direct gets': await all(store.read(account('r'))),
      // One-message pages hand the rest of a filter read to an ordered consumer.
      'consumer hand-off': await all(store.read({ eventType: 'Deposited' })),
      watch: await firstValueFrom(
        store.watch({ eventType: 'Deposited' }).pipe(
          takeWhile((m) => m.kind !== 'caught-up'),
          filter((m) => m.kind === 'event'),
          map((m) => m.event),
          toArray(),
        ),
      ),
    };
    for (const [path, events] of Object.entries(paths)) {
      expect(
        events.map((e) => e.sequence),
        path,
      ).toEqual(raws);
      expect(
        events.map((e) => e.id),
        path,
      ).toEqual(raws.map((seq) => `seq-${seq}`));
      for (const e of events) {
        expect(e.time.getTime(), path).toBeGreaterThan(before);
        expect(e.time.getTime(), path).toBeLessThan(after);
      }
    }
  });
});

describe('a read that fails part-way', () => {
  test('stops its ordered consumer instead of leaving it to fill its window', async () => {
    const store = open({ readPageSize: 10 });
    for (let i = 0; i < 5; i++)
      await store.append(
        account('m'),
        Array.from({ length: 100 }, (_, k) => deposit(i * 100 + k)),
      );
    await publishRaw(store, 'm', new TextEncoder().encode('{not json'));
    await store.append(
      account('m'),
      Array.from({ length: 100 }, (_, k) => deposit(k)),
    );
    const baseline = await serverCounts(t.server);
    for (let i = 0; i < 3; i++)
      await expect(all(store.read({ entityType: 'account' }))).rejects.toBeInstanceOf(MalformedEventError);
    const after = await eventually(
      () => serverCounts(t.server),
      (c) => c.consumers <= baseline.consumers && c.subscriptions <= baseline.subscriptions,
    );
    expect(after.consumers).toBe(baseline.consumers);
    expect(after.subscriptions).toBeLessThanOrEqual(baseline.subscriptions);
  });

  test('iterating a reader twice reports each malformed event once per pass', async () => {
    const store = open();
    await store.append(account('r'), deposit(1));
    const bad = await publishRaw(store, 'r', new TextEncoder().encode('nope'));
    const reader = store.read(account('r'), { onMalformed: 'report' });
    await all(reader);
    await all(reader);
    expect(reader.malformed.map((m) => m.sequence)).toEqual([bad]);
  });
});
