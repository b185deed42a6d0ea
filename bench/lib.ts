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
export async function compareRates(
  rounds: number,
  sdk: () => Promise<number>,
  raw: () => Promise<number>,
): Promise<{ sdk: number; raw: number }> {
  const best = { sdk: 0, raw: 0 };
  for (let r = 0; r < rounds; r++) {
    best.raw = Math.max(best.raw, await raw());
    best.sdk = Math.max(best.sdk, await sdk());
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
