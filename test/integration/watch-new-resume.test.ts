import type { ConsumerConfig, JetStreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import { createEventStore, type EventStore } from '../../src/index.js';
import { ensureStore } from '../../src/server.js';
import { eventually } from '../support/monitor.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

/** Lets a test hold consumer creates: their replies, or their sending. */
const creates = vi.hoisted(() => ({
  intercept: undefined as
    undefined | ((send: () => Promise<unknown>, config: Partial<ConsumerConfig>) => Promise<unknown>),
}));

vi.mock('@nats-io/jetstream', async (importOriginal) => {
  const real = await importOriginal<typeof import('@nats-io/jetstream')>();
  return {
    ...real,
    jetstreamManager: async (...args: Parameters<typeof real.jetstreamManager>) => {
      const jsm: JetStreamManager = await real.jetstreamManager(...args);
      const add = jsm.consumers.add.bind(jsm.consumers);
      jsm.consumers.add = ((stream: string, config: Partial<ConsumerConfig>) =>
        creates.intercept
          ? creates.intercept(() => add(stream, config), config)
          : add(stream, config)) as typeof jsm.consumers.add;
      return jsm;
    },
  };
});

type Events = { Ticked: { n: number } };
let t: TestServer;

beforeAll(async () => {
  t = await useServer();
});
afterAll(() => t.close());

const tick = async (store: EventStore<Events>, n: number) =>
  (await store.append({ type: 'clock', id: 'c' }, { type: 'Ticked', data: { n } })).version;

/** A stream with one event ('new' skips it), a writer, and a watcher that reconnects quickly. */
async function storeWithHistory(prefix: string) {
  const stream = unique('S');
  const tenant = unique('tenant');
  const writerConn = await t.connect();
  await ensureStore(writerConn, { stream, prefix });
  const writer = createEventStore<Events>({ connection: writerConn, tenant, prefix, stream });
  const watcherConn = await t.connect({ reconnectTimeWait: 100, reconnectJitter: 50 });
  const watcher = createEventStore<Events>({ connection: watcherConn, tenant, prefix, stream });
  await tick(writer, 0);
  return { writer, watcherConn, watcher };
}

/** What holds the first create's reply and the second create's sending, until released. */
function gates() {
  let releaseFirst!: () => void;
  let openSecond!: () => void;
  const firstReply = new Promise<void>((r) => (releaseFirst = r));
  const secondSend = new Promise<void>((r) => (openSecond = r));
  return { firstReply, releaseFirst, secondSend, openSecond };
}

test("after: 'new' resumes after its last event when a reconnect supersedes the first create", async () => {
  const { writer, watcherConn, watcher } = await storeWithHistory('n');
  const { firstReply, releaseFirst, secondSend, openSecond } = gates();
  const policies: unknown[] = [];
  creates.intercept = async (send, config) => {
    policies.push(config.deliver_policy);
    if (policies.length === 1) {
      // Created on the server, but its reply arrives only after a reconnect superseded it.
      const info = await send();
      await firstReply;
      return info;
    }
    if (policies.length === 2) await secondSend;
    return send();
  };
  const seqs: number[] = [];
  const sub = watcher.watch({}, { after: 'new' }).subscribe((m) => {
    if (m.kind === 'event') seqs.push(m.event.sequence);
  });
  try {
    await eventually(
      async () => policies.length,
      (n) => n === 1,
    );
    await new Promise((r) => setTimeout(r, 200));
    const first = await tick(writer, 1);
    await eventually(
      async () => seqs.length,
      (n) => n === 1,
    );
    watcherConn.reconnect();
    await eventually(
      async () => policies.length,
      (n) => n === 2,
    );
    // Appended while no consumer exists: a recreation that asks for 'new' again skips it.
    const during = await tick(writer, 2);
    openSecond();
    releaseFirst();
    const after = await tick(writer, 3);
    await eventually(
      async () => seqs.length,
      (n) => n >= 3,
    );
    expect(seqs).toEqual([first, during, after]);
  } finally {
    creates.intercept = undefined;
    releaseFirst();
    openSecond();
    sub.unsubscribe();
  }
}, 30_000);

test("after: 'new' delivers what was appended while a drop lost the first create's reply, before any event came", async () => {
  const { writer, watcherConn, watcher } = await storeWithHistory('m');
  const { firstReply, releaseFirst, secondSend, openSecond } = gates();
  let made = 0;
  creates.intercept = async (send) => {
    made++;
    if (made === 1) {
      // Made on the server; its reply comes only after a reconnect has superseded it.
      const info = await send();
      await firstReply;
      return info;
    }
    if (made === 2) await secondSend;
    return send();
  };
  const seqs: number[] = [];
  const sub = watcher.watch({}, { after: 'new' }).subscribe((m) => {
    if (m.kind === 'event') seqs.push(m.event.sequence);
  });
  try {
    await eventually(
      async () => made,
      (n) => n === 1,
    );
    watcherConn.reconnect();
    await eventually(
      async () => made,
      (n) => n === 2,
    );
    // Appended after the watch's first consumer was made, before any event reached the
    // watch: the first consumer sends it to an inbox nobody listens to any more.
    const lost = await tick(writer, 1);
    openSecond();
    releaseFirst();
    const after = await tick(writer, 2);
    await eventually(
      async () => seqs.length,
      (n) => n >= 2,
    );
    expect(seqs).toEqual([lost, after]);
  } finally {
    creates.intercept = undefined;
    releaseFirst();
    openSecond();
    sub.unsubscribe();
  }
}, 30_000);
