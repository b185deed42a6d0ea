// A Cloudflare Worker on jetsource: an HTTP command appends an event over WebSocket with
// optimistic concurrency, and the answer carries the account's balance from a KV view.
//
//   POST /accounts/:id/deposit  { "amount": 25, "expect": "new" | "any" | <version> }
//   GET  /accounts/:id
import {
  connect,
  createEventStore,
  isJetsourceError,
  openView,
  type ExpectedVersion,
  type JetsourceErrorCode,
  type JetStreamEventStore,
  type ViewReader,
} from 'jetsource';
import { balances, schemas, type Bank } from './bank.js';

/** Bindings: vars in wrangler.toml; NATS_PASS as a secret (`wrangler secret put NATS_PASS`). */
export interface Env {
  /** e.g. `wss://nats.example.com` */
  NATS_URL: string;
  NATS_USER: string;
  NATS_PASS: string;
  /** The role's own inbox space, e.g. `_INBOX_acme_writer`: its permissions allow no other. */
  NATS_INBOX_PREFIX: string;
  /** Where the role's account has the JetStream API: `JS.API` for the bundled config's readers and writers. */
  NATS_API_PREFIX?: string;
  TENANT: string;
}

/** The part of workerd's ExecutionContext this worker uses. */
export interface Context {
  waitUntil(promise: Promise<unknown>): void;
}

type Command =
  { kind: 'deposit'; id: string; data: unknown; expect: ExpectedVersion } | { kind: 'account'; id: string };

/** A request refused before it reaches the store. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export default {
  async fetch(request: Request, env: Env, ctx: Context): Promise<Response> {
    try {
      const command = await parse(request);
      // One connection per request: workerd does not let a socket outlive the request that opened it.
      const nc = await connect({
        servers: env.NATS_URL,
        user: env.NATS_USER,
        pass: env.NATS_PASS,
        inboxPrefix: env.NATS_INBOX_PREFIX,
        apiPrefix: env.NATS_API_PREFIX,
        reconnect: false,
      }).catch((cause: unknown) => {
        console.error('cannot connect to NATS', cause);
        throw new HttpError(502, 'UNREACHABLE', 'the event store cannot be reached; retry later');
      });
      try {
        const store = createEventStore<Bank>({ connection: nc, tenant: env.TENANT, schemas });
        return json(200, await handle(command, store));
      } finally {
        // Closing flushes; the response need not wait for it.
        ctx.waitUntil(nc.close());
      }
    } catch (err) {
      return failure(err);
    }
  },
};

async function handle(command: Command, store: JetStreamEventStore<Bank>): Promise<object> {
  const entity = { type: 'account', id: command.id };
  const view = openView<number>(store, balances);
  if (command.kind === 'account') {
    return {
      id: command.id,
      version: await store.version(entity),
      balance: await balanceOf(view, command.id),
    };
  }
  const event = { type: 'Deposited' as const, data: command.data as Bank['Deposited'] };
  const { version, sequences } = await store.append(entity, event, { expect: command.expect });
  // The view is eventually consistent: `asOf` below `version` means the projector has not caught up yet.
  return { id: command.id, version, sequences, balance: await balanceOf(view, command.id) };
}

async function balanceOf(view: ViewReader<number>, id: string) {
  try {
    const entry = await view.get(id);
    return entry && { amount: entry.state, asOf: entry.sequence };
  } catch (err) {
    // No projector has created the views bucket yet: nothing to show, not a failure.
    if (isJetsourceError(err, 'STORE_NOT_FOUND')) return null;
    throw err;
  }
}

async function parse(request: Request): Promise<Command> {
  const { pathname } = new URL(request.url);
  const match = /^\/accounts\/([^/]+)(\/deposit)?$/.exec(pathname);
  if (!match) throw new HttpError(404, 'NOT_FOUND', `no route for ${request.method} ${pathname}`);
  const id = decodeSegment(match[1]!);
  if (!match[2]) {
    if (request.method !== 'GET') throw new HttpError(405, 'METHOD_NOT_ALLOWED', `use GET ${pathname}`);
    return { kind: 'account', id };
  }
  if (request.method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', `use POST ${pathname}`);
  const body = await request.json().catch(() => {
    throw new HttpError(400, 'BAD_JSON', 'the body must be JSON like {"amount": 25, "expect": "new"}');
  });
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'BAD_JSON', 'the body must be a JSON object like {"amount": 25}');
  }
  const { amount, expect } = body as { amount?: unknown; expect?: unknown };
  // The amount is left to the event schema, so the rule lives in one place: the domain.
  return { kind: 'deposit', id, data: { amount }, expect: expectedVersion(expect) };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(
      400,
      'BAD_PATH',
      `the account id ${JSON.stringify(segment)} is not valid URL encoding`,
    );
  }
}

function expectedVersion(value: unknown): ExpectedVersion {
  if (value === undefined) return 'any';
  if (value === 'new' || value === 'any') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  throw new HttpError(
    400,
    'BAD_EXPECT',
    `expect must be "new", "any" or a version number, not ${JSON.stringify(value)}`,
  );
}

const statusOf: Partial<Record<JetsourceErrorCode, number>> = {
  CONCURRENCY: 409,
  PERMISSION_DENIED: 403,
  TENANT_MISMATCH: 403,
  VALIDATION: 400,
  INVALID_TOKEN: 400,
  INVALID_ARGUMENT: 400,
  PAYLOAD_TOO_LARGE: 413,
  UNAVAILABLE: 503,
};

function failure(err: unknown): Response {
  if (err instanceof HttpError) return json(err.status, { error: err.code, message: err.message });
  // jetsource messages say what happened and what to do, and carry no secrets.
  const status = isJetsourceError(err) ? statusOf[err.code] : undefined;
  if (isJetsourceError(err) && status) return json(status, { error: err.code, message: err.message });
  console.error(err);
  return json(500, { error: 'INTERNAL', message: 'the request failed; see the worker logs' });
}

const json = (status: number, body: object) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
