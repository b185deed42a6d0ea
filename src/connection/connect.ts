import {
  AuthenticationError,
  InvalidArgumentError,
  isJetsourceError,
  TenantMismatchError,
  UnavailableError,
} from '../errors.js';
import { fromRequestError } from './request-errors.js';
import { failingFast, type FactoryFailure } from './ws-factory.js';
import { linkOf } from './link.js';
import { assertApiPrefix } from '../subjects/tokens.js';
import {
  createInbox,
  Empty,
  errors,
  wsconnect,
  type NatsConnection,
  type WsConnectionOptions,
  type WsSocketFactory,
} from '@nats-io/nats-core';

/** Options for {@link connect}: any nats.js WebSocket option, with browser- and edge-friendly defaults. */
export interface ConnectOptions extends WsConnectionOptions {
  /**
   * The tenant these credentials must belong to. When set, connect asks the server which
   * account the user is in and fails with {@link TenantMismatchError} unless it is this
   * tenant's: `<tenant>`, or a role account `<tenant>/<role>` (the bundled config's).
   */
  tenant?: string;
  /**
   * Where the user's account has the JetStream API, default `$JS.API`. An account that
   * imports it from another one has it under another prefix: the bundled config's reader
   * and writer accounts import their tenant's under `JS.API`.
   */
  apiPrefix?: string;
  /**
   * Makes the WebSocket, for runtimes without a global one (Node 20): with the `ws`
   * package, `async (url) => ({ socket: new WebSocket(url), encrypted: url.startsWith('wss:') })`.
   * A factory that throws, or returns no `{ socket }`, makes `connect` reject at once with
   * `InvalidArgumentError('wsFactory')` and its error as `cause` (nats.js would wait
   * forever), as does one that has made no socket 50 ms before the connect `timeout`; on a
   * reconnect such a failure is one failed attempt.
   */
  wsFactory?: WsSocketFactory;
}

/** nats.js's connect timeout when `timeout` is not given. */
const NATS_CONNECT_TIMEOUT_MS = 20_000;

/**
 * Defaults for long-lived browser, edge and server connections: reconnect forever with
 * jittered backoff (nats.js stops after 10 tries), and ping every 20 s so proxies that
 * drop idle sockets and throttled background tabs are noticed quickly. No async traces:
 * with them nats.js builds two errors per request just for their stacks, a third of the
 * client's CPU on pipelined appends. jetsource's errors do not use them; pass
 * `noAsyncTraces: false` for the caller's stack in nats.js's own errors.
 */
export const connectionDefaults: Readonly<Partial<WsConnectionOptions>> = {
  maxReconnectAttempts: -1,
  reconnectTimeWait: 1000,
  reconnectJitter: 500,
  pingInterval: 20_000,
  maxPingOut: 3,
  waitOnFirstConnect: false,
  noAsyncTraces: true,
};

/**
 * Connects over WebSocket with {@link connectionDefaults}. Runs wherever a WebSocket
 * exists (browsers, Deno, workerd, Node ≥ 22). On Node 20 pass `wsFactory`, or connect
 * with `@nats-io/transport-node` yourself and hand that connection to the store.
 *
 * @example
 * const nc = await connect({ servers: 'ws://localhost:8080', user: 'acme-writer', pass: '…', inboxPrefix: '_INBOX_acme_writer', apiPrefix: 'JS.API' });
 */
export async function connect(options: ConnectOptions): Promise<NatsConnection> {
  const { tenant, apiPrefix, ...rest } = options;
  if (apiPrefix !== undefined) assertApiPrefix(apiPrefix);
  // nats.js would wait forever for a socket it cannot make.
  if (typeof globalThis.WebSocket === 'undefined' && !rest.wsFactory)
    throw new InvalidArgumentError(
      'wsFactory',
      undefined,
      'this runtime has no WebSocket (Node 20): pass one, e.g. ' +
        "wsFactory: async (url) => ({ socket: new (await import('ws')).default(url), encrypted: url.startsWith('wss:') })",
    );
  const failure: FactoryFailure = {};
  // As nats.js reads it: 0 or none is its default.
  const timeoutMs = rest.timeout || NATS_CONNECT_TIMEOUT_MS;
  const wsFactory = rest.wsFactory && failingFast(rest.wsFactory, failure, timeoutMs);
  const nc = await wsconnect({ ...connectionDefaults, ...rest, wsFactory }).catch((err: unknown) => {
    throw failure.error === undefined ? connectError(err, rest) : factoryError(failure.error, rest);
  });
  if (apiPrefix !== undefined) apiPrefixes.set(nc, apiPrefix);
  linkOf(nc);
  if (tenant !== undefined) {
    await verifyTenant(nc, tenant, rest.timeout || undefined).catch(async (err: unknown) => {
      await nc.close();
      throw err;
    });
  }
  return nc;
}

/** What nats.js throws when the first connect fails, as jetsource's errors. */
function connectError(err: unknown, options: WsConnectionOptions): unknown {
  if (err instanceof errors.AuthorizationError || err instanceof errors.UserAuthenticationExpiredError)
    return new AuthenticationError(options.user, { cause: err });
  if (err instanceof errors.ConnectionError || err instanceof errors.TimeoutError) {
    return new UnavailableError(`cannot connect to ${serversOf(options)}`, {
      cause: err,
      remedy:
        'Check the URL (ws:// or wss://, host, websocket port) and that nats-server runs with a websocket block.',
    });
  }
  // Options nats.js cannot use; a server URL that does not parse is a TypeError from URL.
  if (err instanceof errors.InvalidArgumentError || err instanceof errors.InvalidOperationError)
    return new InvalidArgumentError('connect options', undefined, err.message, { cause: err });
  if (err instanceof TypeError && /url/i.test(err.message))
    return new InvalidArgumentError('servers', options.servers, 'use WebSocket URLs such as ws://host:8080', {
      cause: err,
    });
  return err;
}

/** The servers a connect was given, for its errors. */
const serversOf = (options: WsConnectionOptions) =>
  [options.servers ?? []].flat().join(', ') || 'the default server';

/** The first connect failed because the user's `wsFactory` made no socket. */
function factoryError(cause: unknown, options: WsConnectionOptions): InvalidArgumentError {
  const servers = serversOf(options);
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new InvalidArgumentError(
    'wsFactory',
    undefined,
    `it made no WebSocket for ${servers} (${detail}); make it return { socket, encrypted } ` +
      '(on Node 20, with the ws package installed)',
    { cause },
  );
}

const accounts = new WeakMap<NatsConnection, string>();
const apiPrefixes = new WeakMap<NatsConnection, string>();

/** The JetStream API prefix of a connection's account (see {@link ConnectOptions.apiPrefix}). */
export const jetStreamApi = (nc: NatsConnection): string => apiPrefixes.get(nc) ?? '$JS.API';

/**
 * The tenant an account belongs to: the bundled config names a tenant's data account
 * `<tenant>` and its client role accounts `<tenant>/<role>` (tenant names have no "/").
 */
export const tenantOfAccount = (account: string): string => account.split('/')[0]!;

/**
 * Asks the server which account the connection's user belongs to (`$SYS.REQ.USER.INFO`)
 * and throws {@link TenantMismatchError} unless it is one of `tenant`'s (see
 * {@link tenantOfAccount}). With accounts per tenant (the bundled nats-server.conf) this
 * catches a wrong `tenant` option at once, instead of as a permission error on the first
 * append. `timeoutMs` bounds the server's answer (`connect` passes its own `timeout`).
 */
export async function verifyTenant(nc: NatsConnection, tenant: string, timeoutMs = 5000): Promise<void> {
  let account: string | undefined;
  try {
    const reply = await nc.request('$SYS.REQ.USER.INFO', Empty, { timeout: timeoutMs });
    account = (reply.json() as { data?: { account?: string } }).data?.account;
  } catch (cause) {
    // A refused reply inbox is a permission problem of the right tenant's user, not a mismatch.
    const mapped = fromRequestError(cause, '', '$SYS.REQ.USER.INFO');
    if (isJetsourceError(mapped, 'PERMISSION_DENIED') || isJetsourceError(mapped, 'UNAVAILABLE'))
      throw mapped;
    throw new TenantMismatchError(
      tenant,
      'the server did not say which account these credentials belong to',
      {
        cause,
      },
    );
  }
  if (account === undefined) throw new TenantMismatchError(tenant, 'the server did not report an account');
  accounts.set(nc, account);
  if (tenantOfAccount(account) !== tenant)
    throw new TenantMismatchError(tenant, `they belong to account "${account}"`);
}

/** The account {@link verifyTenant} found for a connection, if it ran. */
export function verifiedAccount(nc: NatsConnection): string | undefined {
  return accounts.get(nc);
}

/** A fresh inbox under the connection's `inboxPrefix`, so per-tenant inbox permissions hold. */
export function inboxFor(nc: NatsConnection): string {
  const prefix = (nc as unknown as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
  return createInbox(prefix);
}
