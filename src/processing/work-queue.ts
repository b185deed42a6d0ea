/** Something whose server-side ack-wait clock can be reset while it waits. */
export interface Keepable {
  working(): void;
}

/**
 * Runs at most `concurrency` jobs at once. Events the server delivered beyond that wait
 * here; their ack-wait clocks are reset every `keepaliveMs` and once more when they start,
 * so ackWait measures handler time only and waiting never causes a redelivery.
 */
export class WorkQueue<T extends Keepable> {
  private readonly waiting: T[] = [];
  private running = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly concurrency: number,
    private readonly keepaliveMs: number,
    /** Must not reject: failures are the job's to report. */
    private readonly run: (job: T) => Promise<void>,
  ) {}

  /** Jobs running now. */
  get active(): number {
    return this.running;
  }

  push(job: T): void {
    if (this.running < this.concurrency) return this.start(job);
    this.waiting.push(job);
    this.keepAlive();
  }

  /** Removes and returns every job that has not started. */
  drain(): T[] {
    const jobs = this.waiting.splice(0);
    this.keepAlive();
    return jobs;
  }

  /** Resolves once nothing runs and nothing waits. */
  idle(): Promise<void> {
    if (this.running === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private start(job: T): void {
    this.running++;
    void this.run(job).finally(() => this.finished());
  }

  private finished(): void {
    this.running--;
    const next = this.waiting.shift();
    if (next) {
      next.working();
      this.start(next);
    }
    this.keepAlive();
    if (this.running === 0 && this.waiting.length === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private keepAlive(): void {
    if (this.waiting.length > 0 && this.timer === undefined) {
      this.timer = setInterval(() => this.waiting.forEach((job) => job.working()), this.keepaliveMs);
    } else if (this.waiting.length === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
