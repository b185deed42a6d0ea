import {
  backoff,
  errors,
  type Msg,
  type NatsConnection,
  type QueuedIterator,
  type Status,
  type Subscription,
} from '@nats-io/nats-core';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  jetstreamManager,
  type ConsumerConfig,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { inboxFor, jetStreamApi } from '../../connection/connect.js';
import { closedRemedy, fromRequestError } from '../../connection/request-errors.js';
import { ApiErrorCode, headerBlockOf, NatsStoredMessage } from './api.js';
import type { StoredMessage } from '../../codec/event-format.js';
import {
  InvalidArgumentError,
  PermissionDeniedError,
  ServerError,
  StoreConfigError,
  StoreNotFoundError,
  UnavailableError,
} from '../../errors.js';
import { subjectMatcher } from '../../subjects/subjects.js';
import { isDelivery, isFlowControlOf, parseDelivery } from './delivery.js';

/** Callbacks of an {@link OrderedConsumer}: plain functions, so the Observable layer stays in one place. */
export interface OrderedConsumerHandlers {
  /** One stored message, in stream order, exactly once. `pending` counts what is still behind it. */
  message(msg: StoredMessage, pending: number): void;
  /** Everything that existed when the consumer started has been delivered (fires once). */
  caughtUp(lastSequence: number): void;
  /** Unrecoverable: permission denied, stream deleted. The consumer has stopped. */
  error(err: Error): void;
  /**
   * A flow-control request, in line with the messages before it. Without this handler it
   * is answered at once. A reader that answers only once it has consumed those messages
   * gets true backpressure: the server sends nothing more until then.
   */
  flowControl?(answer: () => void): void;
}

/** Options for {@link OrderedConsumer}. */
export interface OrderedConsumerOptions {
  nc: NatsConnection;
  stream: string;
  /** Where the account has the JetStream API. Default: the connection's (see `connect`). */
  apiPrefix?: string;
  /** A single subject filter, so the create subject can be scoped by permissions. */
  filter: string;
  /**
   * Deliver sequences after this one; `'last-per-subject'` starts with the newest message
   * of each subject (KV current values).
   */
  after: number | 'last-per-subject';
  /** Idle heartbeat in ms; a silent consumer is recreated after three of them. Default 2000. */
  heartbeatMs?: number;
  /** What to tell the user when the stream is missing (default: run ensureStore). */
  missingRemedy?: string;
  /**
   * Caught-up waits until the consumer has delivered up to this sequence: the newest of a
   * store's own appends that the filter matches. A consumer of one replica may sit on a
   * follower that has not applied that append yet, and would say caught-up without it.
   * Past `until` (ms since 1970) it stops waiting: the append may have been deleted.
   */
  reach?: { sequence: number; until: number };
}

const nanos = (ms: number) => Math.round(ms * 1_000_000);

/** The shortest idle limit a consumer asks for, so a reader's leftovers go soon but not mid-hiccup. */
export const MIN_IDLE_LIMIT_MS = 10_000;

/** How much longer than its own consumers' idle limit a consumer waits out the account's consumer limit. */
const LIMIT_MARGIN_MS = 5000;

/**
 * A push ordered consumer that jetsource owns instead of nats.js's, because it must:
 * use the connection's inbox prefix (tenant inbox permissions), signal caught-up even on
 * an empty filter or after a purge, resume from the last delivered sequence after any
 * gap, reconnect or server restart (no gap, no duplicate), and delete its server-side
 * consumer on stop when the user may (tenant readers and writers may not: theirs expire
 * after `inactive_threshold`, 10 s).
 * It needs only `CONSUMER.CREATE.<stream>.*.<filter>`, `CONSUMER.DELETE`, and the inbox.
 */
export class OrderedConsumer {
  private readonly heartbeatMs: number;
  /** The server removes a consumer nobody listens to after this long (readers may not delete theirs). */
  private readonly idleLimitMs: number;
  private jsm?: JetStreamManager;
  private sub?: Subscription;
  private status?: QueuedIterator<Status>;
  private consumerName?: string;
  private cursor = 0;
  private deliverySeq = 0;
  /** The first create's policy when it is not a sequence, until a create or a message sets the cursor. */
  private initial: 'last-per-subject' | undefined;
  private caughtUp = false;
  private stopped = false;
  private lastActivity = Date.now();
  private watchdog?: ReturnType<typeof setInterval>;
  private retry = backoff([100, 250, 500, 1000, 2000]);
  private retryTimer?: ReturnType<typeof setTimeout>;
  private failures = 0;
  /** When creates started being refused for the account's `max_consumers`; cleared by a create that succeeds. */
  private limitedSince?: number;
  /** Creates started so far; the latest one is the only one whose outcome counts. */
  private attempts = 0;
  /** The create in flight, if any; later requests to create wait for it (see createAgain). */
  private inFlight?: number;
  private createAgain = false;
  /** Off between a disconnect and the reconnect, which starts a new consumer itself. */
  private connected = true;
  /** Flow-control requests handed to the reader and not answered yet: the server is waiting on us. */
  private unanswered = 0;
  /** The sequence of {@link OrderedConsumerOptions.reach}, until given up on (then 0). */
  private reach: number;
  private reachTimer?: ReturnType<typeof setTimeout>;
  /** The server said nothing is pending while the cursor was short of `reach`. */
  private quietBelowReach = false;
  private readonly inFilter: (subject: string) => boolean;
  /** The cursor when a headers-only delivery last made the consumer again. */
  private strippedAt?: number;

  constructor(
    private readonly options: OrderedConsumerOptions,
    private readonly handlers: OrderedConsumerHandlers,
  ) {
    this.heartbeatMs = options.heartbeatMs ?? 2000;
    this.idleLimitMs = Math.max(this.heartbeatMs * 5, MIN_IDLE_LIMIT_MS);
    this.initial = typeof options.after === 'number' ? undefined : options.after;
    this.cursor = typeof options.after === 'number' ? options.after : 0;
    this.reach = options.reach?.sequence ?? 0;
    this.inFilter = subjectMatcher(options.filter);
  }

  /**
   * Creates the consumer; resolves once the first create has settled (accepted, or left to
   * retries). Fatal errors (permission denied, no stream) go to `handlers.error`.
   */
  async start(): Promise<void> {
    this.jsm = await jetstreamManager(this.options.nc, {
      checkAPI: false,
      apiPrefix: this.options.apiPrefix ?? jetStreamApi(this.options.nc),
    });
    if (this.stopped) return;
    const { reach } = this.options;
    if (reach && reach.sequence > this.cursor)
      this.reachTimer = setTimeout(
        () => {
          this.reach = 0;
          if (this.quietBelowReach && this.unanswered === 0) this.markCaughtUp();
        },
        Math.max(0, reach.until - Date.now()),
      );
    this.status = this.options.nc.status() as QueuedIterator<Status>;
    void this.followConnection(this.status);
    // Silence for three heartbeats means a lost consumer; a create in flight has its own timeout.
    this.watchdog = setInterval(() => {
      const silent = Date.now() - this.lastActivity > this.heartbeatMs * 3;
      if (silent && this.connected && this.inFlight === undefined) this.recreate();
    }, this.heartbeatMs);
    await this.create();
  }

  /** Stops delivery at once and deletes the server-side consumer. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.watchdog);
    clearTimeout(this.retryTimer);
    clearTimeout(this.reachTimer);
    this.status?.stop();
    this.sub?.unsubscribe();
    await this.deleteConsumer();
  }

  private async followConnection(status: AsyncIterable<Status>): Promise<void> {
    for await (const s of status) {
      // Every redial says 'reconnecting' first, so a consumer started mid-outage learns of it.
      if (s.type === 'disconnect' || s.type === 'reconnecting') this.connected = false;
      // nats.js may report one reconnect several times: act on the first.
      if (s.type !== 'reconnect' || this.connected) continue;
      this.connected = true;
      // Messages in flight during a disconnect are gone (core NATS): resume from the cursor,
      // now. A create still in flight was sent on the dead connection and would only time
      // out, so it is superseded rather than waited for.
      this.inFlight = undefined;
      this.createAgain = false;
      this.recreate();
    }
    // The status stream ends when the connection closes, which never comes back: end the
    // read or watch instead of waiting forever. (After stop() this is a no-op.)
    this.fail(new UnavailableError('the connection was closed', { remedy: closedRemedy }));
  }

  /**
   * Creates a consumer from the cursor, one at a time: a request while one is in flight
   * runs after it. Failures that a retry can fix are retried with backoff, once connected.
   */
  private async create(): Promise<void> {
    if (this.stopped || !this.connected) return;
    if (this.inFlight !== undefined) {
      this.createAgain = true;
      return;
    }
    clearTimeout(this.retryTimer);
    const attempt = ++this.attempts;
    this.inFlight = attempt;
    const retry = await this.createOnce(attempt);
    // Superseded by a reconnect: the newer attempt carries on.
    if (this.inFlight !== attempt) return;
    this.inFlight = undefined;
    if (this.stopped) return;
    if (this.createAgain) {
      this.createAgain = false;
      this.recreate();
    } else if (retry) {
      this.retryTimer = setTimeout(() => void this.create(), this.retry.backoff(this.failures++));
    }
  }

  /** One create; true when it failed in a way a retry may fix. */
  private async createOnce(attempt: number): Promise<boolean> {
    const name = unguessableName();
    const deliverSubject = inboxFor(this.options.nc);
    this.sub?.unsubscribe();
    this.deliverySeq = 0;
    this.quietBelowReach = false;
    this.lastActivity = Date.now();
    const config: Partial<ConsumerConfig> = {
      name,
      deliver_subject: deliverSubject,
      filter_subject: this.options.filter,
      ack_policy: AckPolicy.None,
      max_deliver: 1,
      flow_control: true,
      idle_heartbeat: nanos(this.heartbeatMs),
      inactive_threshold: nanos(this.idleLimitMs),
      mem_storage: true,
      num_replicas: 1,
      ...(this.initial === 'last-per-subject'
        ? { deliver_policy: DeliverPolicy.LastPerSubject }
        : this.cursor > 0
          ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.cursor + 1 }
          : { deliver_policy: DeliverPolicy.All }),
    };
    this.consumerName = name;
    let sub: Subscription | undefined;
    try {
      // Inside the try: on a closed connection subscribe throws, and that ends the watch.
      sub = this.sub = this.options.nc.subscribe(deliverSubject, {
        callback: (err, msg) => this.receive(err, msg, name),
      });
      const info = await this.jsm!.consumers.add(this.options.stream, config);
      // Stopped, or superseded, while the create was in flight: nothing else will delete it.
      if (this.stopped || attempt !== this.attempts) {
        sub.unsubscribe();
        void this.jsm!.consumers.delete(this.options.stream, name).catch(() => undefined);
        return false;
      }
      this.failures = 0;
      this.limitedSince = undefined;
      this.lastActivity = Date.now();
      // Once created, the consumer's position is the cursor; later recreations resume from it.
      this.initial = undefined;
      if (info.num_pending === 0 && this.deliverySeq === 0) this.markCaughtUp();
      return false;
    } catch (err) {
      sub?.unsubscribe();
      const fatal = this.refusal(err);
      // A create that timed out may still have been made: remove it rather than let it idle.
      // An API error is an answer: nothing was made.
      if (!fatal && this.connected && !(err instanceof JetStreamApiError))
        void this.jsm!.consumers.delete(this.options.stream, name).catch(() => undefined);
      if (attempt !== this.attempts) return false;
      if (fatal) this.fail(fatal);
      // Not connected yet, a leader election, a timeout: try again from the same cursor.
      return !fatal && !this.stopped;
    }
  }

  /**
   * The error that ends this consumer, or undefined to retry. At the account's consumer
   * limit, retrying is worth it while the consumers a reconnect left behind (ours and
   * other watches') can still expire; after that the limit is simply too low.
   */
  private refusal(err: unknown): Error | undefined {
    if (!(err instanceof JetStreamApiError && err.code === ApiErrorCode.MaximumConsumers))
      return fatalError(err, this.options);
    this.limitedSince ??= Date.now();
    if (Date.now() - this.limitedSince < this.idleLimitMs + LIMIT_MARGIN_MS) return undefined;
    return new UnavailableError(`no consumer on ${this.options.filter}: the account is at max_consumers`, {
      cause: err,
      remedy: "Raise the account's max_consumers, or watch less at once.",
    });
  }

  private receive(err: Error | null, msg: Msg, name: string): void {
    if (this.stopped || name !== this.consumerName) return;
    if (err) return this.fail(fromRequestError(err, this.options.stream, this.options.filter) as Error);
    if (!isDelivery(msg.reply)) return this.control(msg);
    const delivery = parseDelivery(msg.reply, this.options.stream, name);
    // Another consumer's, aimed at our inbox by a user who shares the inbox prefix: not ours.
    if (!delivery) return;
    this.lastActivity = Date.now();
    if (delivery.deliverySequence !== this.deliverySeq + 1) return this.recreate();
    // Off the filter: our consumer was changed under us (by a user who shares our identity
    // and so may update it). Made again from the cursor, it delivers what we asked for.
    if (!this.inFilter(msg.subject)) return this.recreate();
    const stored = pushedMessage(msg, delivery.streamSequence);
    // Headers only, by the same kind of update: made again, once per sequence, as a stored
    // message may carry that header itself.
    const headersOnly = msg.data.length === 0 && stored.header('Nats-Msg-Size') !== undefined;
    if (headersOnly && this.strippedAt !== this.cursor) {
      this.strippedAt = this.cursor;
      return this.recreate();
    }
    this.deliverySeq = delivery.deliverySequence;
    this.cursor = delivery.streamSequence;
    // The cursor is a position now, even if the create's reply never comes (a reconnect).
    this.initial = undefined;
    this.handlers.message(stored, delivery.pending);
    if (delivery.pending === 0) this.markCaughtUp();
    else this.quietBelowReach = false;
  }

  /** Flow control, heartbeats and consumer status messages. */
  private control(msg: Msg): void {
    const code = msg.headers?.code ?? 0;
    if (code !== 100) {
      // 409 "consumer deleted" and the like: build a new one from the cursor.
      if (code >= 400) this.recreate();
      return;
    }
    // Flow control names its consumer: another's, aimed at our inbox, is neither ours to
    // answer nor a sign that ours is alive.
    const subject = msg.reply || msg.headers?.get('Nats-Consumer-Stalled');
    if (subject && !isFlowControlOf(subject, this.options.stream, this.consumerName)) return;
    this.lastActivity = Date.now();
    if (subject) {
      // The server holds more for us: not caught up, whatever it said before.
      this.quietBelowReach = false;
      if (msg.reply) return this.flowControl(msg);
      // A heartbeat naming a stall: if no answer is pending with the reader, the request
      // was lost: answer it.
      if (this.unanswered === 0) this.options.nc.publish(subject);
      return;
    }
    if (this.unanswered > 0) return;
    const lastDelivered = Number(msg.headers?.get('Nats-Last-Consumer') || 0);
    if (lastDelivered !== this.deliverySeq) return this.recreate();
    // An idle heartbeat with nothing missed: nothing is pending, even if a purge
    // removed what num_pending had promised.
    this.markCaughtUp();
  }

  private flowControl(request: Msg): void {
    if (!this.handlers.flowControl) {
      request.respond();
      return;
    }
    this.unanswered++;
    let answered = false;
    this.handlers.flowControl(() => {
      if (answered) return;
      answered = true;
      this.unanswered--;
      if (!this.stopped) request.respond();
    });
  }

  private markCaughtUp(): void {
    if (this.caughtUp) return;
    if (this.cursor < this.reach) {
      this.quietBelowReach = true;
      return;
    }
    clearTimeout(this.reachTimer);
    this.caughtUp = true;
    this.handlers.caughtUp(this.cursor);
  }

  private recreate(): void {
    if (this.stopped) return;
    // While disconnected a delete would be lost: the recreate at reconnect sends it.
    if (this.connected) void this.deleteConsumer();
    void this.create();
  }

  private async deleteConsumer(): Promise<void> {
    const name = this.consumerName;
    this.consumerName = undefined;
    if (!name || !this.jsm || this.options.nc.isClosed()) return;
    await this.jsm.consumers.delete(this.options.stream, name).catch(() => undefined);
  }

  private fail(err: Error): void {
    if (this.stopped) return;
    void this.stop();
    this.handlers.error(err);
  }
}

/**
 * A consumer name no one can guess from the ones before it: users of one role see each
 * other's, and one who made our next consumer's name first would have our creates refused.
 */
const unguessableName = () =>
  `js_${Array.from(globalThis.crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('')}`;

/** A pushed message as a stored message (its headers are the original ones). */
function pushedMessage(msg: Msg, sequence: number): StoredMessage {
  return new NatsStoredMessage(sequence, msg.subject, msg.data, headerBlockOf(msg), msg.reply);
}

/** Errors a retry cannot fix. */
function fatalError(
  err: unknown,
  { nc, stream, apiPrefix, filter, missingRemedy }: OrderedConsumerOptions,
): Error | undefined {
  if (err instanceof JetStreamApiError && err.code === ApiErrorCode.StreamNotFound)
    return new StoreNotFoundError(stream, { cause: err, remedy: missingRemedy });
  const api = apiPrefix ?? jetStreamApi(nc);
  // The stream and filter are checked tokens: only the API prefix can make the subject
  // one nats.js refuses, and every retry would be refused the same.
  if (err instanceof errors.InvalidSubjectError || err instanceof errors.InvalidArgumentError)
    return new InvalidArgumentError('apiPrefix', api, `it makes no valid API subject (${err.message})`, {
      cause: err,
    });
  // A bug, here or in nats.js, is not cured by retrying either: report it.
  if (err instanceof TypeError || err instanceof RangeError) return err;
  const mapped = fromRequestError(err, stream, `${api}.CONSUMER.CREATE.${stream}.*.${filter}`);
  if (mapped instanceof StoreNotFoundError)
    return new StoreNotFoundError(stream, { cause: err, remedy: missingRemedy });
  if (mapped instanceof PermissionDeniedError) return mapped;
  // 503: JetStream or the stream is temporarily unavailable (a leader election, a restart).
  if (err instanceof JetStreamApiError && err.status === 503) return undefined;
  // Reads past a page and watches alike use this consumer: no retry gets past the limit.
  if (err instanceof JetStreamApiError && err.code === ApiErrorCode.IdleOverStreamLimit)
    return new StoreConfigError(
      stream,
      [
        `its consumer_limits.inactive_threshold is below what a consumer on ${filter} asks for (${err.message})`,
      ],
      {
        cause: err,
        remedy: `Raise it to at least ${MIN_IDLE_LIMIT_MS / 1000} s (ensureStore's consumerIdleLimitMs), or watch with a shorter heartbeatMs.`,
      },
    );
  if (err instanceof JetStreamApiError)
    return new ServerError(err.code, `a consumer on ${filter} was refused: ${err.message}`, { cause: err });
  if (err instanceof errors.ClosedConnectionError) return mapped as Error;
  return undefined;
}
