// @ts-expect-error -- plain ESM script without types
import { provisionNatsServer } from '../scripts/nats-server.mjs';
import { connect } from '../src/index.js';
import { startNatsServer } from '../src/testing/index.js';
import { wsFactory } from '../test/support/nats.js';
import { openStore, fill } from './fixtures.js';
import { timed, perSecond } from './lib.js';
process.env.NATS_SERVER_BIN = provisionNatsServer();
const server = await startNatsServer();
const nc = await connect({ servers: server.wsUrl, wsFactory });
try {
  const s = await openStore(nc, 'P1', (process.env.STORAGE as 'file') ?? 'file');
  const n = Number(process.env.N ?? 100000);
  const ms = await timed(() => fill(s, n / 10, 10, 1000, Number(process.env.INFLIGHT ?? 8)));
  console.log('fill', n, ms.toFixed(0), 'ms', perSecond(n, ms).toFixed(0), '/s');
  let c = 0;
  const ms2 = await timed(async () => { for await (const _ of s.read({})) c++; });
  console.log('read', c, ms2.toFixed(0), perSecond(c, ms2).toFixed(0));
} finally {
  await nc.close();
  await server.stop();
}
