// @ts-expect-error -- plain ESM script without types
import { provisionNatsServer } from '../scripts/nats-server.mjs';
import { connect } from '../src/index.js';
import { createInbox } from '@nats-io/nats-core';
import { startNatsServer } from '../src/testing/index.js';
import { wsFactory } from '../test/support/nats.js';
import { openStore, fill } from './fixtures.js';
import { timed, perSecond } from './lib.js';
process.env.NATS_SERVER_BIN = provisionNatsServer();
const server = await startNatsServer();
const nc = await connect({ servers: server.wsUrl, wsFactory });
try {
  for (const storage of ['file', 'memory'] as const) {
  const name = 'P' + storage;
  const s = await openStore(nc, name, storage);
  const n = 100000;
  const fms = await timed(() => fill(s, n / 10, 10, 1000, 8));
  console.log(storage, 'fill/s', perSecond(n, fms).toFixed(0));
  for (const [batch, filter] of [[1000, '*.*.*'], [10000, '*.*.*'], [1000, '>']] as const) {
  let c = 0;
  const ms = await timed(async () => {
    let seq = 1;
    for (;;) {
      let got = 0; let last = 0;
      await new Promise<void>((res) => {
        const inbox = createInbox();
        const sub = nc.subscribe(inbox, { callback: (_e, m) => {
          if (m.data.length === 0 && m.headers) { sub.unsubscribe(); res(); return; }
          got++; c++; if (got===batch) last = Number(m.headers!.get('Nats-Sequence'));
        }});
        nc.publish(`$JS.API.DIRECT.GET.${name}`, JSON.stringify({ seq, next_by_subj: `${name.toLowerCase()}.bench.${filter}`, batch }), { reply: inbox });
      });
      if (got < batch) break;
      seq = last + 1;
    }
  });
  console.log(storage, batch, filter, 'raw direct', c, perSecond(c, ms).toFixed(0));
  }
  }
} finally {
  await nc.close();
  await server.stop();
}
