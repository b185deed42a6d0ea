/** Handler timings in ms. */
export interface HandlerTimings {
  readonly last: number;
  /** Mean over every attempt since start. */
  readonly avg: number;
  /** Over the most recent attempts (a window of 1024). */
  readonly p99: number;
  readonly max: number;
}

/** A snapshot of what a processor instance has done since it started. */
export interface ProcessorMetrics {
  /** Events handled successfully and acked. */
  readonly processed: number;
  /** Attempts that threw, rejected, or met an undecodable event. */
  readonly failed: number;
  /** Attempts that asked for a retry. */
  readonly retried: number;
  /** Events this instance dead-lettered. */
  readonly deadLettered: number;
  /** Handlers running right now. */
  readonly inFlight: number;
  /** Over attempts that ran the handler. */
  readonly handlerMs: HandlerTimings;
  /** The last background problem (e.g. a dead letter that could not be written), also sent to `onError`. */
  readonly lastError?: { readonly name: string; readonly message: string; readonly at: string };
}

/** How one handler attempt ended, for counting. */
export type AttemptKind = 'processed' | 'retried' | 'failed';

const WINDOW = 1024;

/** Accumulates counters and timings. Pure: the caller measures time and passes it in. */
export class MetricsRecorder {
  private counts = { processed: 0, failed: 0, retried: 0, deadLettered: 0 };
  private total = 0;
  private attempts = 0;
  private last = 0;
  private max = 0;
  private readonly window: number[] = [];
  private lastError: ProcessorMetrics['lastError'];

  /** Counts a handler attempt that took `durationMs`. */
  attempt(kind: AttemptKind, durationMs: number): void {
    this.counts[kind]++;
    this.attempts++;
    this.total += durationMs;
    this.last = durationMs;
    this.max = Math.max(this.max, durationMs);
    // A ring buffer: the oldest timing is overwritten once the window is full.
    this.window[(this.attempts - 1) % WINDOW] = durationMs;
  }

  /** Counts an event this instance dead-lettered. */
  deadLettered(): void {
    this.counts.deadLettered++;
  }

  /** Keeps the last background problem for the snapshot. */
  error(err: unknown, at: Date): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.lastError = { name: e.name, message: e.message, at: at.toISOString() };
  }

  /** The counters and timings now; p99 is computed here, not per attempt. */
  snapshot(inFlight: number): ProcessorMetrics {
    const handlerMs = {
      last: this.last,
      avg: this.attempts === 0 ? 0 : this.total / this.attempts,
      p99: percentile(this.window, 0.99),
      max: this.max,
    };
    return { ...this.counts, inFlight, handlerMs, ...(this.lastError ? { lastError: this.lastError } : {}) };
  }
}

/** Nearest-rank percentile; 0 for no values. */
export function percentile(values: ReadonlyArray<number>, p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}
