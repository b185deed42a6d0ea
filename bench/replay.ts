// Metrics 3 and 5: catching up on a whole tenant through store.read against a raw ordered
// consumer (also the baseline of watch catch-up, in watch.ts), and the memory a 1M-event
// replay needs. Every replay is also checked for completeness: a read that ends early is
// reported in the table instead of aborting the run.
import { jetstream, type Consumer, type JsMsg, type PushConsumer } from '@nats-io/jetstream';
import type { BenchStore } from './fixtures.js';
import { bestRates, log, metric, now, perSecond, sampleRss, timed, type Metric } from './lib.js';

/** Rounds of each side, alternating; the machine is noisy, so the best of several. */
const CATCH_UP_ROUNDS = 4;

/** Called with the running count after each event, for checkpoints. */
type Progress = (count: number) => void;
const none: Progress = () => undefined;

export interface Replay {
  rate: number;
  count: number;
  /** From the first request until the last event was handled (clean-up excluded). */
  ms: number;
}

/** Replays every event of the tenant through `store.read({})`. */
async function sdkReplay(store: BenchStore, progress = none): Promise<Replay> {
  let count = 0;
  const ms = await timed(async () => {
    for await (const _event of store.read({})) progress(++count);
  });
  return { rate: perSecond(count, ms), count, ms };
}

/**
 * The raw equivalent, also the baseline for watch catch-up: a push ordered consumer on
 * the same subject filter (the fastest of nats.js's ordered consumers here, and the one a
 * restricted user may create), decoding each payload as the SDK does, stopping once
 * nothing is pending (at once when the creation reports nothing pending: an empty filter).
 * Deleting the consumer is clean-up, outside the timed section. With `headers`, it also
 * reads each event's type from its headers, as any consumer that dispatches on it must.
 */
export async function rawReplay(
  store: BenchStore,
  progress = none,
  { headers = false } = {},
): Promise<Replay> {
  const start = now();
  const consumer = await jetstream(store.connection).consumers.getPushConsumer(store.stream, {
    filter_subjects: store.format.scheme.filter({}),
  });
  let count = 0;
  await drainConsumer(consumer, (m) => {
    if (headers) m.headers?.get('Es-Type');
    progress(++count);
  });
  const ms = now() - start;
  await consumer.delete();
  return { rate: perSecond(count, ms), count, ms };
}

/**
 * Reads a nats.js consumer until nothing is pending (at once when its creation reported
 * nothing pending), decoding each payload as the SDK does; returns how many it read.
 */
export async function drainConsumer(
  consumer: Consumer | PushConsumer,
  each: (m: JsMsg) => void = () => undefined,
): Promise<number> {
  let count = 0;
  if ((await consumer.info(true)).num_pending > 0) {
    const messages = await consumer.consume();
    for await (const m of messages) {
      m.json();
      each(m);
      count++;
      if (m.info.pending === 0) break;
    }
    await messages.close();
  }
  return count;
}

/**
 * nats.js's default ordered consumer (`js.consumers.get`, pull-based), with its default
 * settings: what a raw nats.js client reaches for first. It needs `CONSUMER.INFO` and
 * `MSG.NEXT`, which tenant users of the bundled config do not get.
 */
export async function rawPullReplay(store: BenchStore): Promise<Replay> {
  const start = now();
  const consumer = await jetstream(store.connection).consumers.get(store.stream, {
    filter_subjects: store.format.scheme.filter({}),
  });
  const count = await drainConsumer(consumer);
  const ms = now() - start;
  return { rate: perSecond(count, ms), count, ms };
}

/** Logs an incomplete replay and passes its rate on. */
export function rateOf(label: string, expected: number, replay: Replay, fewest?: { count: number }): number {
  if (replay.count !== expected)
    log(
      `WARNING: ${label} read ${replay.count.toLocaleString('en-US')} of ${expected.toLocaleString('en-US')} events`,
    );
  if (fewest) fewest.count = Math.min(fewest.count, replay.count);
  return replay.rate;
}

const completeness = (name: string, fewest: number, expected: number) =>
  metric(`${name}: fewest events a store.read returned`, fewest, 'events', expected);

export async function catchUpBenchmarks(store: BenchStore, expected: number): Promise<Metric[]> {
  const name = `catch-up replay, ${expected / 1000}k events`;
  log(`${name}, best of ${CATCH_UP_ROUNDS}`);
  const fewest = { count: Infinity };
  const best = await bestRates(CATCH_UP_ROUNDS, {
    sdk: async () => rateOf('store.read', expected, await sdkReplay(store), fewest),
    push: async () => rateOf('raw push consumer', expected, await rawReplay(store)),
    pull: async () => rateOf('raw pull consumer', expected, await rawPullReplay(store)),
  });
  return [
    metric(`${name} (store.read) vs raw push ordered consumer`, best.sdk, 'events/s', best.push),
    metric(`${name} (store.read) vs nats.js default ordered consumer`, best.sdk, 'events/s', best.pull),
    completeness(name, fewest.count, expected),
  ];
}

/**
 * One replay with RSS sampled every 50 ms. The peak after the first tenth of the events
 * against the peak at the end shows whether memory grows with the length of the replay.
 */
async function replayWithRss(expected: number, replay: (progress: Progress) => Promise<Replay>) {
  const rss = sampleRss(50);
  let earlyPeakMb = 0;
  const result = await replay((count) => {
    if (count === expected / 10) earlyPeakMb = rss.peakMb();
  });
  const { peakMb, startMb } = rss.stop();
  return { ...result, earlyPeakMb, peakMb, growthMb: peakMb - startMb };
}

export async function replayMemoryBenchmarks(store: BenchStore, expected: number): Promise<Metric[]> {
  const name = `replay ${expected / 1e6}M`;
  log(`${name} events with RSS sampling (SDK, then raw)`);
  const sdk = await replayWithRss(expected, (progress) => sdkReplay(store, progress));
  const raw = await replayWithRss(expected, (progress) => rawReplay(store, progress));
  return [
    metric(
      `${name} events (store.read)`,
      rateOf('store.read', expected, sdk),
      'events/s',
      rateOf('raw consumer', expected, raw),
    ),
    completeness(name, sdk.count, expected),
    metric(`${name}: peak RSS after the first 10%`, sdk.earlyPeakMb, 'MB'),
    metric(`${name}: peak RSS at the end`, sdk.peakMb, 'MB'),
    // Raw runs second in the same process, so compare growth rather than absolute RSS.
    metric(`${name}: RSS growth during the replay`, sdk.growthMb, 'MB', raw.growthMb, true),
  ];
}
