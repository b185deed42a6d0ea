// The whole demo stack in one process: nats-server with the bundled config, each
// tenant's store and views, one projector per tenant, and the Vite dev server.
// `npm start` and the e2e suite both run it.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import type { NatsConnection } from '@nats-io/nats-core';
import { createServer, type ViteDevServer } from 'vite';
import { connect, createEventStore } from 'jetsource';
import {
  DeadLetters,
  ensureStore,
  ensureViews,
  removeStrayConsumers,
  startProjector,
  type Projector,
} from 'jetsource/server';
import { startNatsServer, type NatsServer } from 'jetsource/testing';
import { bankSchemas, views, type BankEvents } from '../src/domain.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const wsFactory = async (url: string) => ({
  socket: new WebSocket(url) as unknown as globalThis.WebSocket,
  encrypted: false,
});

export interface DemoStackOptions {
  /** TCP and WebSocket ports of nats-server; default: free ports. */
  natsPort?: number;
  wsPort?: number;
  /** Vite port; default: a free one. */
  demoPort?: number;
  /** JetStream store dir; default: a temporary one. */
  storeDir?: string;
}

/** Where the tenants' events and views live, from config/tenants.json; the app gets it too. */
export interface DemoStore {
  readonly prefix: string;
  readonly stream: string;
  readonly viewsBucket: string;
  readonly tenants: string[];
}

export interface DemoStack {
  readonly nats: NatsServer;
  readonly url: string;
  readonly tenants: string[];
  /** A service-role connection for a tenant (seeding, checks). */
  service(tenant: string): Promise<NatsConnection>;
  stop(): Promise<void>;
}

export async function startDemoStack(options: DemoStackOptions = {}): Promise<DemoStack> {
  // The same file the server config is generated from: the permissions name these.
  const config = JSON.parse(readFileSync(`${root}/config/tenants.json`, 'utf8')) as {
    prefix?: string;
    stream?: string;
    viewsBucket?: string;
    tenants: Array<{ name: string }>;
  };
  const names = config.tenants.map((t) => t.name);
  const where: DemoStore = {
    prefix: config.prefix ?? 'es',
    stream: config.stream ?? 'EVENTS',
    viewsBucket: config.viewsBucket ?? 'views',
    tenants: names,
  };
  const { prefix, stream, viewsBucket: bucket } = where;
  const nats = await startNatsServer({
    configFile: `${root}/nats-server.conf`,
    port: options.natsPort,
    wsPort: options.wsPort,
    storeDir: options.storeDir,
  });
  const connections: NatsConnection[] = [];
  const service = async (tenant: string) => {
    const nc = await connect({
      servers: nats.wsUrl,
      wsFactory,
      user: `${tenant}-service`,
      pass: `dev-${tenant}-service`,
      inboxPrefix: `_INBOX_${tenant}_service`,
      tenant,
    });
    connections.push(nc);
    return nc;
  };
  const projectors: Projector[] = [];
  const sweepers: Array<ReturnType<typeof setInterval>> = [];
  let vite: ViteDevServer | undefined;
  const stop = async () => {
    sweepers.forEach(clearInterval);
    await vite?.close();
    await Promise.all(projectors.map((p) => p.stop().catch(() => undefined)));
    await Promise.all(connections.map((nc) => nc.close().catch(() => undefined)));
    await nats.stop();
  };
  try {
    for (const tenant of names) {
      const nc = await service(tenant);
      await ensureStore(nc, { stream, prefix });
      await ensureViews(nc, { bucket });
      const store = createEventStore<BankEvents>({
        connection: nc,
        tenant,
        prefix,
        stream,
        schemas: bankSchemas,
      });
      const deadLetters = await DeadLetters.open(nc);
      for (const view of views) {
        const projector = await startProjector(store, view, { deadLetters, bucket });
        // Events it cannot fold are dead letters; this is what is left: say it, don't stall silently.
        projector.done.catch((err: Error) =>
          console.error(`projector ${view.name} for ${tenant} stopped: ${err.message}`),
        );
        projectors.push(projector);
      }
      // Consumers a tenant's client aimed into the JetStream API (see the README's Security).
      const sweep = () =>
        Promise.all([stream, `KV_${bucket}`].map((name) => removeStrayConsumers(nc, name))).catch(
          (err: Error) => console.error(`sweeping ${tenant}'s consumers failed: ${err.message}`),
        );
      void sweep();
      sweepers.push(setInterval(() => void sweep(), 60_000));
    }
    vite = await createServer({
      root: `${root}/demo`,
      configFile: `${root}/demo/vite.config.ts`,
      server: { port: options.demoPort ?? 0, strictPort: options.demoPort !== undefined, host: '127.0.0.1' },
      define: { __NATS_WS__: JSON.stringify(nats.wsUrl), __DEMO_STORE__: JSON.stringify(where) },
      logLevel: 'warn',
    });
    await vite.listen();
  } catch (err) {
    await stop();
    throw err;
  }
  const url = vite.resolvedUrls?.local[0] ?? `http://127.0.0.1:${vite.config.server.port}/`;
  return { nats, url, tenants: names, service, stop };
}
