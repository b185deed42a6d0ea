import type { JsMsg } from '@nats-io/jetstream';
import type { StoredMessage } from '../codec/event-format.js';

/**
 * One delivery of an event to this instance. It is settled (ack, nak or term) at most
 * once, so a handler that finishes after `stop()` already handed its event back cannot
 * settle it a second time.
 */
export class Delivery {
  private done = false;
  /** The handler attempt's clock and abort signal. */
  readonly clock = new AttemptClock();

  constructor(private readonly msg: JsMsg) {}

  get sequence(): number {
    return this.msg.seq;
  }

  get subject(): string {
    return this.msg.subject;
  }

  /** 1 on first delivery. */
  get attempt(): number {
    return this.msg.info.deliveryCount;
  }

  get stored(): StoredMessage {
    const { msg } = this;
    return {
      sequence: msg.seq,
      subject: msg.subject,
      data: msg.data,
      header: (name) => (msg.headers?.has(name) ? msg.headers.get(name) : undefined),
      headerNames: (prefix = '') => (msg.headers?.keys() ?? []).filter((name) => name.startsWith(prefix)),
      storedAt: () => msg.info.timestampNanos / 1e6,
    };
  }

  /** True once acked, naked or terminated. */
  get settled(): boolean {
    return this.done;
  }

  working(): void {
    if (!this.done) this.msg.working();
  }

  ack(): boolean {
    return this.once(() => this.msg.ack());
  }

  nak(delayMs?: number): boolean {
    return this.once(() => this.msg.nak(delayMs));
  }

  term(reason: string): boolean {
    return this.once(() => this.msg.term(reason));
  }

  private once(settle: () => void): boolean {
    if (this.done) return false;
    this.done = true;
    settle();
    return true;
  }
}

/**
 * An attempt's ack-wait clock: its signal aborts when the server would redeliver the event,
 * or when {@link AttemptClock.abort} gives up on it earlier.
 */
export class AttemptClock {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  readonly signal = this.controller.signal;

  start(ackWaitMs: number): void {
    this.timer = setTimeout(
      () => this.abort(new Error(`the attempt ran past its ack wait of ${ackWaitMs} ms`)),
      ackWaitMs,
    );
  }

  abort(reason: Error): void {
    clearTimeout(this.timer);
    this.controller.abort(reason);
  }

  /** Stops the clock without aborting. */
  end(): void {
    clearTimeout(this.timer);
  }
}
