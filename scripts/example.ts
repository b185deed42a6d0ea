// `npm run example`: runs examples/quickstart.ts against a temporary nats-server started
// with the bundled nats-server.conf (store created as acme's service user), then stops it.
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { quickstart } from '../examples/quickstart.js';
import { ensureStore } from '../src/server.js';
import { startNatsServer } from '../src/testing/index.js';
// @ts-expect-error -- plain ESM script without types
import { provisionNatsServer } from './nats-server.mjs';

async function main(): Promise<void> {
  const configFile = fileURLToPath(new URL('../nats-server.conf', import.meta.url));
  const server = await startNatsServer({ bin: provisionNatsServer(), configFile });
  try {
    // The admin step is the operator's, over TCP; the quick start itself is a WebSocket client.
    const admin = await connect({
      servers: server.url,
      user: 'acme-service',
      pass: 'dev-acme-service',
      inboxPrefix: '_INBOX_acme_service',
    });
    await ensureStore(admin, {});
    await admin.close();
    console.log(`quick start against a temporary nats-server at ${server.wsUrl}\n`);
    await quickstart(server.wsUrl);
  } finally {
    await server.stop();
  }
}

main().catch((err: Error) => {
  console.error(`npm run example failed: ${err.message}`);
  process.exit(1);
});
