import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  UnavailableError,
  connectionState,
  createEventStore,
  type ConnectionState,
  type EventStore,
  type WatchMessage,
} from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import { eventually, serverCounts } from '../support/monitor.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

type Events = { Ticked: { n: number } };

let t: TestServer;
let watcherConn: NatsConnection;

beforeAll(async () => {
  t = await useServer();
  watcherConn = await t.connect({ reconnectTimeWait: 100, reconnectJitter: 50 });
  await ensureStore(watcherConn, { stream: 'RESILIENCE', prefix: 'r' });
});
afterAll(() => t.close());

const open = (nc: NatsConnection, tenant: string): EventStore<Events> =>
  createEventStore<Events>({ connection: nc, tenant, prefix: 'r', stream: 'RESILIENCE' });

/** Collects a watch's event sequences until `count` have arrived. */
function collect(store: EventStore<Events>, count: number) {
  const seqs: number[] = [];
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  const sub = store.watch({}, { heartbeatMs: 500 }).subscribe({
    next: (m: WatchMessage<Events>) => {
      if (m.kind === 'event') seqs.push(m.event.sequence);
      if (seqs.length >= count) resolve();
    },
    error: (err) => reject(err),
  });
  return { seqs, done, stop: () => sub.unsubscribe() };
}

async function tick(store: EventStore<Events>, from: number, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++)
    out.push(
      (await store.append({ type: 'clock', id: 'c' }, { type: 'Ticked', data: { n: from + i } })).version,
    );
  return out;
}

describe('watch survives connection loss', () => {
  test('a nats-server restart on the same store: every event exactly once, status reported as values', async () => {
    const tenant = unique('tenant');
    const states: ConnectionState[] = [];
    const status = connectionState(watcherConn).subscribe((s) => states.push(s));
    const watch = collect(open(watcherConn, tenant), 60);
    const writer1 = await t.connect();
    const first = await tick(open(writer1, tenant), 0, 30);
    await new Promise((r) => setTimeout(r, 200));
    await writer1.close();

    await t.server.restart();
    const writer2 = await t.connect();
    const second = await tick(open(writer2, tenant), 30, 30);
    await watch.done;
    watch.stop();
    status.unsubscribe();
    expect(watch.seqs).toEqual([...first, ...second]);
    expect(states[0]).toBe('connected');
    expect(states).toContain('disconnected');
    expect(states[states.length - 1]).toBe('connected');
  }, 60_000);

  test('connectionState stays reconnecting through failed attempts, not flickering back to disconnected', async () => {
    const states: ConnectionState[] = [];
    const status = connectionState(watcherConn).subscribe((s) => states.push(s));
    await t.server.kill();
    // Attempts every 100–150 ms: a dozen fail before the server is back.
    await new Promise((r) => setTimeout(r, 1500));
    await t.server.restart();
    await eventually(
      async () => states.at(-1),
      (s) => s === 'connected',
    );
    status.unsubscribe();
    expect(states).toEqual(['connected', 'disconnected', 'reconnecting', 'connected']);
  }, 30_000);

  test('a watch with until rides out an outage longer than its request timeout', async () => {
    const tenant = unique('tenant');
    const writer = await t.connect();
    const [first] = await tick(open(writer, tenant), 0, 1);
    await writer.close();
    // Short requests, so the outage outlasts several of the watch's looks at the stream.
    const store = createEventStore<Events>({
      connection: watcherConn,
      tenant,
      prefix: 'r',
      stream: 'RESILIENCE',
      timeoutMs: 200,
    });
    const kinds: string[] = [];
    const ended = new Promise<string>((resolve) =>
      store.watch({ type: 'clock', id: 'c' }, { until: first! + 3, heartbeatMs: 500 }).subscribe({
        next: (m) => kinds.push(m.kind === 'event' ? `#${m.event.sequence}` : m.kind),
        error: (err: Error) => resolve(`error: ${err.message}`),
        complete: () => resolve('complete'),
      }),
    );
    await new Promise((r) => setTimeout(r, 300));
    await t.server.kill();
    await new Promise((r) => setTimeout(r, 1500));
    await t.server.restart();
    const again = await t.connect();
    const [next] = await tick(open(again, tenant), 1, 1);
    await open(again, tenant).append({ type: 'clock', id: 'other' }, [
      { type: 'Ticked', data: { n: 2 } },
      { type: 'Ticked', data: { n: 3 } },
    ]);
    await again.close();
    expect(await ended).toBe('complete');
    expect(kinds).toEqual([`#${first}`, 'caught-up', `#${next}`]);
  }, 60_000);

  test('after an outage longer than its watchdog, a watch is live again at once, with one consumer', async () => {
    const tenant = unique('tenant');
    const reconnected = new Promise<void>((resolve) => {
      void (async () => {
        for await (const s of watcherConn.status()) if (s.type === 'reconnect') return resolve();
      })();
    });
    const arrivals: number[] = [];
    let caughtUp!: () => void;
    const live = new Promise<void>((resolve) => (caughtUp = resolve));
    const sub = open(watcherConn, tenant)
      .watch({}, { heartbeatMs: 500 })
      .subscribe((m) => (m.kind === 'caught-up' ? caughtUp() : arrivals.push(Date.now())));
    try {
      await live;
      await t.server.kill();
      // Longer than three heartbeats: the watchdog must leave a disconnected watch alone (a
      // create sent then would only time out), and the reconnect must start one at once.
      await new Promise((r) => setTimeout(r, 3000));
      await t.server.restart();
      await reconnected;
      const writer = await t.connect();
      const appendedAt = Date.now();
      await tick(open(writer, tenant), 0, 1);
      await eventually(
        async () => arrivals.length,
        (n) => n > 0,
      );
      await writer.close();
      // The stale create's request timeout is 5 s: waiting it out was the bug.
      expect(arrivals[0]! - appendedAt).toBeLessThan(2500);
      const consumers = await eventually(
        async () => (await serverCounts(t.server)).consumers,
        (n) => n === 1,
      );
      expect(consumers).toBe(1);
    } finally {
      sub.unsubscribe();
    }
  }, 60_000);

  test('a connection dropped while the consumer create is in flight: live soon after, one consumer', async () => {
    const tenant = unique('tenant');
    const writer = await t.connect();
    const [first] = await tick(open(writer, tenant), 0, 1);
    const nc = await t.connect({ reconnectTimeWait: 100, reconnectJitter: 50 });
    const before = (await serverCounts(t.server)).consumers;
    const startedAt = Date.now();
    let caughtUpAt = 0;
    const seqs: number[] = [];
    const sub = open(nc, tenant)
      .watch({ entityType: 'clock' })
      .subscribe((m) => {
        if (m.kind === 'caught-up') caughtUpAt = Date.now();
        if (m.kind === 'event') seqs.push(m.event.sequence);
      });
    try {
      // The create request is on its way: its reply is lost with the connection.
      void nc.reconnect();
      await eventually(
        async () => caughtUpAt,
        (at) => at > 0,
        10_000,
      );
      // Waiting out the lost create's 5 s request timeout was the bug.
      expect(caughtUpAt - startedAt).toBeLessThan(2500);
      const [second] = await tick(open(writer, tenant), 1, 1);
      await eventually(
        async () => seqs.length,
        (n) => n === 2,
      );
      expect(seqs).toEqual([first, second]);
      const consumers = await eventually(
        async () => (await serverCounts(t.server)).consumers - before,
        (n) => n === 1,
      );
      expect(consumers).toBe(1);
    } finally {
      sub.unsubscribe();
      await writer.close();
    }
  }, 60_000);

  test('a forced WebSocket drop while another connection appends: no gap, no duplicate', async () => {
    const tenant = unique('tenant');
    const writer = await t.connect();
    const store = open(writer, tenant);
    const before = await tick(store, 0, 20);
    const watch = collect(open(watcherConn, tenant), 60);
    await new Promise((r) => setTimeout(r, 200));
    const during = tick(store, 20, 20);
    watcherConn.reconnect();
    const after = [...(await during), ...(await tick(store, 40, 20))];
    await watch.done;
    watch.stop();
    expect(watch.seqs).toEqual([...before, ...after]);
  }, 60_000);
});

describe('watch ends when its connection is closed for good', () => {
  test('closing the connection errors the watch with UnavailableError instead of hanging', async () => {
    const nc = await t.connect();
    const errors: unknown[] = [];
    const sub = open(nc, unique('tenant'))
      .watch()
      .subscribe({ error: (err) => errors.push(err) });
    await new Promise((r) => setTimeout(r, 200));
    await nc.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(UnavailableError);
    expect(sub.closed).toBe(true);
  });
});

describe('connectionState', () => {
  test('an unsubscribed state subscription leaves nothing on the connection to collect it', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const nc = await t.connect();
    const refs = Array.from(
      { length: 10 },
      () => new WeakRef(connectionState(nc).subscribe(() => undefined)),
    );
    for (const ref of refs) ref.deref()?.unsubscribe();
    for (let i = 0; i < 20 && refs.some((r) => r.deref()); i++) {
      await new Promise((r) => setTimeout(r, 10));
      gc();
    }
    expect(refs.filter((r) => r.deref()).length).toBe(0);
    await nc.close();
  });

  test("a closing connection still ends with 'closed', then completes", async () => {
    const nc = await t.connect();
    const states: ConnectionState[] = [];
    let completed = false;
    connectionState(nc).subscribe({ next: (s) => states.push(s), complete: () => (completed = true) });
    await nc.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(states).toEqual(['connected', 'closed']);
    expect(completed).toBe(true);
  });

  test('subscribed during an outage, the first state is not connected', async () => {
    const nc = await t.connect({ reconnectTimeWait: 100, reconnectJitter: 50 });
    const down = new Promise<void>((resolve) => {
      void (async () => {
        for await (const s of nc.status()) if (s.type === 'disconnect') return resolve();
      })();
    });
    await t.server.kill();
    await down;
    const states: ConnectionState[] = [];
    const sub = connectionState(nc).subscribe((s) => states.push(s));
    try {
      expect(states[0]).toMatch(/^(disconnected|reconnecting)$/);
      await t.server.restart();
      await eventually(
        async () => states[states.length - 1],
        (s) => s === 'connected',
        10_000,
      );
      expect(states[states.length - 1]).toBe('connected');
    } finally {
      sub.unsubscribe();
      await nc.close();
    }
  }, 30_000);
});
