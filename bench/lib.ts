// Shared timing, statistics and reporting helpers for the benchmark suite.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** One row of the report. `ratio` is oriented so that ≥ 1 always means "the SDK does at least as well as raw". */
export interface Metric {
  metric: string;
  value: number;
  unit: string;
  baseline: number | null;
  ratio: number | null;
}

/** Rates are better high, latencies and memory better low; the ratio is flipped for the latter. */
export function metric(
  name: string,
  value: number,
  unit: string,
  baseline?: number,
  lowerIsBetter = false,
): Metric {
  const ratio =
    baseline === undefined || value === 0 || baseline === 0
      ? null
      : lowerIsBetter
        ? baseline / value
        : value / baseline;
  return {
    metric: name,
    value: round(value),
    unit,
    baseline: baseline === undefined ? null : round(baseline),
    ratio: ratio === null ? null : round(ratio, 3),
  };
}

function round(n: number, digits = n >= 100 ? 0 : 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export const now = () => performance.now();

/** Runs `fn` and returns its duration in ms. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = now();
  await fn();
  return now() - start;
}

export const perSecond = (count: number, ms: number) => (count * 1000) / ms;

/** Nearest-rank percentile of unsorted samples. */
export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * `workers` concurrent loops of `each` sequential steps; `step(worker, i)` is awaited in
 * turn inside a worker, so each worker can thread state (an entity's version) through.
 */
export async function concurrently(
  workers: number,
  each: number,
  step: (worker: number, i: number) => Promise<void>,
): Promise<void> {
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < each; i++) await step(w, i);
    }),
  );
}

/**
 * Alternates SDK and raw rounds and keeps each side's best rate: on a 2-core box shared
 * with nats-server, interleaving cancels drift and the best round is the least disturbed.
 */
export function compareRates(
  rounds: number,
  sdk: () => Promise<number>,
  raw: () => Promise<number>,
): Promise<{ sdk: number; raw: number }> {
  return bestRates(rounds, { raw, sdk });
}

/** {@link compareRates} for any number of sides, run in turn in each round (in key order). */
export async function bestRates<K extends string>(
  rounds: number,
  sides: Record<K, () => Promise<number>>,
): Promise<Record<K, number>> {
  const entries = Object.entries(sides) as Array<[K, () => Promise<number>]>;
  const best = Object.fromEntries(entries.map(([k]) => [k, 0])) as Record<K, number>;
  for (let r = 0; r < rounds; r++) {
    for (const [k, run] of entries) best[k] = Math.max(best[k], await run());
  }
  return best;
}

/** Deterministic PRNG (mulberry32) so both sides read the same entities in the same order. */
export function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Samples RSS on a timer; `peakMb()` is the peak so far, `stop()` the final peak and the starting RSS. */
export function sampleRss(intervalMs = 50): {
  peakMb(): number;
  stop(): { peakMb: number; startMb: number };
} {
  const rssMb = () => process.memoryUsage().rss / 2 ** 20;
  const startMb = rssMb();
  let peak = startMb;
  const timer = setInterval(() => (peak = Math.max(peak, rssMb())), intervalMs);
  return {
    peakMb: () => (peak = Math.max(peak, rssMb())),
    stop() {
      clearInterval(timer);
      return { peakMb: Math.max(peak, rssMb()), startMb };
    },
  };
}

export function log(message: string): void {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

export function printTable(metrics: Metric[]): void {
  const rows = [
    ['metric', 'value', 'unit', 'raw baseline', 'ratio'],
    ...metrics.map((m) => [
      m.metric,
      fmt(m.value),
      m.unit,
      m.baseline === null ? '' : fmt(m.baseline),
      m.ratio === null ? '' : m.ratio.toFixed(2),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) =>
    r.map((cell, c) => (c === 0 || c === 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  console.log(line(rows[0]!));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows.slice(1)) console.log(line(r));
  console.log(
    'ratio: SDK ÷ raw for rates, raw ÷ SDK for latency and memory; ≥ 1 means the SDK does at least as well.',
  );
}

const fmt = (n: number) => (Number.isInteger(n) ? n.toLocaleString('en-US') : n.toFixed(2));

export async function writeResults(path: string, metrics: Metric[]): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(metrics, null, 2) + '\n');
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls `step(i)` for i in [0, count) on a fixed schedule (`intervalMs` apart, from now),
 * without waiting for one step to finish before the next falls due, at most `maxInFlight`
 * at a time. Timers tick in whole ms, so a 1 ms schedule runs in small bursts that keep
 * the average rate. Resolves when every step has.
 */
export async function paced(
  count: number,
  intervalMs: number,
  step: (i: number) => Promise<unknown>,
  maxInFlight = 64,
): Promise<void> {
  const start = now();
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 0; i < count; i++) {
    const wait = start + i * intervalMs - now();
    if (wait > 0) await sleep(wait);
    while (inFlight.size >= maxInFlight) await Promise.race(inFlight);
    const p: Promise<unknown> = step(i).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
}

/**
 * Send-to-arrival latencies matched by an integer tag (an event's payload, a view's
 * state): `sent(tag)` just before the write, `seen(tag)` when it arrives; repeats of a
 * tag and tags never sent are ignored.
 */
export class LatencyProbe {
  private readonly sentAt = new Map<number, number>();
  private readonly samples: number[] = [];
  private settled?: () => void;

  sent(tag: number): void {
    this.sentAt.set(tag, now());
  }

  seen(tag: number): void {
    const at = this.sentAt.get(tag);
    if (at === undefined) return;
    this.samples.push(now() - at);
    this.sentAt.delete(tag);
    if (this.sentAt.size === 0) this.settled?.();
  }

  /** Waits up to `timeoutMs` for every sent tag to arrive; returns the samples and how many never did. */
  async settle(timeoutMs: number): Promise<{ samples: number[]; missing: number }> {
    if (this.sentAt.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.settled = resolve;
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
      this.settled = undefined;
    }
    return { samples: [...this.samples], missing: this.sentAt.size };
  }
}
