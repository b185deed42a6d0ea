import WebSocket from 'ws';
import type { NatsConnection, WsSocketFactory } from '@nats-io/nats-core';
import { connect, type ConnectOptions } from '../../src/index.js';
import { startNatsServer, type NatsServer, type NatsServerOptions } from '../../src/testing/index.js';

/** Node 20 has no global WebSocket: tests take the path Node 20 users take, a `wsFactory`. */
export const wsFactory: WsSocketFactory = async (url) => ({
  socket: new WebSocket(url) as unknown as globalThis.WebSocket,
  encrypted: url.startsWith('wss:'),
});

/** A server per test file, and connections that are all closed afterwards. */
export async function useServer(options: NatsServerOptions = {}) {
  const server = await startNatsServer(options);
  const connections: NatsConnection[] = [];
  return {
    server,
    async connect(extra: Partial<ConnectOptions> = {}): Promise<NatsConnection> {
      const nc = await connect({ servers: server.wsUrl, wsFactory, ...extra });
      connections.push(nc);
      return nc;
    },
    /** Connects as a development user of the bundled nats-server.conf (`<tenant>-<role>`). */
    connectAs(tenant: string, role: 'writer' | 'reader' | 'service', extra: Partial<ConnectOptions> = {}) {
      return this.connect({ ...devUser(tenant, role), ...extra });
    },
    async close(): Promise<void> {
      await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
      await server.stop();
    },
  };
}

export type TestServer = Awaited<ReturnType<typeof useServer>> & { server: NatsServer };

/** The credentials and inbox prefix of a bundled development user. */
export function devUser(tenant: string, role: string): Partial<ConnectOptions> {
  return {
    user: `${tenant}-${role}`,
    pass: `dev-${tenant}-${role}`,
    inboxPrefix: `_INBOX_${tenant}_${role}`,
    // Readers and writers have their own accounts, which import the JetStream API under JS.API.
    ...(role === 'service' ? {} : { apiPrefix: 'JS.API' }),
  };
}

let counter = 0;
/** A stream and tenant name no other test uses. */
export function unique(label = 't'): string {
  return `${label}${Date.now().toString(36)}${(counter++).toString(36)}`;
}
