// @ts-expect-error -- plain ESM script without types
import { provisionNatsServer } from '../scripts/nats-server.mjs';
import { connect, createEventStore } from '../src/index.js';
import { createInbox } from '@nats-io/nats-core';
import { jetstream } from '@nats-io/jetstream';
import { startNatsServer } from '../src/testing/index.js';
import { wsFactory } from '../test/support/nats.js';
import { openStore, fill } from './fixtures.js';
import { timed, perSecond } from './lib.js';
process.env.NATS_SERVER_BIN = provisionNatsServer();
const server = await startNatsServer();
const nc = await connect({ servers: server.wsUrl, wsFactory });
try {
  const s = await openStore(nc, 'P1', 'file');
  const n = 100000;
  await fill(s, n / 10, 10, 1000, 8);
  for (let r = 0; r < 2; r++) {
  // raw direct batch pages
  let c = 0;
  const cpu0 = process.cpuUsage();
  let ms = await timed(async () => {
    let seq = 1;
    for (;;) {
      let got = 0; let last = 0;
      await new Promise<void>((res) => {
        const inbox = createInbox();
        const sub = nc.subscribe(inbox, { callback: (_e, m) => {
          if (m.data.length === 0 && m.headers) { sub.unsubscribe(); res(); return; }
          got++; c++; if (got===1000) last = Number(m.headers!.get('Nats-Sequence'));
        }});
        nc.publish('$JS.API.DIRECT.GET.P1', JSON.stringify({ seq, next_by_subj: 'p1.bench.*.*.*', batch: 1000 }), { reply: inbox });
      });
      if (got < 1000) break;
      seq = last + 1;
    }
  });
  const cpu = process.cpuUsage(cpu0);
  console.log('raw direct', c, perSecond(c, ms).toFixed(0), 'wall', ms.toFixed(0), 'cpu', ((cpu.user+cpu.system)/1000).toFixed(0));
  const js = jetstream(nc);
  c = 0;
  ms = await timed(async () => {
    const oc = await js.consumers.get('P1', { filter_subjects: 'p1.bench.*.*.*' });
    const it = await oc.consume({ max_messages: Number(process.env.MAXM ?? 100) });
    for await (const m of it) { c++; m.json(); if (m.info.pending === 0) break; }
    await it.close();
  });
  console.log('raw ordered pull', c, perSecond(c, ms).toFixed(0));
  c = 0;
  ms = await timed(async () => {
    const oc = await js.consumers.getPushConsumer('P1', { filter_subjects: 'p1.bench.*.*.*' });
    const it = await oc.consume();
    for await (const m of it) { c++; m.json(); if (m.info.pending === 0) break; }
    await it.close();
    await oc.delete();
  });
  console.log('raw ordered push', c, perSecond(c, ms).toFixed(0));
  c = 0;
  ms = await timed(async () => { for await (const _ of s.read({})) c++; });
  console.log('sdk', c, perSecond(c, ms).toFixed(0));
  }
} finally {
  await nc.close();
  await server.stop();
}
