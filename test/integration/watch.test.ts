import { headers, type NatsConnection } from '@nats-io/nats-core';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { firstValueFrom, lastValueFrom, filter, take, toArray, type Subscription } from 'rxjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEventStore, foldWatch, type EventStore, type WatchMessage } from '../../src/index.js';
import { createMemoryEventStore } from '../../src/testing/index.js';
import { ensureStore } from '../../src/server.js';
import { OrderedConsumer } from '../../src/store/jetstream/ordered-consumer.js';
import { HORIZON_MS } from '../../src/store/jetstream/own-appends.js';
import { eventually, serverCounts } from '../support/monitor.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

type Events = { Deposited: { amount: number } };
type Message = WatchMessage<Events>;

let t: TestServer;
let writerConn: NatsConnection;
let watcherConn: NatsConnection;
const stream = 'WATCH';

beforeAll(async () => {
  t = await useServer();
  writerConn = await t.connect();
  watcherConn = await t.connect();
  await ensureStore(writerConn, { stream, prefix: 'w' });
});
afterAll(() => t.close());

function stores(): { writer: EventStore<Events>; watcher: EventStore<Events> } {
  const tenant = unique('tenant');
  return {
    writer: createEventStore<Events>({ connection: writerConn, tenant, prefix: 'w', stream }),
    watcher: createEventStore<Events>({ connection: watcherConn, tenant, prefix: 'w', stream }),
  };
}

const account = (id: string) => ({ type: 'account', id });
const deposit = (amount: number) => ({ type: 'Deposited' as const, data: { amount } });

/** Appends `count` events as batches of up to 100 across a few entities. */
async function fill(store: EventStore<Events>, count: number, from = 0): Promise<number[]> {
  const seqs: number[] = [];
  for (let i = 0; i < count; i += 100) {
    const n = Math.min(100, count - i);
    const r = await store.append(
      account(`e${(from + i) % 3}`),
      Array.from({ length: n }, (_, k) => deposit(from + i + k)),
    );
    seqs.push(...r.sequences);
  }
  return seqs;
}

const sequencesOf = (messages: Message[]) =>
  messages.flatMap((m) => (m.kind === 'event' ? [m.event.sequence] : []));

describe('watch: catch-up, caught-up, live', () => {
  test('an empty stream signals caught-up at once', async () => {
    const { watcher } = stores();
    const messages = await lastValueFrom(watcher.watch({}, { noWait: true }).pipe(toArray()));
    expect(messages).toEqual([
      { kind: 'caught-up', sequence: 0, progress: { delivered: 0, pending: 0, caughtUp: true } },
    ]);
  });

  test('a filter that matches nothing signals caught-up even on a busy stream', async () => {
    const { writer, watcher } = stores();
    await fill(writer, 50);
    const messages = await lastValueFrom(
      watcher.watch({ entityType: 'nothing' }, { noWait: true }).pipe(toArray()),
    );
    expect(messages.map((m) => m.kind)).toEqual(['caught-up']);
  });

  test('history is delivered in order with progress, then caught-up with the last sequence', async () => {
    const { writer, watcher } = stores();
    const seqs = await fill(writer, 250);
    const messages = await lastValueFrom(watcher.watch({}, { noWait: true }).pipe(toArray()));
    expect(sequencesOf(messages)).toEqual(seqs);
    const last = messages[messages.length - 1]!;
    expect(last).toMatchObject({ kind: 'caught-up', sequence: seqs[seqs.length - 1] });
    const first = messages[0]!;
    expect(first.progress).toMatchObject({ delivered: 1, pending: 249, caughtUp: false });
    expect(messages.filter((m) => m.kind === 'caught-up')).toHaveLength(1);
  });

  test('appends during catch-up from a second connection join a contiguous, duplicate-free seam', async () => {
    const { writer, watcher } = stores();
    const before = await fill(writer, 2000);
    const received: Message[] = [];
    const total = 2000 + 300 + 100;
    const done = new Promise<void>((resolve, reject) => {
      const sub = watcher.watch().subscribe({
        next: (m) => {
          received.push(m);
          if (sequencesOf(received).length === total) {
            sub.unsubscribe();
            resolve();
          }
        },
        error: reject,
      });
    });
    const during = await fill(writer, 300, 2000); // races the catch-up
    await firstValueFrom(watcher.watch({}, { noWait: true }).pipe(filter((m) => m.kind === 'caught-up')));
    const after = await fill(writer, 100, 2300);
    await done;
    expect(sequencesOf(received)).toEqual([...before, ...during, ...after]);
    expect(received.filter((m) => m.kind === 'caught-up')).toHaveLength(1);
  });

  test("after: 'new' skips history and delivers only what comes next", async () => {
    const { writer, watcher } = stores();
    await fill(writer, 20);
    const live = watcher.watch({}, { after: 'new' }).pipe(take(3), toArray());
    const result = lastValueFrom(live);
    await new Promise((r) => setTimeout(r, 200));
    const seqs = await fill(writer, 2, 100);
    const messages = await result;
    expect(messages[0]!.kind).toBe('caught-up');
    expect(sequencesOf(messages)).toEqual(seqs);
  });

  test('after and until bound the range, and until completes the watch', async () => {
    const { writer, watcher } = stores();
    const seqs = await fill(writer, 10);
    const messages = await lastValueFrom(
      watcher.watch({}, { after: seqs[2], until: seqs[6] }).pipe(toArray()),
    );
    expect(sequencesOf(messages)).toEqual(seqs.slice(3, 7));
  });

  test('filters narrow the watch to one entity', async () => {
    const { writer, watcher } = stores();
    await fill(writer, 300);
    const messages = await lastValueFrom(watcher.watch(account('e1'), { noWait: true }).pipe(toArray()));
    const events = messages.flatMap((m) => (m.kind === 'event' ? [m.event] : []));
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.entity.id === 'e1')).toBe(true);
  });
});

describe.each([
  ['JetStream', () => stores()],
  [
    'memory',
    () => {
      const store = createMemoryEventStore<Events>({ tenant: unique('tenant'), prefix: 'w' });
      return { writer: store, watcher: store };
    },
  ],
])('watch until (%s store)', (_kind, open) => {
  const run = (
    store: EventStore<Events>,
    target: Parameters<EventStore<Events>['watch']>[0],
    until: number,
    after?: number,
  ) => lastValueFrom(store.watch(target, { until, after }).pipe(toArray()));

  test('never emits past until, and says caught-up before completing', async () => {
    const { writer, watcher } = open();
    const a1 = (await writer.append(account('a'), deposit(1))).version;
    await writer.append(account('b'), [deposit(2), deposit(3), deposit(4)]);
    await writer.append(account('a'), deposit(5));
    const messages = await run(watcher, account('a'), a1 + 2);
    expect(messages.map((m) => m.kind)).toEqual(['event', 'caught-up']);
    expect(sequencesOf(messages)).toEqual([a1]);
    expect(messages[1]).toMatchObject({ kind: 'caught-up', sequence: a1 + 2 });
  });

  test('completes when the stream has passed until, even if the filter has nothing after it', async () => {
    const { writer, watcher } = open();
    const a1 = (await writer.append(account('a'), deposit(1))).version;
    await writer.append(account('b'), [deposit(2), deposit(3), deposit(4)]);
    const messages = await run(watcher, account('a'), a1 + 2);
    expect(messages.map((m) => m.kind)).toEqual(['event', 'caught-up']);
  });

  test('until on an event of the filter ends with caught-up, so folds emit', async () => {
    const { writer, watcher } = open();
    const seqs = (await writer.append(account('a'), [deposit(1), deposit(2), deposit(3)])).sequences;
    const folded = await lastValueFrom(
      watcher
        .watch({}, { until: seqs[1] })
        .pipe(foldWatch({ initial: 0, evolve: (n: number, e) => n + e.data.amount }), toArray()),
    );
    expect(folded).toEqual([{ state: 3, version: seqs[1], caughtUp: true }]);
  });

  test('after at or past until completes at once, with no events', async () => {
    const { writer, watcher } = open();
    await writer.append(account('a'), [deposit(1), deposit(2), deposit(3)]);
    const messages = await run(watcher, {}, 1, 2);
    expect(messages).toEqual([
      { kind: 'caught-up', sequence: 1, progress: { delivered: 0, pending: 0, caughtUp: true } },
    ]);
  });

  test.each([
    [
      'at the first event past until, without emitting it',
      2,
      async (w: EventStore<Events>) => {
        await w.append(account('a'), deposit(1));
        await w.append(account('b'), deposit(2));
        await w.append(account('a'), deposit(3));
      },
    ],
    [
      'once other entities take the stream to until',
      3,
      async (w: EventStore<Events>) => {
        await w.append(account('a'), deposit(1));
        await w.append(account('b'), [deposit(2), deposit(3)]);
      },
    ],
  ] as const)('a live watch completes %s', async (_ends, until, write) => {
    const { writer, watcher } = open();
    const marker = (await writer.append(account('m'), deposit(0))).version;
    const messages: Message[] = [];
    const done = new Promise<void>((complete) =>
      watcher
        .watch(account('a'), { until: marker + until })
        .subscribe({ next: (m) => messages.push(m), complete }),
    );
    await eventually(
      async () => messages,
      (m) => m.some((x) => x.kind === 'caught-up'),
    );
    await write(writer);
    await done;
    expect(messages.map((m) => m.kind)).toEqual(['caught-up', 'event']);
    expect(sequencesOf(messages)).toEqual([marker + 1]);
  });
});

/** A stream of its own that allows purge (jetsource's own streams deny it). */
async function purgeableStream() {
  const name = unique('PURGE');
  const prefix = unique('pp');
  const jsm = await jetstreamManager(writerConn);
  await jsm.streams.add({ name, subjects: [`${prefix}.>`], allow_direct: true, allow_atomic: true });
  return { name, prefix, jsm };
}

describe('watch: caught-up survives a purge during catch-up', () => {
  test('purging what num_pending promised still ends in caught-up (idle heartbeat)', async () => {
    const { name: purgeable, prefix, jsm } = await purgeableStream();
    const writer = createEventStore<Events>({
      connection: writerConn,
      tenant: 'x',
      prefix,
      stream: purgeable,
    });
    const watcher = createEventStore<Events>({
      connection: watcherConn,
      tenant: 'x',
      prefix,
      stream: purgeable,
    });
    await fill(writer, 20_000);
    let purged = false;
    const messages = await lastValueFrom(
      watcher.watch({}, { noWait: true, heartbeatMs: 300 }).pipe(
        filter((m) => {
          if (!purged && m.kind === 'event' && m.progress.delivered === 10) {
            purged = true;
            void jsm.streams.purge(purgeable);
          }
          return m.kind === 'caught-up';
        }),
        toArray(),
      ),
    );
    expect(purged).toBe(true);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.progress.delivered).toBeLessThan(20_000);
    await jsm.streams.delete(purgeable);
  });
});

// A consumer of one replica may sit on a follower that has not applied the watching store's
// latest append yet. One server cannot lag, so these tests make the consumer miss an own
// append in other ways: one appended after it reported nothing pending, one purged.
describe("watch: caught-up covers the store's own appends", () => {
  test('a consumer told to reach a sequence says caught-up there, not where it first had nothing pending', async () => {
    const { writer } = stores();
    const [last] = (await fill(writer, 3)).slice(-1);
    const reported: unknown[] = [];
    const consumer = new OrderedConsumer(
      {
        nc: watcherConn,
        stream,
        filter: `w.${writer.tenant}.>`,
        after: 0,
        heartbeatMs: 300,
        reach: { sequence: last! + 2, until: Date.now() + 60_000 },
      },
      {
        message: () => undefined,
        caughtUp: (sequence) => reported.push(sequence),
        error: (err) => reported.push(err),
      },
    );
    await consumer.start();
    await new Promise((r) => setTimeout(r, 1000)); // three idle heartbeats with nothing pending
    const missing = reported.slice();
    const { version } = await writer.append(account('e0'), [deposit(1), deposit(2)]);
    await eventually(
      async () => reported.slice(),
      (r) => r.length > 0,
    );
    await consumer.stop();
    expect([missing, reported, version]).toEqual([[], [last! + 2], last! + 2]);
  });

  test("a watch waits for the store's own append it cannot find, and gives up on it 3 s after the append", async () => {
    const { name: purgeable, prefix, jsm } = await purgeableStream();
    try {
      const store = createEventStore<Events>({
        connection: watcherConn,
        tenant: 'x',
        prefix,
        stream: purgeable,
      });
      const sent = Date.now();
      await store.append(account('a'), deposit(1));
      const acknowledged = Date.now();
      await jsm.streams.purge(purgeable);
      const messages: Message[] = [];
      // A long heartbeat: giving up says caught-up at once, not at the next heartbeat.
      const watching = store.watch({}, { heartbeatMs: 8000 }).subscribe((m) => messages.push(m));
      await new Promise((r) => setTimeout(r, acknowledged + 2000 - Date.now()));
      const early = messages.length;
      await eventually(
        async () => messages.length,
        (n) => n > 0,
        10_000,
      );
      const at = Date.now();
      watching.unsubscribe();
      expect(early).toBe(0);
      expect(messages.map((m) => m.kind)).toEqual(['caught-up']);
      expect(at - sent).toBeGreaterThanOrEqual(HORIZON_MS - 10);
      expect(at - acknowledged).toBeLessThan(HORIZON_MS + 2000);
    } finally {
      await jsm.streams.delete(purgeable);
    }
  });
});

describe('watch: a consumer changed under it', () => {
  // A headers-only delivery means another user updated our consumer (see the tenancy attack
  // suite): it is made again. A stored message may carry the header itself, and must not
  // make it again forever.
  test('a stored message with no data that carries Nats-Msg-Size itself is delivered, after one remake', async () => {
    const { writer, watcher } = stores();
    const filter = `w.${writer.tenant}.>`;
    let creates = 0;
    const api = writerConn.subscribe(`$JS.API.CONSUMER.CREATE.${stream}.*.${filter}`, {
      callback: () => void creates++,
    });
    await writerConn.flush();
    const h = headers();
    h.set('Nats-Msg-Size', '5');
    const { seq } = await jetstream(writerConn).publish(
      `w.${writer.tenant}.account.x.Deposited`,
      new Uint8Array(),
      {
        headers: h,
      },
    );
    const messages = await lastValueFrom(
      watcher.watch({}, { noWait: true, onMalformed: 'report' }).pipe(toArray()),
    );
    // Every create request reached the server before the watch ended: a round trip brings them in.
    await writerConn.flush();
    api.unsubscribe();
    expect(
      messages.map((m) => (m.kind === 'malformed' ? `malformed ${m.malformed.sequence}` : m.kind)),
    ).toEqual([`malformed ${seq}`, 'caught-up']);
    expect(creates).toBe(2);
  });
});

describe('watch: teardown leaves nothing behind', () => {
  test('unsubscribing removes the consumer and its subscription', async () => {
    const { writer, watcher } = stores();
    await fill(writer, 10);
    const baseline = await serverCounts(t.server);
    const subs: Subscription[] = [];
    for (let i = 0; i < 3; i++) {
      const caught = new Promise<void>((resolve) => {
        subs.push(watcher.watch().subscribe((m) => m.kind === 'caught-up' && resolve()));
      });
      await caught;
    }
    const during = await serverCounts(t.server);
    expect(during.consumers).toBe(baseline.consumers + 3);
    subs.forEach((s) => s.unsubscribe());
    const after = await eventually(
      () => serverCounts(t.server),
      (c) => c.consumers === baseline.consumers && c.subscriptions === baseline.subscriptions,
    );
    expect(after).toEqual(baseline);
  });

  test('an unsubscribe before setup finishes still removes everything', async () => {
    const { writer, watcher } = stores();
    await fill(writer, 10);
    const baseline = await serverCounts(t.server);
    for (let i = 0; i < 5; i++) watcher.watch().subscribe().unsubscribe();
    const early = watcher.watch().subscribe();
    await new Promise((r) => setTimeout(r, 1));
    early.unsubscribe();
    await new Promise((r) => setTimeout(r, 300));
    const after = await eventually(
      () => serverCounts(t.server),
      (c) => c.consumers === baseline.consumers && c.subscriptions === baseline.subscriptions,
    );
    expect(after).toEqual(baseline);
  });
});
