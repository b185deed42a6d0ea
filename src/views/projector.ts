import { backoff, delay } from '@nats-io/nats-core';
import type { KV } from '@nats-io/kv';
import { isJetsourceError, PermissionDeniedError, UnavailableError } from '../errors.js';
import { adminRemedy } from '../connection/request-errors.js';
import { wholeOption } from '../options.js';
import type { Subscription } from 'rxjs';
import type { DeadLetter, DeadLetters } from '../processing/dead-letters.js';
import { summarize } from '../processing/attempt.js';
import { DeadLetterNotFoundError, FoldError } from '../processing/errors.js';
import type { JetStreamEventStore } from '../store/jetstream-store.js';
import type { EnvelopeOf, MalformedEvent } from '../store/types.js';
import type { WatchMessage } from '../watch/types.js';
import { ViewKeys, type ViewDefinition } from './define-view.js';
import { ensureViews } from './ensure-views.js';
import { retryable } from './retryable.js';
import { isWriteConflict } from '../store/jetstream/api.js';
import { ViewStorage, type Checkpoint } from './view-storage.js';
import { FoldedValues } from './folded-values.js';
import { foldedInOrder, foldedLate, hasDecided, letterIsOpen, withDeadLetter } from './value-ledger.js';

/** Options for {@link startProjector}. */
export interface ProjectorOptions {
  /** Default `views`. */
  bucket?: string;
  /**
   * Events folded between KV flushes. Default 500, at most 999: a flush writes its values
   * and the checkpoint in one atomic batch, and nats-server takes at most 1000 messages per
   * batch by default (a server with a lower `jetstream.limits.batch` limit refuses the
   * flush with `InvalidArgumentError('batchSize')`).
   */
  batchSize?: number;
  /**
   * Tries of `evolve` on one event before it is dead-lettered. Default 3. Tries reuse the
   * state, so an `evolve` that mutates it instead of returning a new one must not throw
   * halfway.
   */
  maxAttempts?: number;
  /**
   * Where events the projector cannot fold go: `evolve` or `key` threw, a key that is no
   * valid token, a malformed event. Without it such an event stops the projector: with a
   * {@link FoldError} when `evolve` or `key` threw, else with the event's own error.
   */
  deadLetters?: DeadLetters;
  /** Called after each batch with progress (events done and total, rate, ETA). */
  onProgress?: (progress: ProjectorProgress) => void;
  /**
   * Told of failures the projector retries (the server restarting, a timeout): it starts
   * again from its checkpoint after a backoff. Failures it cannot retry end `done`.
   */
  onRetry?: (err: unknown) => void;
  /**
   * Switch readers to this version once caught up, if it is newer than theirs. Default
   * true. False builds ahead of a deploy: the version's own projector, started later,
   * resumes from where this one stopped and switches readers then.
   */
  activate?: boolean;
}

/** How far a projector has come. */
export interface ProjectorProgress {
  readonly view: string;
  readonly version: number;
  readonly phase: 'catching-up' | 'live';
  /** Events folded by this run; a retry from the checkpoint (after a server restart) folds some again. */
  readonly done: number;
  /** done + events still to catch up. */
  readonly total: number;
  /** Events per second in this run. */
  readonly rate: number;
  /** Estimated ms to catch up; 0 when live. */
  readonly etaMs: number;
  /** Stream sequence of the last event processed. */
  readonly sequence: number;
}

/** A running projector. */
export interface Projector {
  /**
   * Resolves when history is folded and (unless `activate: false`) this version is the
   * active one. Rejects when the projector ends first: with its error, or an
   * `UnavailableError` when stopped.
   */
  readonly caughtUp: Promise<void>;
  /** Settles when the projector stops; rejects with the error that stopped it. */
  readonly done: Promise<void>;
  /** Events folded and in all, rate and ETA: for a progress bar during a rebuild. */
  progress(): ProjectorProgress;
  /**
   * Sequences between the newest matching event and the last one written to the view: 0
   * once readers see every event (one folded but still in a flush does not count yet).
   */
  lag(): Promise<number>;
  /** This view version's dead letters, oldest event first. */
  deadLetters(): Promise<DeadLetter[]>;
  /**
   * Folds a dead-lettered event in (after fixing `evolve`) and removes its dead letter.
   * Throws {@link DeadLetterNotFoundError} when there is none, `evolve`'s error (the
   * letter stays) when it still fails, and `UnavailableError` when the value kept changing
   * under it (replay again: it folds once). Replaying twice folds once, and a letter whose
   * event was folded in order after all (it was recorded just before a crash, and fixed
   * code folded the event on restart) is only removed. Safe while this and other
   * instances run: one holding an older copy of the value restarts from its checkpoint
   * onto the replayed one. Instances running different `evolve` code at once are not:
   * each folds the events it sees its own way.
   */
  replayDeadLetter(sequence: number): Promise<void>;
  /** Drops a dead letter without folding its event: for one no fix can fold, such as a malformed event. */
  dismissDeadLetter(sequence: number): Promise<void>;
  /** Stops following the stream; resolves once what was folded is written and checkpointed. */
  stop(): Promise<void>;
}

/** Waits between a replay's compare-and-set tries. */
const replayRetry = backoff([10, 50, 100, 250]);

/** nats-server's default limit of messages per atomic batch, less the checkpoint's. */
const MAX_BATCH_SIZE = 999;

/**
 * Live events queued per batch before the projector stops its watch: a projector that
 * falls behind drains the queue, then catches up by paging (bounded memory), then
 * watches again.
 */
const QUEUED_BATCHES = 4;

/**
 * Builds a view into KV and keeps it up to date. Idempotent by construction: every value
 * records the last sequence folded into it, events at or below it are skipped, and a
 * flush writes its values and the checkpoint in one atomic batch, compare-and-set on each
 * KV revision. A crash mid-flush, a restart, or two instances at once therefore never fold
 * an event twice, and the result is byte-identical to a fresh rebuild (apart from the
 * lists a value with dead letters keeps). It runs `ensureViews` first. Catch-up pages
 * through direct get (bounded memory); then it follows a watch. A new `version` builds into its own key space while the old
 * one keeps serving, and becomes active once caught up.
 */
export async function startProjector<S, E extends object>(
  store: JetStreamEventStore<E>,
  // A view written for any events (its E left out) fits every store.
  view: ViewDefinition<S, NoInfer<E>> | ViewDefinition<S>,
  options: ProjectorOptions = {},
): Promise<Projector> {
  // Before any I/O: a batch of 0 would never fold a live event, and spin; one over the
  // limit is a flush (values and checkpoint in one atomic batch) the server refuses.
  const limits = {
    batchSize: wholeOption('batchSize', options.batchSize, 500, 1, MAX_BATCH_SIZE),
    maxAttempts: wholeOption('maxAttempts', options.maxAttempts, 3, 1),
  };
  const bucket = options.bucket ?? 'views';
  const kv = await ensureViews(store.connection, { bucket }).catch((err: unknown) => {
    // Said of the step the caller took (it ensures the views bucket first).
    if (!(err instanceof PermissionDeniedError)) throw err;
    throw new PermissionDeniedError(err.subject, err.operation, {
      cause: err,
      remedy: adminRemedy(`startProjector (view ${view.name}, bucket ${bucket})`),
    });
  });
  // Sound: a view that folds any event folds E's.
  const projector = new ViewProjector(store, view as ViewDefinition<S, E>, kv, bucket, {
    ...options,
    ...limits,
  });
  projector.run();
  return projector;
}

class ViewProjector<S, E extends object> implements Projector {
  readonly caughtUp: Promise<void>;
  readonly done: Promise<void>;
  private markCaughtUp!: () => void;
  private finish!: (err?: unknown) => void;
  private readonly keys: ViewKeys;
  private readonly storage: ViewStorage<S>;
  private readonly values: FoldedValues<S>;
  private readonly processor: string;
  private lastSequence = 0;
  private processed = 0;
  private pending = 0;
  private phase: ProjectorProgress['phase'] = 'catching-up';
  private readonly started = Date.now();
  private stopped = false;
  private live?: Subscription;
  private queue: Array<WatchMessage<E>> = [];
  private draining?: Promise<void>;
  private replaying?: Promise<void>;
  private readonly retry = backoff([250, 500, 1000, 2000, 5000]);
  /** Failures in a row; a batch that flushes resets it. */
  private failures = 0;
  private restarting = false;
  /** The backoff before a restart's next run: stop() clears it, so nothing keeps the process up. */
  private restartTimer?: ReturnType<typeof setTimeout>;
  /** The checkpoint last stored: a restart resumes there, whatever was folded since. */
  private checkpointed = 0;
  /** Catch-up, until it hands over to the live watch. */
  private running?: Promise<void>;
  /** A fold or write that failed after stop() began: its flush must not checkpoint past it. */
  private failedWhileStopping?: unknown;
  /** Events whose open dead letter no value records (keyless letters), as of this run's start. */
  private keyless = new Set<number>();
  /** Bumped by each restart: work begun before it must neither fold nor checkpoint. */
  private epoch = 0;
  /** The live watch was stopped because the queue grew: catch up again once it is drained. */
  private fellBehind = false;

  constructor(
    private readonly store: JetStreamEventStore<E>,
    private readonly view: ViewDefinition<S, E>,
    kv: KV,
    bucket: string,
    private readonly options: ProjectorOptions & { batchSize: number; maxAttempts: number },
  ) {
    this.keys = new ViewKeys(store.tenant, view.name);
    this.storage = new ViewStorage(kv, { name: bucket, connection: store.connection }, this.keys, view);
    this.values = new FoldedValues(this.storage, `${view.name} v${view.version}`);
    // Dead letters are keyed by processor: name the stream and tenant, as one bucket may serve several.
    this.processor = `${store.stream}/${store.tenant}/${view.name}@v${view.version}`;
    let notCaughtUp!: (err: unknown) => void;
    this.caughtUp = new Promise((resolve, reject) => ((this.markCaughtUp = resolve), (notCaughtUp = reject)));
    let settle!: { resolve: () => void; reject: (err: unknown) => void };
    this.done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    // Rejections are for those who await them, not unhandled-rejection noise.
    this.caughtUp.catch(() => undefined);
    this.done.catch(() => undefined);
    this.finish = (err) => {
      // A projector that ends before catching up never will: say so to whoever awaits it.
      notCaughtUp(
        err ??
          new UnavailableError(`projector of ${view.name} v${view.version} stopped before it caught up`, {
            remedy: 'Start it again: it resumes from its checkpoint',
          }),
      );
      if (err) settle.reject(err);
      else settle.resolve();
    };
  }

  run(): void {
    const epoch = this.epoch;
    this.running = this.catchUp(epoch)
      .then(() => {
        if (epoch === this.epoch) this.followLive();
      })
      .catch((err) => {
        if (epoch === this.epoch) this.fail(err);
      });
  }

  /**
   * Starts over from the checkpoint after a failure a retry can fix. Nothing is lost or
   * folded twice: unflushed work is read again, and stored values skip what they hold.
   */
  private restart(err: unknown): void {
    // Both the watch and a drain can fail at once: one restart is enough.
    if (this.restarting) return;
    this.restarting = true;
    this.epoch++;
    this.fellBehind = false;
    this.live?.unsubscribe();
    this.live = undefined;
    this.queue.length = 0;
    this.values.forget();
    // Folds past the checkpoint were dropped with the cache: a stop() during the backoff
    // must not checkpoint past them.
    this.lastSequence = this.checkpointed;
    this.options.onRetry?.(err);
    this.restartTimer = setTimeout(() => {
      this.restarting = false;
      if (this.stopped) return;
      this.phase = 'catching-up';
      this.run();
    }, this.retry.backoff(this.failures++));
  }

  progress(): ProjectorProgress {
    const elapsed = Math.max(1, Date.now() - this.started) / 1000;
    const rate = this.processed / elapsed;
    return {
      view: this.view.name,
      version: this.view.version,
      phase: this.phase,
      done: this.processed,
      total: this.processed + this.pending,
      rate,
      etaMs: this.pending === 0 ? 0 : rate > 0 ? (this.pending / rate) * 1000 : Infinity,
      sequence: this.lastSequence,
    };
  }

  async lag(): Promise<number> {
    return Math.max(0, (await this.store.lastSequence(this.view.filter)) - this.checkpointed);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.live?.unsubscribe();
    // Let the folding in progress end (catch-up returns at its next event), then flush.
    await this.running;
    await this.replaying?.catch(() => undefined);
    await this.draining;
    let failure = this.failedWhileStopping;
    if (failure === undefined) {
      try {
        await this.flush();
      } catch (err) {
        failure = err;
      }
    }
    // A failed write leaves the checkpoint before the work it dropped: the next start folds
    // it again. Only a failure no restart would get past is the caller's to hear about.
    if (failure !== undefined && !retryable(failure, this.store.connection, 0)) {
      this.finish(failure);
      throw failure;
    }
    this.finish();
  }

  async deadLetters(): Promise<DeadLetter[]> {
    return (await this.options.deadLetters?.list(this.processor)) ?? [];
  }

  async dismissDeadLetter(sequence: number): Promise<void> {
    const letters = this.options.deadLetters;
    if (!letters) throw new DeadLetterNotFoundError(this.processor, sequence, 'it has no dead letters');
    await letters.remove(this.processor, sequence);
  }

  async replayDeadLetter(sequence: number): Promise<void> {
    const letters = this.options.deadLetters;
    const letter = await letters?.get(this.processor, sequence);
    if (!letter) throw new DeadLetterNotFoundError(this.processor, sequence, 'it has no dead letter');
    let event: EnvelopeOf<E> | undefined;
    for await (const e of this.store.read(this.view.filter, { after: sequence - 1, until: sequence }))
      event = e;
    if (!event || event.subject !== letter.subject)
      throw new DeadLetterNotFoundError(this.processor, sequence, 'its event is not in the stream');
    const kvKey = this.keys.entry(this.view.version, this.view.key(event));
    // The drain folds into the same cached values: hold it while the replay writes.
    while (this.draining || this.replaying) await (this.draining ?? this.replaying?.catch(() => undefined));
    this.replaying = this.foldLate(kvKey, event, letter).finally(() => {
      this.replaying = undefined;
      this.kick();
    });
    await this.replaying;
    await letters!.remove(this.processor, sequence);
  }

  /**
   * Folds a replayed event onto the stored value, compare-and-set, and records it there:
   * a repeat, or a retry after a crash before the letter was removed, does not fold it
   * twice. Nor does a letter whose event was folded in order after all (recorded just
   * before a crash, then folded by fixed code on restart): see {@link letterIsOpen}.
   * Another instance's copy of the value is now stale: its next write conflicts and it
   * restarts.
   */
  private async foldLate(kvKey: string, event: EnvelopeOf<E>, letter: DeadLetter): Promise<void> {
    const { sequence } = event;
    for (let attempt = 1; ; attempt++) {
      const current = await this.storage.load(kvKey);
      if (!letterIsOpen(current, letter)) return;
      const next = foldedLate(current, this.view.evolve(current.state, event), event);
      try {
        next.revision = await this.storage.put(kvKey, next);
      } catch (err) {
        // Instances flushing the key in between, or a slow server: try again on what is stored.
        if (!isWriteConflict(err) && !retryable(err, this.store.connection, 0)) throw err;
        if (attempt === 5)
          throw new UnavailableError(`could not write ${kvKey} to replay dead letter #${sequence}`, {
            cause: err,
            remedy: 'Replay it again: a replay folds its event once',
          });
        await delay(replayRetry.backoff(attempt));
        continue;
      }
      // A value folded but not yet flushed here keeps its copy: its write conflicts and restarts.
      this.values.offer(kvKey, next);
      return;
    }
  }

  private async catchUp(epoch: number): Promise<void> {
    const checkpoint = await this.values.readCheckpoint();
    const keyless = await this.keylessLetters(checkpoint);
    // A restart in between: the next run is this one's successor, and owns the state below.
    if (epoch !== this.epoch) return;
    this.lastSequence = this.checkpointed = checkpoint.sequence;
    this.values.forget();
    this.keyless = keyless;
    const reader = this.store.read(this.view.filter, {
      after: this.lastSequence,
      onMalformed: 'report',
      onProgress: (p) => (this.pending = p.pending),
    });
    let reported = 0;
    for await (const event of reader) {
      reported = await this.deadLetterMalformed(reader.malformed, reported, epoch);
      await this.apply(event, epoch);
      if (this.stopped || epoch !== this.epoch) return;
      if (this.values.unflushed >= this.options.batchSize || this.processed % this.options.batchSize === 0) {
        await this.flush(epoch);
        this.report();
      }
    }
    await this.deadLetterMalformed(reader.malformed, reported, epoch);
    if (epoch !== this.epoch) return;
    await this.flush(epoch);
    if (this.options.activate !== false) await this.storage.activate();
    this.phase = 'live';
    this.pending = 0;
    this.report();
    this.markCaughtUp();
  }

  private followLive(): void {
    if (this.stopped) return;
    this.live?.unsubscribe();
    this.live = this.store
      .watch(this.view.filter, { after: this.lastSequence, onMalformed: 'report' })
      .subscribe({
        next: (m) => {
          this.queue.push(m);
          if (this.queue.length >= this.options.batchSize * QUEUED_BATCHES) {
            this.live?.unsubscribe();
            this.live = undefined;
            this.fellBehind = true;
          }
          this.kick();
        },
        error: (err) => this.fail(err),
      });
  }

  /**
   * Starts draining unless a drain runs. An event queued while a finishing drain is still
   * settling would otherwise wait for the next event: so a finished drain looks again.
   */
  private kick(): void {
    if (this.draining || this.replaying) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.stopped) return;
      if (this.queue.length > 0) this.kick();
      else if (this.fellBehind) {
        this.fellBehind = false;
        this.phase = 'catching-up';
        this.run();
      }
    });
  }

  /** Folds everything queued, one flush per drained batch, so bursts cost few KV round trips. */
  private async drain(): Promise<void> {
    const epoch = this.epoch;
    try {
      // After a restart the queue is the new run's: this drain must not take from it.
      while (this.queue.length > 0 && !this.stopped && epoch === this.epoch) {
        const batch = this.queue.splice(0, this.options.batchSize);
        for (const m of batch) {
          if (m.kind === 'event') await this.apply(m.event, epoch);
          else if (m.kind === 'malformed') await this.deadLetterMalformed([m.malformed], 0, epoch);
          // A restart dropped what this batch folded so far: the new run reads it again.
          if (epoch !== this.epoch) return;
        }
        await this.flush(epoch);
        this.report();
      }
    } catch (err) {
      // A drain from before a restart: its failure is not the new run's.
      if (epoch === this.epoch) this.fail(err);
    }
  }

  /**
   * Folds one event into its key's cached value, or dead-letters it there. `epoch` is the
   * run it belongs to: after each wait, a restart in between (which cleared the cache)
   * makes it stop.
   */
  private async apply(event: EnvelopeOf<E>, epoch: number): Promise<void> {
    this.processed++;
    let kvKey: string;
    try {
      kvKey = this.keys.entry(this.view.version, this.view.key(event));
    } catch (err) {
      // A key the view cannot name (its key function threw, or the key is no valid token)
      // is the event's problem, not the projector's: dead-letter it and go on.
      return this.deadLetterKeyless(event.sequence, event.subject, err, epoch);
    }
    const loaded = await this.values.load(kvKey, () => epoch === this.epoch);
    if (epoch !== this.epoch) return;
    // A replay may have cached a newer copy in the hop since `load` returned.
    const entry = this.values.cached(kvKey) ?? loaded;
    // (A keyless letter's event the value passed stays open: its letter says so.)
    if (hasDecided(entry, event.sequence)) return this.advance(event.sequence);
    const folded = this.evolve(entry.state, event);
    if ('failure' in folded) {
      await this.recordDeadLetter(event.sequence, event.subject, folded.failure, folded.attempts, false);
      if (epoch !== this.epoch) return;
    }
    const current = this.values.cached(kvKey) ?? entry;
    // One it could not fold is recorded on the value, so a replay knows it is still open
    // and a restart does not decide it again. One whose keyless letter is still there (the
    // key is fixed) is recorded as folded, so a replay of that letter only removes it.
    this.values.fold(
      kvKey,
      'failure' in folded
        ? withDeadLetter(current, event.sequence)
        : foldedInOrder(current, folded.state, event, this.keyless.has(event.sequence)),
    );
    this.advance(event.sequence);
  }

  /** `evolve` with retries: the new state, or the last failure once `maxAttempts` ran out. */
  private evolve(state: S, event: EnvelopeOf<E>): { state: S } | { failure: unknown; attempts: number } {
    const { maxAttempts } = this.options;
    for (let attempt = 1; ; attempt++) {
      try {
        return { state: this.view.evolve(state, event) };
      } catch (failure) {
        if (attempt >= maxAttempts) return { failure, attempts: attempt };
      }
    }
  }

  private advance(sequence: number): void {
    this.lastSequence = Math.max(this.lastSequence, sequence);
  }

  /**
   * The events of this version's keyless letters. Letters from before letters said
   * whether a value records them are marked keyless first: values of that time record none.
   */
  private async keylessLetters(checkpoint: Checkpoint): Promise<Set<number>> {
    const deadLetters = this.options.deadLetters;
    if (!deadLetters) return new Set();
    // Only events after the checkpoint are folded in order by this run: older letters do
    // not matter here, except once, to mark those from before letters were.
    const letters = await deadLetters.list(this.processor, {
      after: checkpoint.lettersMarked ? checkpoint.sequence : 0,
    });
    if (!checkpoint.lettersMarked)
      for (const letter of letters.filter((l) => l.keyless === undefined))
        await deadLetters.record({ ...letter, keyless: true });
    return new Set(letters.filter((l) => l.keyless !== false).map((l) => l.sequence));
  }

  /**
   * Writes the values folded since the last flush and the checkpoint, all or nothing.
   * `epoch`: the run whose work this writes; a run superseded since leaves the next one's
   * bookkeeping alone.
   */
  private async flush(epoch = this.epoch): Promise<void> {
    const sequence = this.lastSequence;
    const wrote = await this.values.flush({ sequence, lettersMarked: true }, this.processed > 0);
    if (wrote && epoch === this.epoch) {
      this.checkpointed = sequence;
      this.failures = 0;
    }
  }

  private async deadLetterMalformed(
    malformed: ReadonlyArray<MalformedEvent>,
    from: number,
    epoch: number,
  ): Promise<number> {
    for (const m of malformed.slice(from))
      await this.deadLetterKeyless(m.sequence, m.subject, m.error, epoch);
    return malformed.length;
  }

  /** Dead-letters an event whose key is unknown, so no value can record it: its letter says so. */
  private async deadLetterKeyless(
    sequence: number,
    subject: string,
    err: unknown,
    epoch: number,
  ): Promise<void> {
    await this.recordDeadLetter(sequence, subject, err, 1, true);
    if (epoch !== this.epoch) return;
    this.keyless.add(sequence);
    this.advance(sequence);
  }

  private async recordDeadLetter(
    sequence: number,
    subject: string,
    err: unknown,
    attempts: number,
    keyless: boolean,
  ): Promise<void> {
    if (!this.options.deadLetters)
      // A jetsource error passes as it is (a malformed event's names the event); anything
      // the view's own code threw becomes a FoldError naming the event.
      throw isJetsourceError(err)
        ? err
        : new FoldError(`${this.view.name} v${this.view.version}`, sequence, subject, { cause: err });
    const error = summarize(err);
    const { processor } = this;
    await this.options.deadLetters.record({ processor, sequence, subject, error, attempts, keyless });
  }

  private report(): void {
    this.options.onProgress?.(this.progress());
  }

  private fail(err: unknown): void {
    if (this.stopped) return void (this.failedWhileStopping ??= err);
    if (retryable(err, this.store.connection, this.failures)) return this.restart(err);
    this.stopped = true;
    this.live?.unsubscribe();
    this.finish(err);
  }
}
