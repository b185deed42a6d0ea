// `npm run view:rebuild -- <tenant> <view> [--version N]`: builds a view version from the
// first event with a progress bar, ahead of the deploy that serves it, and exits. Readers
// stay on the version a running projector keeps up to date: the deployed projector of
// version N resumes from this build and switches readers once caught up (switching them
// here would leave them on a version nothing keeps current). Connects as the tenant's
// service user: JETSOURCE_WS_URL (default ws://127.0.0.1:$JETSOURCE_WS_PORT, as `npm start` uses) and
// JETSOURCE_<TENANT>_SERVICE_PASSWORD (default: the development password).
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { connect, createEventStore, defineView } from '../src/index.js';
import { DeadLetters, startProjector, type ProjectorProgress } from '../src/server.js';
import { bankSchemas, views, type BankEvents } from '../demo/src/domain.js';

const wsFactory = async (url: string) => ({
  socket: new WebSocket(url) as unknown as globalThis.WebSocket,
  encrypted: url.startsWith('wss:'),
});

function bar(p: ProjectorProgress): string {
  const share = p.total === 0 ? 1 : p.done / p.total;
  const width = 30;
  const filled = Math.round(share * width);
  const eta =
    p.etaMs === 0 ? 'done' : Number.isFinite(p.etaMs) ? `ETA ${(p.etaMs / 1000).toFixed(1)} s` : 'ETA …';
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)}%  ${p.done}/${p.total} events  ${Math.round(p.rate)} ev/s  ${eta}`;
}

async function main(): Promise<void> {
  const usage = `usage: npm run view:rebuild -- <tenant> <view> [--version N]; views: ${views.map((v) => v.name).join(', ')}`;
  // Strict: a misspelt flag must not quietly rebuild the deployed version instead.
  const { values, positionals } = (() => {
    try {
      return parseArgs({ options: { version: { type: 'string' } }, allowPositionals: true });
    } catch (err) {
      throw new Error(`${(err as Error).message}; ${usage}`);
    }
  })();
  const [tenant, name] = positionals;
  const view = views.find((v) => v.name === name);
  if (!tenant || !view || positionals.length > 2) throw new Error(usage);
  const version = values.version === undefined ? view.version : Number(values.version);
  const target = defineView({ ...view, version });
  const nc = await connect({
    servers: process.env.JETSOURCE_WS_URL ?? `ws://127.0.0.1:${process.env.JETSOURCE_WS_PORT ?? 8080}`,
    wsFactory,
    user: `${tenant}-service`,
    pass:
      process.env[`JETSOURCE_${tenant}_SERVICE_PASSWORD`.toUpperCase().replace(/-/g, '_')] ??
      `dev-${tenant}-service`,
    inboxPrefix: `_INBOX_${tenant}_service`,
    tenant,
    maxReconnectAttempts: 0,
  });
  const tty = process.stderr.isTTY;
  const show = (p: ProjectorProgress) => process.stderr.write(tty ? `\r${bar(p)}` : `${bar(p)}\n`);
  const projector = await startProjector(
    createEventStore<BankEvents>({ connection: nc, tenant, schemas: bankSchemas }),
    target,
    {
      deadLetters: await DeadLetters.open(nc),
      onProgress: show,
      activate: false,
    },
  );
  await Promise.race([projector.caughtUp, projector.done]);
  show(projector.progress());
  const { sequence } = projector.progress();
  process.stderr.write(
    `\n${name} v${version} for ${tenant} is built up to event #${sequence}. Deploy the view at ` +
      `version ${version}: its projector resumes from here and switches readers once caught up.\n`,
  );
  await projector.stop();
  await nc.close();
}

main().catch((err: Error) => {
  console.error(`view:rebuild failed: ${err.message}`);
  process.exit(1);
});
