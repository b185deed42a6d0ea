// The reply mux that appends and direct gets ride: each request gets its own answers,
// and every way a request can fail ends it at once with nats.js's error shapes.
import { errors, type Msg, type NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { MORE, repliesOf } from '../../src/connection/replies.js';
import { closedWhileWaiting, fromRequestError } from '../../src/connection/request-errors.js';
import { PermissionDeniedError, StoreNotFoundError } from '../../src/errors.js';
import { serverCounts } from '../support/monitor.js';
import { rejection } from '../support/thrown.js';
import { unique, useServer, type TestServer } from '../support/nats.js';

let t: TestServer;
let nc: NatsConnection;

beforeAll(async () => {
  t = await useServer({
    extraConfig: `authorization {
      users = [
        { user: open, password: open }
        { user: limited, password: limited, permissions: {
            publish: { deny: ["denied.>"] }
            subscribe: { allow: ["_INBOX_limited.>", "echo.>"] } } }
      ]
    }`,
  });
  nc = await t.connect({ user: 'open', pass: 'open' });
});
afterAll(() => t?.close());

const text = (m: Msg) => new TextDecoder().decode(m.data);

/** Answers each request on `subject` with its own data, after `delayMs(data)`. */
function echo(on: NatsConnection, subject: string, delayMs: (data: string) => number = () => 0) {
  return on.subscribe(subject, {
    callback: (_err, m) => void setTimeout(() => m.respond(m.data), delayMs(text(m))),
  });
}

test('concurrent requests each get their own answer, whatever order the answers come in', async () => {
  const subject = `echo.${unique()}`;
  echo(nc, subject, (data) => Number(data) % 7);
  await nc.flush();
  const replies = repliesOf(nc);
  const answers = await Promise.all(
    Array.from({ length: 300 }, (_, i) => replies.one(subject, String(i), { timeoutMs: 5000 }).then(text)),
  );
  expect(answers).toEqual(Array.from({ length: 300 }, (_, i) => String(i)));
});

test('a request nobody answers fails with a TimeoutError at its timeout, and a late answer is dropped', async () => {
  const subject = `echo.${unique()}`;
  echo(nc, subject, (data) => (data === 'late' ? 1000 : 1500));
  await nc.flush();
  const started = Date.now();
  const err = await rejection(repliesOf(nc).one(subject, 'late', { timeoutMs: 100 }));
  expect(err).toBeInstanceOf(errors.TimeoutError);
  expect(Date.now() - started).toBeGreaterThanOrEqual(95);
  // The late answer arrives while another request waits: only that one's answer ends it.
  expect(text(await repliesOf(nc).one(subject, 'mine', { timeoutMs: 5000 }))).toBe('mine');
});

test('a request nobody listens to fails at once as no responders, which reads as a missing store', async () => {
  const started = Date.now();
  const err = await rejection(repliesOf(nc).one(`nobody.${unique()}`, '', { timeoutMs: 5000 }));
  expect(Date.now() - started).toBeLessThan(2000);
  expect(err).toBeInstanceOf(errors.RequestError);
  expect((err as Error).cause).toBeInstanceOf(errors.NoRespondersError);
  expect(fromRequestError(err, 'S', 'nobody')).toBeInstanceOf(StoreNotFoundError);
});

test('several answers go to the handler until it says the last has come', async () => {
  const subject = `echo.${unique()}`;
  nc.subscribe(subject, {
    callback: (_err, m) => {
      for (let i = 0; i < 5; i++) m.respond(String(i));
    },
  });
  await nc.flush();
  const seen: string[] = [];
  const result = await repliesOf(nc).many(subject, '', { timeoutMs: 2000 }, (reply) => {
    seen.push(text(reply));
    return seen.length === 3 ? `last: ${text(reply)}` : MORE;
  });
  expect(result).toBe('last: 2');
  expect(seen).toEqual(['0', '1', '2']);
  // What the handler throws ends the request with it; later answers are dropped.
  const refused = new Error('bad answer');
  let calls = 0;
  const err = await rejection(
    repliesOf(nc).many(subject, '', { timeoutMs: 2000 }, () => {
      calls++;
      throw refused;
    }),
  );
  expect(err).toBe(refused);
  await nc.flush();
  expect(calls).toBe(1);
});

test('answers of several arriving after the timeout end nothing twice', async () => {
  const subject = `echo.${unique()}`;
  nc.subscribe(subject, {
    callback: (_err, m) => {
      m.respond('first');
      setTimeout(() => m.respond('second'), 1500);
    },
  });
  await nc.flush();
  const seen: string[] = [];
  const err = await rejection(
    repliesOf(nc).many(subject, '', { timeoutMs: 1000 }, (reply) => {
      seen.push(text(reply));
      return MORE;
    }),
  );
  expect(err).toBeInstanceOf(errors.TimeoutError);
  await new Promise((resolve) => setTimeout(resolve, 700));
  await nc.flush();
  expect(seen).toEqual(['first']);
});

test('a request the server refuses to publish fails at once as denied; others on the connection go on', async () => {
  const limited = await t.connect({ user: 'limited', pass: 'limited', inboxPrefix: '_INBOX_limited' });
  const subject = `echo.${unique()}`;
  echo(limited, subject, () => 50);
  await limited.flush();
  const replies = repliesOf(limited);
  const allowed = replies.one(subject, 'ok', { timeoutMs: 5000 });
  const started = Date.now();
  // Two requests on the refused subject: each fails as denied.
  const errs = await Promise.all(
    [1, 2].map(() => rejection(replies.one('denied.x', '', { timeoutMs: 5000 }))),
  );
  expect(Date.now() - started).toBeLessThan(2000);
  for (const err of errs) {
    const mapped = fromRequestError(err, 'S', 'denied.x');
    expect(mapped).toBeInstanceOf(PermissionDeniedError);
    expect((mapped as PermissionDeniedError).message).toContain('denied.x');
  }
  expect(text(await allowed)).toBe('ok');
});

test('a subject nats.js refuses is refused before anything is sent', async () => {
  const err = await rejection(repliesOf(nc).one('bad subject', '', { timeoutMs: 5000 }));
  expect(err).toBeInstanceOf(errors.InvalidSubjectError);
});

test('a reply inbox the user may not subscribe to fails the request as denied, and every later one too', async () => {
  const limited = await t.connect({ user: 'limited', pass: 'limited' }); // default _INBOX prefix
  const subject = `echo.${unique()}`;
  echo(nc, subject);
  await nc.flush();
  for (let attempt = 0; attempt < 2; attempt++) {
    const started = Date.now();
    const err = await rejection(repliesOf(limited).one(subject, '', { timeoutMs: 5000 }));
    expect(Date.now() - started).toBeLessThan(2000);
    const mapped = fromRequestError(err, 'S', subject);
    expect(mapped).toBeInstanceOf(PermissionDeniedError);
    expect((mapped as Error).message).toMatch(/_INBOX\./);
  }
  expect(limited.isClosed()).toBe(false);
});

test('a connection that closes fails what waits as closed while waiting, and later requests at once', async () => {
  const own = await t.connect({ user: 'open', pass: 'open' });
  const subject = `echo.${unique()}`;
  echo(nc, subject, () => 1000);
  await nc.flush();
  const waiting = rejection(repliesOf(own).one(subject, '', { timeoutMs: 5000 }));
  await own.flush();
  await own.close();
  const err = await waiting;
  expect(closedWhileWaiting(err)).toBe(true);
  expect(await rejection(repliesOf(own).one(subject, '', { timeoutMs: 5000 }))).toBeInstanceOf(
    errors.ClosedConnectionError,
  );
});

test('a connection that drains fails what waits at once, and leaves no subscription behind', async () => {
  const subject = `echo.${unique()}`;
  echo(nc, subject, () => 1000);
  await nc.flush();
  const baseline = await serverCounts(t.server);
  const own = await t.connect({ user: 'open', pass: 'open' });
  const started = Date.now();
  const waiting = rejection(repliesOf(own).one(subject, '', { timeoutMs: 5000 }));
  await own.flush();
  await own.drain();
  expect(closedWhileWaiting(await waiting)).toBe(true);
  expect(Date.now() - started).toBeLessThan(2000);
  expect(await rejection(repliesOf(own).one(subject, '', { timeoutMs: 5000 }))).toBeInstanceOf(
    errors.ClosedConnectionError,
  );
  await expect.poll(() => serverCounts(t.server)).toEqual(baseline);
});
