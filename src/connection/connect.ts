import { createInbox, wsconnect, type NatsConnection, type WsConnectionOptions } from '@nats-io/nats-core';

/** Options for {@link connect}: any nats.js WebSocket option, with browser- and edge-friendly defaults. */
export type ConnectOptions = WsConnectionOptions;

/**
 * Defaults for long-lived browser, edge and server connections: reconnect forever with
 * jittered backoff (nats.js stops after 10 tries), and ping every 20 s so proxies that
 * drop idle sockets and throttled background tabs are noticed quickly.
 */
export const connectionDefaults: Readonly<Partial<WsConnectionOptions>> = {
  maxReconnectAttempts: -1,
  reconnectTimeWait: 1000,
  reconnectJitter: 500,
  pingInterval: 20_000,
  maxPingOut: 3,
  waitOnFirstConnect: false,
};

/**
 * Connects over WebSocket with {@link connectionDefaults}. Runs wherever a WebSocket
 * exists (browsers, Deno, workerd, Node ≥ 22). On Node 20 pass `wsFactory`, or connect
 * with `@nats-io/transport-node` yourself and hand that connection to the store.
 *
 * @example
 * const nc = await connect({ servers: 'ws://localhost:8080', user: 'acme-writer', pass: '…', inboxPrefix: '_INBOX_acme_writer' });
 */
export function connect(options: ConnectOptions): Promise<NatsConnection> {
  return wsconnect({ ...connectionDefaults, ...options });
}

/** A fresh inbox under the connection's `inboxPrefix`, so per-tenant inbox permissions hold. */
export function inboxFor(nc: NatsConnection): string {
  const prefix = (nc as unknown as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
  return createInbox(prefix);
}
