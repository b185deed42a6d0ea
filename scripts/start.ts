// `npm start`: the whole demo. Provisions nats-server and starts it with the bundled
// nats-server.conf on a git-ignored data dir, creates each tenant's store and views,
// runs a projector per tenant, and serves the Vite demo app. Ctrl-C stops everything.
// Ports: JETSOURCE_PORT (TCP, 4222), JETSOURCE_WS_PORT (WebSocket, 8080), JETSOURCE_DEMO_PORT (5173).
import { createServer } from 'node:net';
import { startDemoStack } from '../demo/server/stack.js';
// @ts-expect-error -- plain ESM script without types
import { provisionNatsServer } from './nats-server.mjs';

function assertFree(port: number, variable: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', () =>
      reject(
        new Error(
          `port ${port} is already in use. Stop what uses it, or start with ${variable}=<another port>.`,
        ),
      ),
    );
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });
}

/** A port from the environment, or the default; anything else stops the start with the variable's name. */
function portFrom(variable: string, fallback: number): number {
  const raw = process.env[variable];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`${variable} must be a port number from 1 to 65535 (got "${raw}")`);
  return port;
}

async function main(): Promise<void> {
  const ports = {
    natsPort: portFrom('JETSOURCE_PORT', 4222),
    wsPort: portFrom('JETSOURCE_WS_PORT', 8080),
    demoPort: portFrom('JETSOURCE_DEMO_PORT', 5173),
  };
  await assertFree(ports.natsPort, 'JETSOURCE_PORT');
  await assertFree(ports.wsPort, 'JETSOURCE_WS_PORT');
  await assertFree(ports.demoPort, 'JETSOURCE_DEMO_PORT');
  process.env.NATS_SERVER_BIN = provisionNatsServer();
  const stack = await startDemoStack({ ...ports, storeDir: '.data/nats' });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping the demo and nats-server…');
    await stack.stop();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.log(`
  jetsource demo        ${stack.url}
  nats-server           ${stack.nats.url} (TCP), ${stack.nats.wsUrl} (WebSocket); data in .data/nats
  projectors            balances view for ${stack.tenants.join(', ')}

  Pick a tenant (${stack.tenants.join(', ')}) and a role (writer, reader) in the app; it signs in
  with the development credentials <tenant>-<role> / dev-<tenant>-<role>.
  Open two tabs to watch one tenant live; open another tenant to see isolation.
  Ctrl-C stops everything.
`);
}

main().catch((err: Error) => {
  console.error(`npm start failed: ${err.message}`);
  process.exit(1);
});
