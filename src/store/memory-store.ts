import { Subject, type Observable } from 'rxjs';
import type { WatchMessage, WatchOptions } from '../watch/types.js';
import { watchEvents } from '../watch/watch.js';
import { jsonCodec, type EventCodec } from '../codec/codec.js';
import {
  batchIdTaken,
  EventFormat,
  eventIdHeader,
  eventIdTaken,
  isStoredEvent,
  wireEvents,
  type PreparedEvent,
  type PreparedWrite,
  type StoredMessage,
} from '../codec/event-format.js';
import { mapHeaderSource } from '../codec/metadata.js';
import type { EventSchemas } from '../codec/schema.js';
import { ConcurrencyError, type ValidationError } from '../errors.js';
import { assertPlainToken } from '../subjects/tokens.js';
import { SubjectScheme, subjectMatcher, type EntityRef } from '../subjects/subjects.js';
import { decodeNow, filterOf, foldEvents, readEvents, toFilter } from './reading.js';
import { appendOne, resultsFrom } from './writing.js';
import { assertObject, wholeOption } from '../options.js';
import type {
  AppendAllOptions,
  AppendOptions,
  AppendResult,
  EntityWrite,
  EventMap,
  EventReader,
  EventStore,
  Evolver,
  Loaded,
  LoadOptions,
  NewEvent,
  ReadOptions,
  EventTypeFilter,
  ReadTarget,
} from './types.js';

/** Options for {@link createMemoryEventStore}. */
export interface MemoryEventStoreOptions<E extends object> {
  /** The tenant whose events the store holds, as on JetStream. */
  tenant: string;
  /** Subject prefix. Default `es`. */
  prefix?: string;
  /**
   * The stream the JetStream store would write to. Each append names it in a header,
   * which counts toward `maxPayload`. Default `EVENTS`, as in `createEventStore`.
   */
  stream?: string;
  /** A Standard Schema per event type, validated on append and on read. */
  schemas?: EventSchemas<E>;
  /** Payload encoding. Default {@link jsonCodec}. */
  codec?: EventCodec;
  /** Most events in one atomic append, as the server's batch limit. Default 1000. */
  maxBatch?: number;
  /** The largest message, as the server's `max_payload`. Default 1 MiB, nats-server's default. */
  maxPayload?: number;
  /** How long an event id deduplicates retries, as the stream's duplicate window. Default 120000. */
  duplicateWindowMs?: number;
}

/** A raw message for {@link MemoryEventStore.appendRaw}, e.g. to test malformed-event handling. */
export interface RawMessage {
  subject: string;
  data: Uint8Array;
  headers?: ReadonlyArray<[string, string]>;
}

interface Stored extends StoredMessage {
  readonly pairs: ReadonlyArray<[string, string]>;
}

/**
 * Creates an in-memory {@link EventStore} with the JetStream store's semantics: the same
 * subjects, encoding, validation, expectations, atomicity and id deduplication. For unit
 * tests of deciders, folds and anything written against `EventStore`; projectors and
 * processors need JetStream (start one with `startNatsServer`).
 */
export function createMemoryEventStore<E extends object = EventMap>(
  options: MemoryEventStoreOptions<E>,
): MemoryEventStore<E> {
  return new MemoryEventStore(options);
}

/** The in-memory twin of the JetStream store. Create it with {@link createMemoryEventStore}. */
export class MemoryEventStore<E extends object = EventMap> implements EventStore<E> {
  readonly tenant: string;
  /** The stream named in each append (see {@link MemoryEventStoreOptions.stream}). */
  readonly stream: string;
  /** @internal How events map to subjects, headers and bytes (shared with the JetStream store). */
  readonly format: EventFormat<E>;
  /** Every stored message as it is appended; watch builds on it. */
  private readonly appended = new Subject<StoredMessage>();
  private readonly messages: Stored[] = [];
  /** Event ids with their sequence and when they were stored, for deduplication. */
  private readonly ids = new Map<string, { sequence: number; at: number }>();
  private readonly maxPayload: number;
  private readonly duplicateWindowMs: number;

  constructor(options: MemoryEventStoreOptions<E>) {
    assertObject('memory store options', options, '{ tenant, … }');
    this.tenant = options.tenant;
    this.stream = assertPlainToken('stream', options.stream ?? 'EVENTS');
    // Checked as the JetStream store checks its own: NaN would switch the limit, or deduplication, off.
    this.maxPayload = wholeOption('maxPayload', options.maxPayload, 1024 * 1024, 1);
    this.duplicateWindowMs = wholeOption('duplicateWindowMs', options.duplicateWindowMs, 120_000, 100);
    this.format = new EventFormat(new SubjectScheme(options.prefix ?? 'es', options.tenant), {
      codec: options.codec ?? jsonCodec,
      schemas: options.schemas,
      maxBatch: options.maxBatch,
    });
  }

  append(
    entity: EntityRef,
    events: NewEvent<E> | ReadonlyArray<NewEvent<E>>,
    options: AppendOptions = {},
  ): Promise<AppendResult> {
    return appendOne(this, entity, events, options);
  }

  async appendAll(
    writes: ReadonlyArray<EntityWrite<E>>,
    options: AppendAllOptions = {},
  ): Promise<AppendResult[]> {
    const prepared = await this.format.prepare(writes, options);
    // Refuses an event too large as the JetStream store sends it: every header counts.
    wireEvents(prepared, this.maxPayload, this.stream);
    const replay = this.replayOf(prepared);
    if (replay) return replay;
    const refusal = this.refusalOf(prepared);
    if (refusal) {
      // As the JetStream store does: an earlier call may have stored this very append, found
      // right after its expectation (even past the duplicate window) or ending its subject.
      const stored = this.anchoredReplay(prepared) ?? this.newestReplay(prepared);
      if (stored) return stored;
      throw refusal;
    }
    const [first] = this.store(
      prepared.flatMap((w) =>
        w.events.map((e) => ({ subject: e.subject, data: e.data, headers: e.headers })),
      ),
    );
    return resultsFrom(prepared, first!);
  }

  /**
   * Stores a message as is, bypassing encoding and validation, as a raw publish to the
   * stream would: a `Nats-Msg-Id` already stored within the duplicate window returns the
   * sequence that holds it instead.
   */
  appendRaw(raw: RawMessage): number {
    // Trimmed, as ids are read (and kept) trimmed.
    const id = raw.headers?.find(([name]) => name === eventIdHeader)?.[1]?.trim();
    const stored = id ? this.storedId(id) : undefined;
    return stored ?? this.store([raw])[0]!;
  }

  read<K extends keyof E & string>(
    target: EventTypeFilter<K>,
    options?: ReadOptions,
  ): EventReader<Pick<E, K>>;
  read(target?: ReadTarget<E>, options?: ReadOptions): EventReader<E>;
  read<K extends keyof E & string>(
    target: ReadTarget<E> = {},
    options: ReadOptions = {},
  ): EventReader<E> | EventReader<Pick<E, K>> {
    const matches = subjectMatcher(this.format.scheme.filter(filterOf(target, options, 'read')));
    const after = options.after ?? 0;
    const until = options.until ?? Number.MAX_SAFE_INTEGER;
    const messages = this.messages;
    const format = this.format;
    return readEvents(async function* () {
      // Pending counts to the end of the stream, as JetStream's does.
      let left = messages.slice(after).filter((m) => matches(m.subject)).length;
      // It ends where the stream ended when it started, as JetStream's reads end (near) there:
      // a reader appending to what it reads would otherwise never finish.
      const end = Math.min(until, messages.length);
      for (let i = after; i < end; i++) {
        if (matches(messages[i]!.subject))
          yield [decodeNow(format, { ...messages[i]!, pending: Math.max(0, --left) })];
      }
    }, options);
  }

  // Async, so a bad entity rejects the promise rather than throwing where load is called.
  async load<S>(entity: EntityRef, evolver: Evolver<S, E>, options: LoadOptions = {}): Promise<Loaded<S>> {
    assertObject('load options', options, "{ onMalformed: 'throw' | 'report' }");
    return foldEvents(this.read(entity, { onMalformed: options.onMalformed }), evolver);
  }

  async version(entity: EntityRef): Promise<number> {
    return this.lastOn(this.format.scheme.entity(entity));
  }

  async lastSequence(target: ReadTarget<E> = {}): Promise<number> {
    return this.lastOn(this.format.scheme.filter(toFilter(target)));
  }

  watch<K extends keyof E & string>(
    target: EventTypeFilter<K>,
    options?: WatchOptions,
  ): Observable<WatchMessage<Pick<E, K>>>;
  watch(target?: ReadTarget<E>, options?: WatchOptions): Observable<WatchMessage<E>>;
  watch<K extends keyof E & string>(
    target: ReadTarget<E> = {},
    options: WatchOptions = {},
  ): Observable<WatchMessage<E>> | Observable<WatchMessage<Pick<E, K>>> {
    const matches = subjectMatcher(this.format.scheme.filter(filterOf(target, options, 'watch')));
    return watchEvents(
      this.format,
      (handlers) => {
        let live: { unsubscribe(): void } | undefined;
        let stopped = false;
        return {
          start: async () => {
            // Nothing while subscribing, as on JetStream, where the history arrives later.
            await Promise.resolve();
            if (stopped) return;
            const from = options.after === 'new' ? this.messages.length : (options.after ?? 0);
            const history = this.messages.slice(from).filter((m) => matches(m.subject));
            history.forEach((m, i) => handlers.message(m, history.length - i - 1));
            const caughtUpAt = Math.max(from, history[history.length - 1]?.sequence ?? 0);
            handlers.caughtUp(caughtUpAt);
            if (stopped) return;
            // Only later events, as from a consumer starting there, even past the stream's end.
            live = this.appended.subscribe((m) => {
              if (m.sequence > caughtUpAt && matches(m.subject)) handlers.message(m, 0);
            });
          },
          stop: async () => {
            stopped = true;
            live?.unsubscribe();
          },
        };
      },
      options,
      {
        reached: async (sequence) => this.messages.length >= sequence,
        firstFrom: async (from) => {
          for (let i = Math.max(0, from - 1); i < this.messages.length; i++)
            if (matches(this.messages[i]!.subject)) return this.messages[i]!.sequence;
          return undefined;
        },
      },
    );
  }

  /**
   * Stores one append's messages. Each is stored before any is emitted, so a watcher
   * never sees an append half done: JetStream commits a batch whole.
   */
  private store(raws: ReadonlyArray<RawMessage>): number[] {
    const at = Date.now();
    const stored = raws.map((raw) => {
      const msg = storedMessage(raw, this.messages.length + 1, at);
      this.messages.push(msg);
      const id = msg.header(eventIdHeader);
      if (id) this.ids.set(id, { sequence: msg.sequence, at });
      return msg;
    });
    for (const msg of stored) this.appended.next(msg);
    return stored.map((m) => m.sequence);
  }

  private lastOn(subject: string): number {
    const matches = subjectMatcher(subject);
    for (let i = this.messages.length - 1; i >= 0; i--) {
      if (matches(this.messages[i]!.subject)) return i + 1;
    }
    return 0;
  }

  /** The sequence an event id holds, while the duplicate window remembers it. */
  private storedId(id: string): number | undefined {
    const known = this.ids.get(id);
    // Past the window the server no longer knows an id: the event would be stored again.
    return known && known.at >= Date.now() - this.duplicateWindowMs ? known.sequence : undefined;
  }

  /**
   * The original sequences when this append is a retry of a stored one: every id held, each
   * on its own event's subject, in one contiguous run, as `Nats-Msg-Id` deduplication sees it.
   */
  private replayOf(prepared: PreparedWrite[]): AppendResult[] | undefined {
    // The later events were stored after the first, so they are inside the window too.
    const first = this.storedId(prepared[0]!.events[0]!.id);
    return first === undefined ? undefined : this.runAt(prepared, first);
  }

  /**
   * The original sequences when this append is stored right after its first expectation:
   * its events in one contiguous run from there, with their subjects and ids.
   */
  private anchoredReplay(prepared: PreparedWrite[]): AppendResult[] | undefined {
    const anchored = prepared.findIndex((w) => w.expect !== 'any');
    if (anchored < 0) return undefined;
    const write = prepared[anchored]!;
    const before = prepared.slice(0, anchored).reduce((n, w) => n + w.events.length, 0);
    const from = (write.expect === 'new' ? 0 : (write.expect as number)) + 1;
    const first = write.events[0]!;
    let at = from;
    while (at <= this.messages.length && this.messages[at - 1]!.subject !== first.subject) at++;
    if (this.messages[at - 1]?.header(eventIdHeader) !== first.id) return undefined;
    return this.runAt(prepared, at - before);
  }

  /**
   * As the JetStream store looks for a caller's retry that carries another expectation:
   * the newest message on the last event's subject holds its id, and the whole append
   * sits in one run ending there.
   */
  private newestReplay(prepared: PreparedWrite[]): AppendResult[] | undefined {
    const events = prepared.flatMap((w) => w.events);
    if (!events.some((e) => e.idGiven)) return undefined;
    const last = events[events.length - 1]!;
    const newest = this.lastOn(last.subject);
    if (newest === 0 || this.messages[newest - 1]!.header(eventIdHeader) !== last.id) return undefined;
    return this.runAt(prepared, newest - events.length + 1);
  }

  /** The append's sequences when its events sit, each as itself (subject, id, data), from `start` on. */
  private runAt(prepared: PreparedWrite[], start: number): AppendResult[] | undefined {
    const events = prepared.flatMap((w) => w.events);
    const inPlace =
      start >= 1 &&
      events.every((e, i) => {
        const m = this.messages[start + i - 1];
        return m !== undefined && isStoredEvent(m, e);
      });
    return inPlace ? resultsFrom(prepared, start) : undefined;
  }

  /**
   * What nats-server (2.15) would refuse this append with, if anything. It checks one
   * event's expectation before its id; an atomic batch event by event, each id before the
   * expectation the event carries (a write's first event carries its write's).
   */
  private refusalOf(prepared: PreparedWrite[]): Error | undefined {
    const events = prepared.flatMap((w) => w.events);
    if (events.length === 1) return this.conflictOf(prepared[0]!) ?? this.idTaken(events[0]!);
    // The server does not say which id of a batch it holds, so neither does the error.
    const taken = (event: PreparedEvent) => this.storedId(event.id) !== undefined;
    for (const write of prepared) {
      const [first, ...rest] = write.events;
      if (taken(first!)) return batchIdTaken(events);
      const conflict = this.conflictOf(write);
      if (conflict) return conflict;
      if (rest.some(taken)) return batchIdTaken(events);
    }
    return undefined;
  }

  /** The conflict when the entity is not at the version the write expects. */
  private conflictOf(write: PreparedWrite): ConcurrencyError | undefined {
    if (write.expect === 'any') return undefined;
    const actual = this.lastOn(write.entitySubject);
    if (actual === (write.expect === 'new' ? 0 : write.expect)) return undefined;
    return new ConcurrencyError(write.entity, write.expect, actual);
  }

  /** The refusal of an id another stored event holds: the event would be dropped as a retry. */
  private idTaken(event: PreparedEvent): ValidationError | undefined {
    const at = this.storedId(event.id);
    if (at === undefined) return undefined;
    return eventIdTaken(event, { sequence: at, subject: this.messages[at - 1]!.subject });
  }
}

/** A message as the stream keeps it: headers read as nats.js reads them, bytes copied. */
function storedMessage(raw: RawMessage, sequence: number, at: number): Stored {
  const pairs = raw.headers ?? [];
  // A repeated header reads as its first value, as on JetStream; names keep their order.
  const lookup = new Map<string, string>();
  // Values are read trimmed, as nats.js reads them from the wire.
  for (const [name, value] of pairs) if (!lookup.has(name)) lookup.set(name, value.trim());
  // Bytes are copied in and out, as they cross the network on JetStream: neither the
  // writer changing its array later nor a decoder writing into its input alters history.
  const bytes = raw.data.slice();
  return {
    sequence,
    subject: raw.subject,
    get data() {
      return bytes.slice();
    },
    pairs,
    storedAt: () => at,
    ...mapHeaderSource(lookup),
  };
}
