// The benchmark suite: one nats-server, a WebSocket connection (and a second one that
// appends where a watcher measures latency), the SDK against raw nats.js doing the same
// work, and the bundle budget. Prints a table and writes bench/results/latest.json.
// @ts-expect-error -- plain ESM script without types
import { provisionNatsServer } from '../scripts/nats-server.mjs';
import type { NatsConnection } from '@nats-io/nats-core';
import { fileURLToPath } from 'node:url';
import { connect } from '../src/index.js';
import { startNatsServer } from '../src/testing/index.js';
import { wsFactory } from '../test/support/nats.js';
import { appendBenchmarks } from './append.js';
import { bundleBenchmarks } from './bundle.js';
import { entityReadBenchmarks, entityWatchBenchmarks } from './entity-read.js';
import { fill, openStore } from './fixtures.js';
import { log, metric, perSecond, printTable, timed, writeResults, type Metric } from './lib.js';
import { catchUpBenchmarks, replayMemoryBenchmarks } from './replay.js';
import { referenceMetrics } from './references.js';
import { viewBenchmarks } from './views.js';
import { watchBenchmarks } from './watch.js';

const PER_ENTITY = 10;
const resultsFile = fileURLToPath(new URL('./results/latest.json', import.meta.url));

// `npm run bench` provisions the binary but cannot export its path to us.
process.env.NATS_SERVER_BIN = provisionNatsServer();
const started = performance.now();
const server = await startNatsServer();
let nc: NatsConnection | undefined;
let writer: NatsConnection | undefined;
const metrics: Metric[] = [];
try {
  nc = await connect({ servers: server.wsUrl, wsFactory });
  writer = await connect({ servers: server.wsUrl, wsFactory });

  metrics.push(...(await appendBenchmarks(await openStore(nc, 'APPEND'))));

  const small = await openStore(nc, 'READ10K');
  await fill(small, 1_000, PER_ENTITY);
  metrics.push(...(await entityReadBenchmarks(small, '10k-event', 1_000, PER_ENTITY)));

  const medium = await openStore(nc, 'REPLAY100K');
  await fill(medium, 10_000, PER_ENTITY);
  metrics.push(...(await catchUpBenchmarks(medium, 100_000)));

  const live = await openStore(nc, 'WATCH');
  metrics.push(...(await watchBenchmarks({ live, writer, tenK: small, hundredK: medium })));
  const viewLive = await openStore(nc, 'VIEWLIVE');
  metrics.push(...(await viewBenchmarks({ history: medium, live: viewLive, writer })));

  // File storage, as in production: the fill fits its time budget without memory storage.
  log('filling the 1M-event stream (file storage, appendAll batches of 1000)');
  const large = await openStore(nc, 'READ1M', 'file');
  const fillMs = await timed(() => fill(large, 100_000, PER_ENTITY));
  metrics.push(
    metric(
      'fill 1M events (appendAll, 1000 per batch, 8 in flight)',
      perSecond(1_000_000, fillMs),
      'events/s',
    ),
  );
  metrics.push(...(await entityReadBenchmarks(large, '1M-event', 100_000, PER_ENTITY)));
  metrics.push(...(await entityWatchBenchmarks(large, '1M-event', 100_000, PER_ENTITY)));
  metrics.push(...(await replayMemoryBenchmarks(large, 1_000_000)));
} finally {
  await writer?.close();
  await nc?.close();
  await server.stop();
}

metrics.push(...(await bundleBenchmarks()));
metrics.push(...referenceMetrics(metrics));
printTable(metrics);
await writeResults(resultsFile, metrics);
log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s; results in ${resultsFile}`);
