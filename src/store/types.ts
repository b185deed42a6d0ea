import type { EventMetadata } from '../codec/metadata.js';
import type { MalformedEventError } from '../errors.js';
import type { Observable } from 'rxjs';
import type { EntityRef, EventFilter } from '../subjects/subjects.js';
import type { WatchMessage, WatchOptions } from '../watch/types.js';

/**
 * The events of a store without a map: any type, any data. A store's own map is any object
 * type from event type to data, declared as a type alias or an interface.
 */
export type EventMap = Record<string, unknown>;

/** A stored event with its position and metadata. */
export interface EventEnvelope<T extends string = string, D = unknown> extends EventMetadata {
  /**
   * Unique event id (also the `Nats-Msg-Id` that deduplicates retries); `seq-<sequence>`
   * for an event published without jetsource's headers.
   */
  readonly id: string;
  readonly type: T;
  readonly data: D;
  readonly entity: EntityRef;
  /** The tenant whose subject it is on (every event of a store is its tenant's). */
  readonly tenant: string;
  /** Stream sequence: the event's global position, and its entity's version once written. */
  readonly sequence: number;
  /** When the writer appended it; when the server stored it, for an event published without jetsource's headers. */
  readonly time: Date;
  /** Where it is stored: `<prefix>.<tenant>.<entityType>.<entityId>.<eventType>`, tokens encoded. */
  readonly subject: string;
  /** User metadata, from the `Es-Meta-*` headers. */
  readonly meta: Readonly<Record<string, string>>;
}

/** The envelope union of an event map, discriminated by `type`. */
export type EnvelopeOf<E extends object> = {
  [K in keyof E & string]: EventEnvelope<K, E[K]>;
}[keyof E & string];

/** An event to append: a type from the map, its data, and optional metadata. */
export type NewEvent<E extends object> = {
  [K in keyof E & string]: EventMetadata & {
    readonly type: K;
    readonly data: E[K];
    /** Give your own id to make a retry across processes idempotent. Default: a random UUID. */
    readonly id?: string;
  };
}[keyof E & string];

/**
 * What the writer expects the entity's version to be:
 * - `'any'`: no check;
 * - `'new'`: the entity has no events yet;
 * - a number: the sequence of the entity's last event, as returned by `load` or `append`.
 */
export type ExpectedVersion = 'any' | 'new' | number;

/** Options for one append. */
export interface AppendOptions extends Omit<EventMetadata, 'meta' | 'schemaVersion'> {
  /** Default `'any'`. */
  expect?: ExpectedVersion;
}

/** Metadata shared by every event of an {@link EventStore.appendAll}; `expect` goes on each write. */
export type AppendAllOptions = Omit<AppendOptions, 'expect'> & { readonly expect?: never };

/** What an append wrote. */
export interface AppendResult {
  /** One stream sequence per event, in order. */
  readonly sequences: number[];
  /** The entity's new version: the last sequence written. */
  readonly version: number;
}

/** One entity's part of an atomic {@link EventStore.appendAll}. */
export interface EntityWrite<E extends object> {
  readonly entity: EntityRef;
  readonly events: ReadonlyArray<NewEvent<E>>;
  readonly expect?: ExpectedVersion;
}

/** A stored event that could not be decoded, reported instead of thrown. */
export interface MalformedEvent {
  /** Its stream sequence. */
  readonly sequence: number;
  /** The subject it is stored on. */
  readonly subject: string;
  /** Its payload as stored. */
  readonly raw: Uint8Array;
  /** Why it could not be decoded (bad bytes, unknown type, failed validation). */
  readonly error: MalformedEventError;
}

/** What to do with a stored event that cannot be decoded. */
export type MalformedPolicy = 'throw' | 'report';

/** Options for {@link EventStore.read}. */
export interface ReadOptions {
  /** Start after this sequence (exclusive). Default 0: from the beginning. */
  after?: number;
  /**
   * Stop at this sequence (inclusive). Default: wherever the stream is when the read reaches
   * it. At or before `after` the range is empty: the read ends at once, with no events.
   */
  until?: number;
  /** `'throw'` (default) fails the read; `'report'` collects them in {@link EventReader.malformed}. */
  onMalformed?: MalformedPolicy;
  /** Called after each event with how many were delivered and how many still match after it, for progress bars. */
  onProgress?: (progress: ReadProgress) => void;
}

/** How far a read has come. */
export interface ReadProgress {
  readonly delivered: number;
  /**
   * Matching events stored after the last one delivered, as the server counts them.
   * Without `until` that is what remains; with `until` it may also count events past
   * `until`, which the read will not return. 0 means the read is done.
   */
  readonly pending: number;
}

/**
 * An async iterable of events that also collects the malformed ones it skipped in `'report'`
 * mode. Typed by what it yields, so a reader of some of a map's events fits where one of
 * all of them is expected.
 */
export interface EventReader<E extends object, V = EnvelopeOf<E>> extends AsyncIterable<V> {
  readonly malformed: ReadonlyArray<MalformedEvent>;
}

/** A pure fold of events into state. */
export interface Evolver<S, E extends object> {
  readonly initial: S;
  readonly evolve: (state: S, event: EnvelopeOf<E>) => S;
}

/** An entity's folded state and the version to pass as `expect` on the next append. */
export interface Loaded<S> {
  readonly state: S;
  /** Sequence of the entity's last event, malformed ones included; 0 when it has none. */
  readonly version: number;
  /** The events left out of `state` with `onMalformed: 'report'`; empty otherwise. */
  readonly malformed: ReadonlyArray<MalformedEvent>;
}

/** Options for {@link EventStore.load}. */
export interface LoadOptions {
  /**
   * `'throw'` (default) fails the load on an event that cannot be decoded; `'report'`
   * folds the others and lists it in {@link Loaded.malformed}. The version still counts
   * it, so an append expecting that version holds.
   */
  onMalformed?: MalformedPolicy;
}

/**
 * Selects events: an entity, or a filter over entity type, id and event type (one of the
 * map's). Never a mix of the two (refused at compile time and at run time).
 */
export type ReadTarget<E extends object = EventMap> =
  | (EntityRef & { readonly [K in keyof EventFilter]?: never })
  | (EventFilter<keyof E & string> & { readonly type?: never; readonly id?: never });

/** A filter naming one event type: what it reads is typed as that type's events only. */
export type EventTypeFilter<K extends string> = EventFilter<K> & {
  readonly eventType: K;
  readonly type?: never;
  readonly id?: never;
};

/** The operations every jetsource store offers; the JetStream store and the in-memory twin both implement it. */
export interface EventStore<E extends object = EventMap> {
  readonly tenant: string;
  /** Appends events to one entity atomically. */
  append(
    entity: EntityRef,
    events: NewEvent<E> | ReadonlyArray<NewEvent<E>>,
    options?: AppendOptions,
  ): Promise<AppendResult>;
  /** Appends to several entities in one all-or-nothing batch; each entity has its own expectation. */
  appendAll(writes: ReadonlyArray<EntityWrite<E>>, options?: AppendAllOptions): Promise<AppendResult[]>;
  /**
   * Reads matching events in sequence order, ending once it has caught up. A filter that
   * names an `eventType` yields that type's envelopes only.
   */
  read<K extends keyof E & string>(
    target: EventTypeFilter<K>,
    options?: ReadOptions,
  ): EventReader<Pick<E, K>>;
  read(target?: ReadTarget<E>, options?: ReadOptions): EventReader<E>;
  /** Folds an entity's events into state. */
  load<S>(entity: EntityRef, evolver: Evolver<S, E>, options?: LoadOptions): Promise<Loaded<S>>;
  /** The entity's current version (sequence of its last event), 0 when it has none. */
  version(entity: EntityRef): Promise<number>;
  /**
   * Sequence of the newest event matching the target, 0 when none: what a reader or view is
   * lagging behind. Never below this store's own recent appends the target matches.
   */
  lastSequence(target?: ReadTarget<E>): Promise<number>;
  /**
   * A cold Observable of matching events: history first, then a `caught-up` marker, then
   * live events, in sequence order with no gap or duplicate across reconnects. A filter
   * that names an `eventType` emits that type's envelopes only.
   */
  watch<K extends keyof E & string>(
    target: EventTypeFilter<K>,
    options?: WatchOptions,
  ): Observable<WatchMessage<Pick<E, K>>>;
  watch(target?: ReadTarget<E>, options?: WatchOptions): Observable<WatchMessage<E>>;
}
