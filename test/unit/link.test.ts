import type { NatsConnection, Status } from '@nats-io/nats-core';
import { describe, expect, test } from 'vitest';
import { acrossDrops, DROPPED, linkChange, linkOf, unlessDropped } from '../../src/connection/link.js';
import { UnavailableError } from '../../src/index.js';

/** A connection whose status events the test sends; nothing else of it is used. */
function fakeConnection() {
  const waiting: Array<(r: IteratorResult<Status>) => void> = [];
  const queued: Status[] = [];
  let closed = false;
  const nc = {
    isClosed: () => closed,
    status: () => ({
      [Symbol.asyncIterator]: () => ({
        next: () =>
          new Promise<IteratorResult<Status>>((resolve) => {
            const s = queued.shift();
            if (s) resolve({ value: s, done: false });
            else if (closed) resolve({ value: undefined, done: true });
            else waiting.push(resolve);
          }),
      }),
    }),
  } as unknown as NatsConnection;
  const emit = (type: Status['type']) => {
    const s = { type } as Status;
    const next = waiting.shift();
    if (next) next({ value: s, done: false });
    else queued.push(s);
  };
  const close = () => {
    closed = true;
    for (const next of waiting.splice(0)) next({ value: undefined, done: true });
  };
  // Status events reach the link on later ticks, as nats.js's do.
  const settle = () => new Promise((r) => setTimeout(r, 0));
  return { nc, emit, close, settle };
}

test('stale connections and forced reconnects are drops; other statuses say nothing of the link', () => {
  expect(
    ['disconnect', 'staleConnection', 'forceReconnect'].map((t) => linkChange(t as Status['type'])),
  ).toEqual(['disconnect', 'disconnect', 'disconnect']);
  expect(linkChange('reconnecting')).toBe('reconnecting');
  expect(linkChange('reconnect')).toBe('reconnect');
  expect(
    ['update', 'ldm', 'error', 'ping', 'slowConsumer', 'close'].map((t) => linkChange(t as Status['type'])),
  ).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
});

describe('a followed link', () => {
  test('is up until a drop; then waits for the reconnect, or gives up after its time', async () => {
    const { nc, emit, settle } = fakeConnection();
    const link = linkOf(nc);
    expect(link.usable).toBe(true);
    emit('disconnect');
    await settle();
    expect(link.usable).toBe(false);
    expect(await link.whenUp(10)).toBe(false);
    const waiting = link.whenUp(5_000);
    emit('reconnect');
    expect(await waiting).toBe(true);
    expect(link.usable).toBe(true);
  });

  test('closed, it lets requests go (they fail at once on a closed connection)', async () => {
    const { nc, emit, close, settle } = fakeConnection();
    const link = linkOf(nc);
    emit('disconnect');
    await settle();
    const waiting = link.whenUp(5_000);
    close();
    expect(await waiting).toBe(true);
    expect(link.usable).toBe(true);
  });

  test('a drop ends the requests in flight, and a request settling later changes nothing', async () => {
    const { nc, emit } = fakeConnection();
    let fail!: (err: Error) => void;
    const inFlight = unlessDropped(nc, () => new Promise((_, reject) => (fail = reject)));
    const answered = unlessDropped(nc, () => Promise.resolve('answer'));
    expect(await answered).toBe('answer');
    emit('staleConnection');
    expect(await inFlight).toBe(DROPPED);
    fail(new Error('timeout')); // the abandoned request's own timer: unhandled would fail the run
    expect(linkOf(nc).inFlight.size).toBe(0);
  });

  test('an idempotent request is sent again after each reconnect, up to 3 drops', async () => {
    const { nc, emit, settle } = fakeConnection();
    let sent = 0;
    const never = () => {
      sent++;
      return new Promise<string>(() => undefined);
    };
    const request = acrossDrops(nc, never, 5_000).catch((e: unknown) => e);
    for (let drop = 0; drop < 4; drop++) {
      await settle();
      emit('disconnect');
      await settle();
      emit('reconnect');
    }
    const err = await request;
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/dropped 4 times before a request was answered/);
    expect(sent).toBe(4);
    let again = 0;
    const answered = acrossDrops(
      nc,
      () => (++again === 1 ? new Promise<string>(() => undefined) : Promise.resolve('ok')),
      5_000,
    );
    await settle();
    emit('disconnect');
    await settle();
    emit('reconnect');
    expect(await answered).toBe('ok');
    expect(again).toBe(2);
  });
});
