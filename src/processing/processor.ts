import {
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { delay } from '@nats-io/nats-core';
import type { StoredMessage } from '../codec/event-format.js';
import type { JetStreamEventStore } from '../store/jetstream-store.js';
import { toFilter } from '../store/reading.js';
import type { EnvelopeOf, EventTypeFilter, ReadTarget } from '../store/types.js';
import { subjectMatches } from '../subjects/subjects.js';
import { assertPlainToken } from '../subjects/tokens.js';
import { timeoutOption } from '../options.js';
import {
  deliveriesExhausted,
  propagationOf,
  runAttempt,
  settle,
  summarize,
  type AttemptResult,
  type ErrorSummary,
  type ProcessContext,
  type ProcessorHandler,
  type Settlement,
} from './attempt.js';
import { DeadLetters, type DeadLetter } from './dead-letters.js';
import { AttemptClock, Delivery } from './delivery.js';
import { DeadLetterNotFoundError, ProcessorConfigError } from './errors.js';
import {
  consumeDurable,
  consumerExists,
  consumerFound,
  consumerProgress,
  countFrom,
  secretConsumersOf,
  ensureDurable,
  storedAt,
} from './jetstream.js';
import { MetricsRecorder, type AttemptKind, type ProcessorMetrics } from './metrics.js';
import {
  consumerConfig,
  durableName,
  resolvePolicy,
  retryDelay,
  type ProcessorPolicy,
  type ResolvedPolicy,
} from './policy.js';
import { WorkQueue } from './work-queue.js';

/**
 * Options for {@link startProcessor}: what to handle, how, and the delivery contract. `K`
 * is the event types the handler receives: the filter's `eventType` when it names one.
 */
export interface ProcessorOptions<
  E extends object,
  K extends keyof E & string = keyof E & string,
> extends ProcessorPolicy {
  /** The store whose events to handle; its connection, tenant and stream are used. */
  store: JetStreamEventStore<E>;
  /**
   * Identifies the processor: instances with the same name (and tenant) share one durable
   * consumer, so they split the work and a restart resumes where it stopped. Renaming it
   * starts a new processor from the first event.
   */
  name: string;
  /**
   * Which events: an entity `{ type, id }` or `{ entityType?, entityId?, eventType? }`.
   * Default: all the tenant's. Naming an `eventType` types the handler's events as that type's.
   */
  filter?: ReadTarget<E> | EventTypeFilter<K>;
  /** Runs once per event (at least once: make its effects idempotent, e.g. keyed by `event.id`). */
  // NoInfer: K comes from the filter alone, so a handler written for fewer types than
  // the filter lets through is refused rather than taken as the filter's meaning.
  handler: ProcessorHandler<Pick<E, NoInfer<K>>>;
  /** Where given-up events go. Default: `DeadLetters.open(connection)` (bucket `deadletters`). */
  deadLetters?: DeadLetters;
  /** Per-request timeout of replays' direct gets, in ms. Default 5000. */
  timeoutMs?: number;
  /**
   * The stream the durable consumer reads. Default `<store stream>_WORK`, the mirror
   * `ensureProcessorStream()` makes: tenant readers and writers may create consumers on
   * the store's stream (that is how they watch), and a create there can also update an
   * existing durable by name; they have no rights on the mirror. The store's own stream
   * serves only if it keeps idle consumers (`ensureStore`'s `consumerIdleLimitMs: 0`).
   */
  consumerStream?: string;
  /** Called after each delivery is settled. Must not throw (errors go to `onError`). */
  onOutcome?: (outcome: ProcessorOutcome) => void;
  /**
   * Background problems that no caller awaits: a dead letter that could not be written
   * (the event is retried instead), the consumer failing, a throwing `onOutcome`. Also
   * kept as `metrics().lastError`.
   */
  onError?: (error: unknown) => void;
}

/** How one delivery ended, for logs and traces. */
export interface ProcessorOutcome {
  readonly sequence: number;
  readonly subject: string;
  /** Which delivery this was, from 1. */
  readonly attempt: number;
  readonly result: 'processed' | 'retry' | 'dead-lettered';
  /** Handler time; absent when the handler did not run (an exhausted delivery). */
  readonly durationMs?: number;
  /** Why it was retried or dead-lettered. */
  readonly error?: ErrorSummary;
}

/** What replaying one dead letter came to. */
export type ReplayResult =
  | { readonly sequence: number; readonly status: 'processed' }
  /** Still failing: the dead letter is kept with the new error and one more attempt. */
  | { readonly sequence: number; readonly status: 'failed'; readonly error: ErrorSummary };

/** Options for {@link Processor.stop}. */
export interface StopOptions {
  /** How long to wait for running handlers before handing their events back. Default 10 000 ms. */
  timeoutMs?: number;
}

/** A running processor instance. */
export interface Processor {
  readonly name: string;
  /** Its durable name (see `durableName`): instances with the same one share the work. */
  readonly durable: string;
  /**
   * Its consumer on the server: `<durable>~<32 random hex digits>`, chosen by the first
   * instance ever started and kept in the dead-letter bucket, which only the service role
   * reads. A tenant user who knew it could have its own consumer deliver to this one's pull
   * or reset subject, stealing or replaying its events. (A consumer named `durable`, from
   * before this scheme, is adopted as it is.)
   */
  readonly consumer: string;
  /** The resolved delivery contract. */
  readonly policy: ResolvedPolicy;
  readonly state: 'running' | 'stopping' | 'stopped';
  /** Counters and handler timings of this instance. */
  metrics(): ProcessorMetrics;
  /**
   * Events not yet processed by any instance: those on the store's stream not yet delivered
   * (also those its mirror has not copied yet), plus those delivered but unsettled.
   */
  lag(): Promise<number>;
  /** Its dead letters, oldest event first. */
  deadLetters(): Promise<DeadLetter[]>;
  /** Runs the (fixed) handler on a dead-lettered event again; removes the dead letter on success. */
  replayDeadLetter(sequence: number): Promise<ReplayResult>;
  /** Replays every dead letter in sequence order. */
  replayDeadLetters(): Promise<ReplayResult[]>;
  /** Drops a dead letter without replaying it. */
  dismissDeadLetter(sequence: number): Promise<void>;
  /**
   * Graceful shutdown: stops fetching, hands back events that have not started, waits for
   * running handlers (up to `timeoutMs`, then aborts their signals and naks their events),
   * flushes the acks, and resolves. Idempotent. During an outage it still resolves; acks
   * the server did not get mean their events are delivered again.
   */
  stop(options?: StopOptions): Promise<void>;
}

/** Whether a processor's durable consumer, secret-named or not, is on `stream`. */
async function runsOn(jsm: JetStreamManager, stream: string, durable: string): Promise<boolean> {
  return (
    (await consumerFound(jsm, stream, durable)) || (await secretConsumersOf(jsm, stream, durable)).length > 0
  );
}

/** `<durable>~<32 hex digits>` (a random UUID's): a consumer name no one can guess from the processor's name. */
const secretConsumerName = (durable: string) =>
  `${durable}~${globalThis.crypto.randomUUID().replaceAll('-', '')}`;

/**
 * Runs `handler` for every event matching `filter`, at least once, through a durable pull
 * consumer with explicit acks. A handler that throws is retried with backoff; after
 * `maxDeliver` attempts, or on `reject()` or an undecodable event, the event is
 * dead-lettered and the processor moves on. Start the same name in several processes to
 * share the work. Needs stream and consumer admin rights (the `service` role).
 *
 * @example
 * await ensureProcessorStream(nc); // EVENTS_WORK, which tenant users cannot touch
 * const welcome = await startProcessor({
 *   store, // reads the mirror EVENTS_WORK, from ensureProcessorStream()
 *   name: 'send-welcome',
 *   filter: { entityType: 'account', eventType: 'Opened' },
 *   handler: async (event, ctx) => {
 *     // event is typed as an Opened event: the filter names that type.
 *     if (!mailer.up) return retry(30_000);
 *     await mailer.send(event.data.owner, { idempotencyKey: event.id });
 *     await store.append(event.entity, { type: 'Welcomed', data: {} }, ctx.propagation);
 *   },
 * });
 * process.on('SIGTERM', () => welcome.stop());
 */
export async function startProcessor<E extends object, K extends keyof E & string = keyof E & string>(
  options: ProcessorOptions<E, K>,
): Promise<Processor> {
  const { store, name } = options;
  // Without a handler every event would fail, and be dead-lettered, one by one.
  if (typeof options.handler !== 'function')
    throw new ProcessorConfigError(name, ['handler must be a function (event, context) => …']);
  // Processors need JetStream's durable consumers: the in-memory store has no connection.
  if (typeof store?.connection !== 'object' || store.connection === null)
    throw new ProcessorConfigError(name, ['store must be one from createEventStore(), on a NATS connection']);
  const policy = resolvePolicy(name, options);
  const durable = durableName(store.tenant, name);
  const filter = store.format.scheme.filter(toFilter(options.filter ?? {}, 'filter'));
  const timeoutMs = timeoutOption('timeoutMs', options.timeoutMs);
  const stream =
    options.consumerStream === undefined
      ? `${store.stream}_WORK`
      : assertPlainToken('consumerStream', options.consumerStream);
  const jsm = await jetstreamManager(store.connection, { checkAPI: false });
  // A missing mirror is made by ensureProcessorStream, not ensureStore.
  const mirrorRemedy =
    'create the mirror once with ensureProcessorStream() (service role), or set consumerStream';
  if (options.consumerStream === undefined && (await runsOn(jsm, store.stream, durable)))
    throw new ProcessorConfigError(name, [
      `its durable consumer is on ${store.stream} itself; on the default, ${stream}, it would run every event again: ` +
        `pass consumerStream: '${store.stream}' to keep it there`,
    ]);
  const deadLetters = options.deadLetters ?? (await DeadLetters.open(store.connection));
  const consumer = await deadLetters.consumerName(durable, async () => {
    // A consumer named after the processor alone predates secret names: it is kept, as
    // replacing it would run every event again. So is a secret-named one whose record was
    // lost (a purged key, a recreated bucket).
    if (await consumerFound(jsm, stream, durable)) return durable;
    const found = await secretConsumersOf(jsm, stream, durable);
    if (found.length > 1)
      throw new ProcessorConfigError(name, [
        `${found.length} consumers on ${stream} belong to it (${found.join(', ')}); delete all but the one to keep`,
      ]);
    return found[0] ?? secretConsumerName(durable);
  });
  await ensureDurable(jsm, stream, name, consumerConfig(consumer, filter, policy), mirrorRemedy);
  const letters = `${store.stream}/${durable}`;
  const resolved = { policy, durable, letters, consumer, filter, jsm, deadLetters, stream, timeoutMs };
  // The consumer's filter delivers only K's events, and a replay checks the subject.
  const processor = new DurableProcessor(options as unknown as RunOptions<E>, resolved);
  await processor.start();
  return processor;
}

/** The options as a running processor sees them: a handler of every event its filter lets through. */
type RunOptions<E extends object> = Omit<ProcessorOptions<E>, 'handler'> & { handler: ProcessorHandler<E> };

interface Resolved {
  /** Where the durable lives: the store's stream or its mirror (same sequences). */
  stream: string;
  policy: ResolvedPolicy;
  durable: string;
  /** Whose dead letters: `<stream>/<durable>`, so same-named processors of two stores keep theirs apart. */
  letters: string;
  consumer: string;
  filter: string;
  jsm: JetStreamManager;
  deadLetters: DeadLetters;
  /** Per-request timeout of replays' direct gets. */
  timeoutMs: number;
}

class DurableProcessor<E extends object> implements Processor {
  readonly name: string;
  readonly durable: string;
  readonly consumer: string;
  readonly policy: ResolvedPolicy;
  state: Processor['state'] = 'running';
  private readonly recorder = new MetricsRecorder();
  private readonly running = new Set<Delivery>();
  private readonly queue: WorkQueue<Delivery>;
  private messages: ConsumerMessages | undefined;
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly options: RunOptions<E>,
    private readonly resolved: Resolved,
  ) {
    this.name = options.name;
    this.durable = resolved.durable;
    this.consumer = resolved.consumer;
    this.policy = resolved.policy;
    this.queue = new WorkQueue(this.policy.concurrency, this.policy.ackWaitMs / 3, (d) => this.process(d));
  }

  async start(): Promise<void> {
    const { store } = this.options;
    this.messages = await consumeDurable(store.connection, this.resolved.stream, this.consumer, {
      // Pull only what the handler slots can take; max_ack_pending bounds the rest.
      max_messages: this.policy.concurrency,
      callback: (msg) => this.accept(msg),
    });
    void this.messages.closed().then((err) => {
      if (err && this.state === 'running') this.report(err);
    });
    void this.watchConsumer(this.messages);
  }

  /**
   * nats.js keeps pulling from a deleted consumer without a word. Recreating it would start
   * over from the first event and run every effect again, so this stops and says so.
   */
  private async watchConsumer(messages: ConsumerMessages): Promise<void> {
    for await (const status of messages.status()) {
      if (status.type !== 'consumer_deleted' && status.type !== 'consumer_not_found') continue;
      if (this.state !== 'running') return;
      // A deletion notice is final; a pull that did not find it is checked first.
      if (
        status.type === 'consumer_not_found' &&
        (await consumerExists(this.resolved.jsm, this.resolved.stream, this.consumer))
      )
        continue;
      if (this.state !== 'running') return;
      this.report(
        new ProcessorConfigError(this.name, [
          `its durable consumer ${this.consumer} on ${this.resolved.stream} is gone, so it stopped; ` +
            'start it again to recreate the consumer from the first event, or restore the consumer',
        ]),
      );
      await this.stop({ timeoutMs: this.policy.ackWaitMs });
      return;
    }
  }

  metrics(): ProcessorMetrics {
    return this.recorder.snapshot(this.queue.active);
  }

  async lag(): Promise<number> {
    const { store } = this.options;
    const { delivered, ackPending } = await consumerProgress(
      this.resolved.jsm,
      this.resolved.stream,
      this.consumer,
    );
    // Counted on the store's stream: its mirror (same sequences) may not hold the latest yet.
    const undelivered = await countFrom(
      store.connection,
      store.stream,
      this.resolved.filter,
      delivered + 1,
      this.resolved.timeoutMs,
    );
    return undelivered + ackPending;
  }

  deadLetters(): Promise<DeadLetter[]> {
    return this.resolved.deadLetters.list(this.resolved.letters);
  }

  async replayDeadLetter(sequence: number): Promise<ReplayResult> {
    const letter = await this.resolved.deadLetters.get(this.resolved.letters, sequence);
    if (!letter) throw new DeadLetterNotFoundError(this.name, sequence, 'it has no dead letter');
    return this.replay(letter);
  }

  async replayDeadLetters(): Promise<ReplayResult[]> {
    const results: ReplayResult[] = [];
    for (const letter of await this.deadLetters()) {
      // One letter whose event is gone must not keep the others from their replay.
      const result = await this.replay(letter).catch((err: unknown) => {
        if (!(err instanceof DeadLetterNotFoundError)) throw err;
        return { sequence: letter.sequence, status: 'failed' as const, error: summarize(err) };
      });
      results.push(result);
    }
    return results;
  }

  dismissDeadLetter(sequence: number): Promise<void> {
    return this.resolved.deadLetters.remove(this.resolved.letters, sequence);
  }

  stop(options: StopOptions = {}): Promise<void> {
    this.stopped ??= this.shutdown(options.timeoutMs ?? 10_000);
    return this.stopped;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.state = 'stopping';
    // Events that never started go back at once, for another instance to take; any that
    // arrive from here on are handed back by accept().
    for (const delivery of this.queue.drain()) delivery.nak();
    // Closing ends the pull requests; the server drops them once nobody listens.
    await this.messages?.close();
    if (!(await settlesWithin(this.queue.idle(), timeoutMs))) {
      for (const delivery of this.running) {
        delivery.clock.abort(new Error(`the processor stopped after waiting ${timeoutMs} ms`));
        delivery.nak();
      }
    }
    // Acks are fire-and-forget publishes: make sure the server has them before resolving.
    // Disconnected, it cannot: those events are delivered again (at least once), and
    // stop() still ends rather than fail or hang on the outage.
    const nc = this.options.store.connection;
    if (!nc.isClosed()) await nc.flush().catch(() => undefined);
    this.state = 'stopped';
  }

  private accept(msg: JsMsg): void {
    const delivery = new Delivery(msg);
    if (this.state !== 'running') delivery.nak();
    else this.queue.push(delivery);
  }

  private async process(delivery: Delivery): Promise<void> {
    this.running.add(delivery);
    try {
      if (delivery.attempt > this.policy.maxDeliver) {
        // The spare delivery: the last attempt never settled, so record it now.
        await this.apply(delivery, {
          action: 'dead-letter',
          error: deliveriesExhausted(this.policy.maxDeliver),
        });
        return;
      }
      const started = performance.now();
      const result = await this.attempt(delivery.stored, delivery.attempt, delivery.clock);
      const durationMs = performance.now() - started;
      this.recorder.attempt(kindOf(result), durationMs);
      await this.apply(delivery, settle(result, delivery.attempt, this.policy), durationMs);
    } catch (err) {
      this.report(err);
    } finally {
      delivery.clock.end();
      this.running.delete(delivery);
    }
  }

  private attempt(stored: StoredMessage, attempt: number, clock: AttemptClock): Promise<AttemptResult> {
    clock.start(this.policy.ackWaitMs);
    const context = (event: EnvelopeOf<E>): ProcessContext => ({
      processor: this.name,
      attempt,
      lastAttempt: attempt >= this.policy.maxDeliver,
      propagation: propagationOf(event),
      signal: clock.signal,
    });
    return runAttempt(this.options.store.format, this.options.handler, stored, context);
  }

  private async apply(delivery: Delivery, settlement: Settlement, durationMs?: number): Promise<void> {
    // stop() already handed this event back: a late result must not settle or record it.
    if (delivery.settled) return;
    const base = {
      sequence: delivery.sequence,
      subject: delivery.subject,
      attempt: delivery.attempt,
      durationMs,
    };
    if (settlement.action === 'ack') {
      if (delivery.ack()) this.notify({ ...base, result: 'processed' });
    } else if (settlement.action === 'nak') {
      if (delivery.nak(settlement.delayMs))
        this.notify({ ...base, result: 'retry', error: settlement.error });
    } else if (await this.deadLetter(delivery, settlement.error)) {
      this.notify({ ...base, result: 'dead-lettered', error: settlement.error });
    }
  }

  /** Records the dead letter, then terminates the event. False when it was not settled here. */
  private async deadLetter(delivery: Delivery, error: ErrorSummary): Promise<boolean> {
    const attempts = Math.min(delivery.attempt, this.policy.maxDeliver);
    // From the last attempt on, the event must be recorded here: a nak would bring back
    // only the spare delivery, which knows no more than that the attempts ran out.
    const last = delivery.attempt >= this.policy.maxDeliver;
    const spare = delivery.attempt > this.policy.maxDeliver;
    for (let tries = 0; ; tries++) {
      try {
        await this.record({ sequence: delivery.sequence, subject: delivery.subject, error, attempts });
        break;
      } catch (err) {
        this.report(err);
        // Without a record the event must not be terminated: let it come back and try again
        // (stopping on the last attempt, the spare delivery records it).
        if (!last || (!spare && this.state !== 'running')) {
          delivery.nak(retryDelay(this.policy, delivery.attempt));
          return false;
        }
        if (this.state !== 'running') {
          this.report(
            new Error(
              `event #${delivery.sequence} could not be dead-lettered before the processor stopped, ` +
                'and the server will not deliver it again: record or replay it by hand',
              { cause: err },
            ),
          );
          delivery.nak();
          return false;
        }
        // Keep the delivery ours (within its ack wait) while the dead-letter bucket recovers.
        delivery.working();
        await delay(Math.min(250 * 2 ** Math.min(tries, 5), this.policy.ackWaitMs / 3));
      }
    }
    if (!delivery.term(`${error.name}: ${error.message}`.slice(0, 256))) return false;
    this.recorder.deadLettered();
    return true;
  }

  private record(letter: Omit<DeadLetter, 'at' | 'processor'>): Promise<DeadLetter> {
    return this.resolved.deadLetters.record({ ...letter, processor: this.resolved.letters });
  }

  private async replay(letter: DeadLetter): Promise<ReplayResult> {
    const { store } = this.options;
    const stored = await storedAt(store.connection, store.stream, letter.sequence, this.resolved.timeoutMs);
    // The subject check keeps a foreign or reused sequence from reaching this handler.
    if (
      !stored ||
      stored.subject !== letter.subject ||
      !subjectMatches(this.resolved.filter, stored.subject)
    ) {
      throw new DeadLetterNotFoundError(
        this.name,
        letter.sequence,
        'its event is no longer in the stream; remove it with dismissDeadLetter()',
      );
    }
    const attempt = letter.attempts + 1;
    const clock = new AttemptClock();
    const result = await this.attempt(stored, attempt, clock).finally(() => clock.end());
    if (result.kind === 'processed') {
      await this.resolved.deadLetters.remove(this.resolved.letters, letter.sequence);
      return { sequence: letter.sequence, status: 'processed' };
    }
    const error = replayError(result);
    await this.record({ sequence: letter.sequence, subject: letter.subject, error, attempts: attempt });
    return { sequence: letter.sequence, status: 'failed', error };
  }

  private notify(outcome: ProcessorOutcome): void {
    try {
      this.options.onOutcome?.(outcome);
    } catch (err) {
      this.report(err);
    }
  }

  private report(err: unknown): void {
    this.recorder.error(err, new Date());
    try {
      this.options.onError?.(err);
    } catch {
      // onError itself failed; the error is still in metrics().lastError.
    }
  }
}

function kindOf(result: AttemptResult): AttemptKind {
  if (result.kind === 'processed') return 'processed';
  return result.kind === 'retry' ? 'retried' : 'failed';
}

function replayError(result: Exclude<AttemptResult, { kind: 'processed' }>): ErrorSummary {
  if (result.kind === 'rejected') return { name: 'Rejected', message: result.reason };
  if (result.kind === 'retry') return { name: 'RetryRequested', message: 'the handler asked for a retry' };
  return summarize(result.error);
}

/** True when `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
