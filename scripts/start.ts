// `npm start`: provisions nats-server, starts it with the bundled nats-server.conf on a
// git-ignored data dir, creates each tenant's store, and runs the quick start against it.
// Ports: JETSOURCE_PORT (TCP, default 4222) and JETSOURCE_WS_PORT (WebSocket, default 8080).
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { connect, ensureStore } from '../src/index.js';
import { startNatsServer } from '../src/testing/index.js';
import { quickstart } from '../examples/quickstart.js';
// @ts-expect-error -- plain ESM script without types
import { provisionNatsServer } from './nats-server.mjs';

const wsFactory = async (url: string) => ({ socket: new WebSocket(url) as unknown as globalThis.WebSocket, encrypted: false });

function assertFree(port: number, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', () =>
      reject(new Error(`port ${port} (${name}) is already in use. Stop what uses it, or set ${name}=<another port>.`)),
    );
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

async function main(): Promise<void> {
  const port = Number(process.env.JETSOURCE_PORT ?? 4222);
  const wsPort = Number(process.env.JETSOURCE_WS_PORT ?? 8080);
  await assertFree(port, 'JETSOURCE_PORT');
  await assertFree(wsPort, 'JETSOURCE_WS_PORT');
  process.env.NATS_SERVER_BIN = provisionNatsServer();
  const server = await startNatsServer({ configFile: 'nats-server.conf', port, wsPort, storeDir: '.data/nats' });
  const stop = async () => {
    console.log('\nstopping nats-server…');
    await server.stop();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  const { tenants } = JSON.parse(readFileSync('config/tenants.json', 'utf8')) as { tenants: Array<{ name: string }> };
  for (const { name } of tenants) {
    const service = await connect({ servers: server.wsUrl, wsFactory, user: `${name}-service`, pass: `dev-${name}-service`, inboxPrefix: `_INBOX_${name}_service`, tenant: name });
    const { created } = await ensureStore(service, {});
    console.log(`store for ${name}: ${created ? 'created' : 'ready'}`);
    await service.close();
  }

  console.log(`\nnats-server ${server.url} (TCP), ${server.wsUrl} (WebSocket), data in .data/nats\n`);
  console.log('quick start (examples/quickstart.ts) as acme-writer:');
  await quickstart(server.wsUrl);
  console.log('\nDevelopment users (password dev-<user>): ' + tenants.map((t) => `${t.name}-writer, ${t.name}-reader, ${t.name}-service`).join('; '));
  console.log('Ctrl-C stops the server.');
}

main().catch((err: Error) => {
  console.error(`npm start failed: ${err.message}`);
  process.exit(1);
});
