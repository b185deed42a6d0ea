import {
  errors,
  headers as natsHeaders,
  type Msg,
  type MsgCallback,
  type MsgHdrs,
  type NatsConnection,
  type PermissionViolationError,
  type QueuedIterator,
  type Status,
} from '@nats-io/nats-core';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JetStreamApiError } from '@nats-io/jetstream';
import { inboxFor, jetStreamApi } from '../../src/connection/connect.js';
// @ts-expect-error -- plain ESM script without types
import { renderConfig } from '../../scripts/generate-server-config.mjs';
import { useServer, type TestServer } from './nats.js';

/**
 * A JetStream API subject as the connection's account names it: the bundled config's
 * reader and writer accounts import their data account's API under `JS.API`, so an
 * attempt on `$JS.API.X` is made on `JS.API.X` there (their own `$JS.API` has no JetStream).
 */
export const asApi = (nc: NatsConnection, subject: string): string =>
  subject === '$JS.API' || subject.startsWith('$JS.API.')
    ? jetStreamApi(nc) + subject.slice('$JS.API'.length)
    : subject;

/** Tenants and roles of the bundled nats-server.conf. */
export type Role = 'writer' | 'reader' | 'service';

/** Connect options of `<tenant>-<role>` in the bundled config (development passwords). */
export function credentials(tenant: string, role: Role) {
  return {
    user: `${tenant}-${role}`,
    pass: `dev-${tenant}-${role}`,
    inboxPrefix: `_INBOX_${tenant}_${role}`,
    // Readers and writers have their own accounts, which import the JetStream API under JS.API.
    ...(role === 'service' ? {} : { apiPrefix: 'JS.API' }),
  };
}

/** One reply of the server, reduced to what the assertions look at. */
export interface Reply {
  /** `Nats-Subject` of a direct-get reply, else the reply's subject. */
  readonly subject: string;
  /** Status of a header-only reply (404, 408, 503 …), or 0 for a message. */
  readonly status: number;
  /** The body, plus any base64 `message.data` of a STREAM.MSG.GET answer decoded, for leak checks. */
  readonly text: string;
  /** The JetStream API error of a JSON answer. */
  readonly error?: { code: number; err_code: number; description: string };
}

/**
 * What one attempt came to:
 * - `denied`: the server refused the subject (nats.js PermissionViolationError, possibly wrapped);
 * - `refused`: the server (or client library) answered with an error: an API error, a 404,
 *   no responders, a timeout, a typed error of jetsource;
 * - `answered`: the server did what was asked.
 */
export interface Outcome {
  readonly kind: 'denied' | 'refused' | 'answered';
  readonly replies: readonly Reply[];
  readonly error?: unknown;
  /** One line for failure messages. */
  readonly detail: string;
}

/** An operation run over one connection. */
export type Attempt = (nc: NatsConnection) => Promise<Outcome>;

const decoder = new TextDecoder();

/** The first PermissionViolationError in an error's cause chain. */
export function permissionViolation(err: unknown): PermissionViolationError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof errors.PermissionViolationError) return e;
  }
  return undefined;
}

/** Classifies a thrown error. */
export function failed(err: unknown): Outcome {
  const violation = permissionViolation(err);
  if (violation) return { kind: 'denied', replies: [], error: err, detail: violation.message };
  const detail =
    err instanceof JetStreamApiError
      ? `api error ${err.code}: ${err.message}`
      : `${(err as Error)?.name ?? 'error'}: ${(err as Error)?.message ?? String(err)}`;
  return { kind: 'refused', replies: [], error: err, detail };
}

/** A subscription callback that records every message as a {@link Reply}. */
export function collect(into: Reply[]): MsgCallback<Msg> {
  return (err, msg) => {
    if (!err) into.push(toReply(msg));
  };
}

export function toReply(msg: Msg): Reply {
  const status = msg.data.length === 0 && msg.headers ? msg.headers.code : 0;
  let text = decoder.decode(msg.data);
  let error: Reply['error'];
  if (text.startsWith('{')) {
    try {
      const json = JSON.parse(text) as { error?: Reply['error']; message?: { data?: string } };
      error = json.error;
      if (typeof json.message?.data === 'string') text += Buffer.from(json.message.data, 'base64').toString();
    } catch {
      // Not JSON: an event payload that happens to start with "{" but is not valid.
    }
  }
  const hdrs = msg.headers as MsgHdrs | undefined;
  const subject = hdrs?.get('Nats-Subject') || msg.subject;
  return { subject, status, text: status ? `${status} ${hdrs?.description ?? ''}` : text, error };
}

/** `refused` when any reply is an error or error status, else `answered`. */
export function fromReplies(replies: Reply[]): Outcome {
  const bad = replies.find((r) => r.error || r.status >= 300);
  if (replies.length === 0) return { kind: 'refused', replies, detail: 'no reply' };
  if (bad)
    return {
      kind: 'refused',
      replies,
      detail: bad.error ? `api error ${bad.error.err_code}: ${bad.error.description}` : bad.text,
    };
  return { kind: 'answered', replies, detail: `${replies.length} repl${replies.length === 1 ? 'y' : 'ies'}` };
}

const encode = (body: unknown): string | Uint8Array =>
  body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);

function headersOf(pairs?: Record<string, string>): MsgHdrs | undefined {
  if (!pairs) return undefined;
  const h = natsHeaders();
  for (const [k, v] of Object.entries(pairs)) h.set(k, v);
  return h;
}

/** A request expecting one reply (JetStream API, direct get by subject, a publish with ack). */
export function request(subject: string, body?: unknown, hdrs?: Record<string, string>): Attempt {
  return async (nc) => {
    try {
      const msg = await nc.request(asApi(nc, subject), encode(body), {
        timeout: 1000,
        headers: headersOf(hdrs),
      });
      return fromReplies([toReply(msg)]);
    } catch (err) {
      return failed(err);
    }
  };
}

/**
 * A request answered by several messages (direct batch get, multi_last, pull next): collects
 * replies until an end-of-batch or error status, `max` messages, a permission error, or one
 * second of quiet. Its own inbox subscription also sees pulled messages, which arrive under
 * their stream subject and so never resolve an `nc.request`.
 */
export function batch(apiSubject: string, body: unknown, max = Infinity): Attempt {
  return (nc) =>
    new Promise<Outcome>((resolve) => {
      const subject = asApi(nc, apiSubject);
      const replies: Reply[] = [];
      const inbox = inboxFor(nc);
      const status = watchPermissionErrors(nc);
      let timer: ReturnType<typeof setTimeout>;
      const done = (outcome: Outcome) => {
        clearTimeout(timer);
        sub.unsubscribe();
        status.stop();
        resolve(outcome);
      };
      const quiet = () => {
        clearTimeout(timer);
        timer = setTimeout(() => done(fromReplies(replies)), 1000);
      };
      const sub = nc.subscribe(inbox, {
        callback: (err, msg) => {
          if (err) return done(failed(err));
          const reply = toReply(msg);
          if (reply.status === 204) return done(fromReplies(replies)); // end of batch
          replies.push(reply);
          if (reply.status >= 300 || replies.length >= max) return done(fromReplies(replies));
          quiet();
        },
      });
      status.on(subject, (err) => done(failed(err)));
      nc.publish(subject, encode(body), { reply: inbox });
      quiet();
    });
}

/** A plain publish: it has no reply, so a denial shows only as an async permission error status. */
export function publish(apiSubject: string, body?: unknown, hdrs?: Record<string, string>): Attempt {
  return async (nc) => {
    const subject = asApi(nc, apiSubject);
    const status = watchPermissionErrors(nc);
    let denied: unknown;
    status.on(subject, (err) => (denied = err));
    try {
      nc.publish(subject, encode(body), { headers: headersOf(hdrs) });
      // The server answers a PUB's -ERR before the flush's PONG; give the status iterator a turn.
      await nc.flush();
      await new Promise((r) => setTimeout(r, 20));
    } finally {
      status.stop();
    }
    return denied
      ? failed(denied)
      : { kind: 'answered', replies: [], detail: 'published without a permission error' };
  };
}

/** Runs any client-library call; resolves to `answered` with whatever it returned, or classifies its error. */
export function call(run: (nc: NatsConnection) => Promise<unknown>): Attempt {
  return async (nc) => {
    try {
      const value = await run(nc);
      const text =
        value === undefined
          ? ''
          : JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? decoder.decode(v) : v));
      return { kind: 'answered', replies: [{ subject: '', status: 0, text }], detail: text.slice(0, 200) };
    } catch (err) {
      return failed(err);
    }
  };
}

/** Follows a connection's status for permission errors about one subject. */
function watchPermissionErrors(nc: NatsConnection) {
  const iterator = nc.status() as QueuedIterator<Status>;
  const listeners: Array<[string, (err: unknown) => void]> = [];
  void (async () => {
    for await (const s of iterator) {
      if (s.type !== 'error') continue;
      const violation = permissionViolation(s.error);
      for (const [subject, fn] of listeners) if (violation?.subject === subject) fn(s.error);
    }
  })();
  return {
    on(subject: string, fn: (err: unknown) => void) {
      listeners.push([subject, fn]);
    },
    stop() {
      iterator.stop();
    },
  };
}

/**
 * A nats-server on the config the generator makes for `tenants` (prefix `es`, stream
 * `EVENTS`, bucket `views`); its close() also removes the config file.
 */
export async function useTenantsServer(tenants: ReadonlyArray<Record<string, unknown>>): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'jetsource-tenants-'));
  const configFile = join(dir, 'tenants.conf');
  const spec = { prefix: 'es', stream: 'EVENTS', viewsBucket: 'views', tenants };
  await writeFile(configFile, (renderConfig as (s: unknown) => string)(spec));
  const t = await useServer({ configFile });
  return {
    ...t,
    async close() {
      await t.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
