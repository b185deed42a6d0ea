import type { NatsConnection } from '@nats-io/nats-core';
import type { Observable } from 'rxjs';
import { OrderedConsumer } from './jetstream/ordered-consumer.js';
import type { WatchMessage, WatchOptions } from '../watch/types.js';
import { watchEvents, type StoredBounds } from '../watch/watch.js';
import { jsonCodec, type EventCodec } from '../codec/codec.js';
import { EventFormat } from '../codec/event-format.js';
import type { EventSchemas } from '../codec/schema.js';
import { TenantMismatchError } from '../errors.js';
import { jetStreamApi, tenantOfAccount, verifiedAccount } from '../connection/connect.js';
import { assertApiPrefix, assertPlainToken } from '../subjects/tokens.js';
import { assertObject, timeoutOption, wholeOption } from '../options.js';
import { SubjectScheme, type EntityRef, type EventFilter } from '../subjects/subjects.js';
import { decodeNow, filterOf, readEvents, foldEvents, mapChunks, toFilter } from './reading.js';
import { appendOne } from './writing.js';
import { DirectReader, type PendingMessage } from './jetstream/direct.js';
import { consumerRange } from './jetstream/consumer-range.js';
import { entityRange, EventTypeGuess } from './jetstream/entity-range.js';
import { OwnAppends } from './jetstream/own-appends.js';
import { reachingLast } from './jetstream/reaching.js';
import { catchUpSource, newestOnSource } from './jetstream/catch-up-source.js';
import type { OpenSource, SourceHandlers } from '../watch/source.js';
import { publishWrites, type PublishContext } from './jetstream/publish.js';
import { assertSupportedServer } from '../connection/server-version.js';
import { followConnection } from '../connection/link.js';
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

const identity = <T>(value: T): T => value;

/** A filter naming one entity and no event type: its events span one subject per type. */
const isWholeEntity = (filter: EventFilter): boolean =>
  filter.entityId !== undefined && filter.eventType === undefined;

/** Options for {@link createEventStore}. */
export interface EventStoreOptions<E extends object> {
  /** A connection from `connect()`, `wsconnect()` or `@nats-io/transport-node`. */
  connection: NatsConnection;
  /** The tenant every append, read and watch is scoped to. */
  tenant: string;
  /** First subject token. Default `es`. */
  prefix?: string;
  /** JetStream stream name. Default `EVENTS`. */
  stream?: string;
  /** Validators per event type; when given, unknown types are refused on write and read. */
  schemas?: EventSchemas<E>;
  /** Default: JSON. */
  codec?: EventCodec;
  /** The server's atomic batch limit (`jetstream.limits.batch.max_msgs`). Default 1000. */
  maxBatch?: number;
  /**
   * Where the connection's account has the JetStream API: `JS.API` for the bundled
   * config's readers and writers. Default: what `connect({ apiPrefix })` was given, else
   * `$JS.API`.
   */
  apiPrefix?: string;
  /** Per-request timeout in ms, 1 to 2147483647 (a longer timer fires at once). Default 5000. */
  timeoutMs?: number;
  /** Retries of an append after a timeout or transient error, an integer ≥ 0. Default 2. */
  retries?: number;
  /** Most messages per direct-get page while reading (a page also stops at 1 MiB), ≥ 1. Default 1000. */
  readPageSize?: number;
  /**
   * The stream's duplicate window (`ensureStore`'s `duplicateWindowMs`), where a retried
   * append is recognised by its event ids; at least 100, the server's minimum. Default
   * 120000, as `ensureStore` makes it.
   */
  duplicateWindowMs?: number;
}

/**
 * Opens an event store on an existing JetStream stream (an admin step makes it: `ensureStore` from `jetsource/server`).
 * It needs no stream or consumer admin rights: appends publish to the tenant's
 * subjects and reads use direct get, so it works for a restricted browser user. A missing
 * connection or an option it cannot use is an `InvalidArgumentError` at once: a `NaN`
 * retry count would never stop, a string timeout would be no timeout.
 *
 * @example
 * type Bank = { Opened: { owner: string }; Deposited: { amount: number } };
 * const store = createEventStore<Bank>({ connection: nc, tenant: 'acme' });
 * const { version } = await store.append({ type: 'account', id: 'a1' }, { type: 'Opened', data: { owner: 'Ann' } }, { expect: 'new' });
 */
export function createEventStore<E extends object = EventMap>(
  options: EventStoreOptions<E>,
): JetStreamEventStore<E> {
  return new JetStreamEventStore(options);
}

/** The JetStream-backed {@link EventStore}. Create it with {@link createEventStore}. */
export class JetStreamEventStore<E extends object = EventMap> implements EventStore<E> {
  readonly tenant: string;
  readonly stream: string;
  readonly connection: NatsConnection;
  /** @internal How events map to subjects, headers and bytes: the projector and processors use it. */
  readonly format: EventFormat<E>;
  /** Where the connection's account has the JetStream API (see {@link EventStoreOptions.apiPrefix}). */
  readonly apiPrefix: string;
  private readonly direct: DirectReader;
  private readonly publish: PublishContext;
  private readonly pageSize: number;
  /**
   * @internal This store's recent appends, which its reads and watches must see; a test
   * harness that stores events past the store records them here too.
   */
  readonly own = new OwnAppends();
  /** What entity reads have listed, so the next read of a type starts on its subjects at once. */
  private readonly eventTypes = new EventTypeGuess();

  constructor(options: EventStoreOptions<E>) {
    followConnection(options.connection);
    assertSupportedServer(options.connection);
    const account = verifiedAccount(options.connection);
    if (account !== undefined && tenantOfAccount(account) !== options.tenant) {
      throw new TenantMismatchError(options.tenant, `the connection belongs to account "${account}"`);
    }
    this.tenant = options.tenant;
    this.stream = assertPlainToken('stream', options.stream ?? 'EVENTS');
    this.connection = options.connection;
    this.format = new EventFormat(new SubjectScheme(options.prefix ?? 'es', options.tenant), {
      codec: options.codec ?? jsonCodec,
      schemas: options.schemas,
      maxBatch: options.maxBatch,
    });
    const timeoutMs = timeoutOption('timeoutMs', options.timeoutMs);
    this.apiPrefix =
      options.apiPrefix === undefined ? jetStreamApi(options.connection) : assertApiPrefix(options.apiPrefix);
    this.direct = new DirectReader(
      options.connection,
      this.stream,
      timeoutMs,
      undefined,
      this.apiPrefix,
      this.own,
    );
    this.pageSize = wholeOption('readPageSize', options.readPageSize, 1000, 1);
    this.publish = {
      nc: options.connection,
      stream: this.stream,
      timeoutMs,
      retries: wholeOption('retries', options.retries, 2, 0),
      direct: this.direct,
      own: this.own,
      // The server's minimum window is 100 ms (see ensureStore).
      duplicateWindowMs: wholeOption('duplicateWindowMs', options.duplicateWindowMs, 120_000, 100),
    };
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
    return publishWrites(this.publish, prepared);
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
    const filter = filterOf(target, options, 'read');
    const subject = this.format.scheme.filter(filter);
    const after = options.after ?? 0;
    const until = options.until ?? Number.MAX_SAFE_INTEGER;
    const decode = (msg: PendingMessage) => decodeNow(this.format, msg);
    return readEvents(
      isWholeEntity(filter)
        ? () => mapChunks(this.entityPages(subject, after, until), decode)
        : () =>
            reachingLast(
              this.range(decode)(subject, after, until),
              (from) => this.range(decode)(subject, from, until),
              this.direct.readEnd(subject),
              subject,
              after,
              until,
            ),
      options,
    );
  }

  /** One entity's messages in (after, until], read through its literal subjects (see entityRange). */
  private entityPages(subject: string, after: number, until: number) {
    return entityRange(this.direct, this.range(identity), subject, after, until, this.eventTypes);
  }

  /**
   * Reads one subject filter in (after, until]: direct-get pages, then an ordered consumer
   * once more than a page remains. `map` runs as each message arrives.
   */
  private range<T>(map: (msg: PendingMessage) => T) {
    return (subject: string, after: number, until: number): AsyncIterable<ReadonlyArray<T>> =>
      this.direct.range(subject, after, until, this.pageSize, map, {
        handOffAbove: this.pageSize,
        read: (from) =>
          consumerRange(
            { nc: this.connection, stream: this.stream, apiPrefix: this.apiPrefix },
            subject,
            from,
            until,
            map,
          ),
      });
  }

  // Async, so a bad entity rejects the promise rather than throwing where load is called.
  async load<S>(entity: EntityRef, evolver: Evolver<S, E>, options: LoadOptions = {}): Promise<Loaded<S>> {
    assertObject('load options', options, "{ onMalformed: 'throw' | 'report' }");
    return foldEvents(this.read(entity, { onMalformed: options.onMalformed }), evolver);
  }

  async version(entity: EntityRef): Promise<number> {
    // scheme.entity refuses a filter: a version belongs to one entity.
    return this.direct.version(this.format.scheme.entity(entity));
  }

  async lastSequence(target: ReadTarget<E> = {}): Promise<number> {
    return this.direct.lastSequence(this.format.scheme.filter(toFilter(target)));
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
    const filter = filterOf(target, options, 'watch');
    const subject = this.format.scheme.filter(filter);
    const after = options.after ?? 0;
    const follow = (from: number, handlers: SourceHandlers) =>
      new OrderedConsumer(
        {
          nc: this.connection,
          stream: this.stream,
          apiPrefix: this.apiPrefix,
          filter: subject,
          after: from,
          heartbeatMs: options.heartbeatMs,
          reach: this.own.awaited(subject, from, options.until ?? Number.MAX_SAFE_INTEGER),
        },
        handlers,
      );
    // One entity's history is cheapest through its literal subjects; then it follows live.
    const open: OpenSource =
      after === 'new'
        ? (handlers) =>
            newestOnSource(
              () => this.direct.lastSequence(subject),
              (from) => follow(from, handlers),
              handlers,
            )
        : isWholeEntity(filter)
          ? (handlers) =>
              catchUpSource(
                after,
                (from) => this.entityPages(subject, from, Number.MAX_SAFE_INTEGER),
                (from) => follow(from, handlers),
                handlers,
              )
          : (handlers) => follow(after, handlers);
    return watchEvents(this.format, open, options, this.storedBounds(subject));
  }

  /** What a watch with `until` asks before it completes, of the tenant's own subjects only. */
  private storedBounds(subject: string): StoredBounds {
    return {
      reached: async (sequence) =>
        (await this.direct.get({ seq: sequence, next_by_subj: this.format.scheme.filter({}) })) !== null,
      firstFrom: async (from) => (await this.direct.get({ seq: from, next_by_subj: subject }))?.sequence,
    };
  }
}
