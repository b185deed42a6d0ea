// @ts-expect-error -- plain ESM script without types
import { provisionNatsServer } from '../scripts/nats-server.mjs';
import { connect } from '../src/index.js';
import { startNatsServer } from '../src/testing/index.js';
import { wsFactory } from '../test/support/nats.js';
import { openStore, fill } from './fixtures.js';
import { timed, perSecond } from './lib.js';
import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
process.env.NATS_SERVER_BIN = provisionNatsServer();
const server = await startNatsServer();
const nc = await connect({ servers: server.wsUrl, wsFactory });
try {
  const s = await openStore(nc, 'P1', 'file');
  await fill(s, 10000, 10, 1000, 8);
  const ses = new Session(); ses.connect(); await ses.post('Profiler.enable'); await ses.post('Profiler.start');
  for (let r = 0; r < 3; r++) {
    let c = 0;
    const cpu0 = process.cpuUsage();
    const ms = await timed(async () => { for await (const _ of s.read({})) c++; });
    const cpu = process.cpuUsage(cpu0);
    console.log('sdk', c, perSecond(c, ms).toFixed(0), 'wall', ms.toFixed(0), 'cpu', ((cpu.user+cpu.system)/1000).toFixed(0));
  }
  const { profile } = await ses.post('Profiler.stop'); writeFileSync('/tmp/prof/read.cpuprofile', JSON.stringify(profile));
} finally {
  await nc.close();
  await server.stop();
}
