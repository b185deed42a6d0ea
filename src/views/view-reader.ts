import type { NatsConnection } from '@nats-io/nats-core';
import {
  asapScheduler,
  auditTime,
  distinctUntilChanged,
  filter,
  map,
  scan,
  switchMap,
  type Observable,
} from 'rxjs';
import { StoreConfigError } from '../errors.js';
import type { StoredMessage } from '../codec/event-format.js';
import { DirectReader } from '../store/jetstream/direct.js';
import { watchKv, type KvWatchMessage } from '../watch/kv-watch.js';
import { decodeViewEntry } from './codec.js';
import { ViewKeys, type ViewDefinition, type ViewEntry } from './define-view.js';
import { assertApiPrefix, assertBucketName } from '../subjects/tokens.js';
import { assertObject, timeoutOption } from '../options.js';
import { followConnection } from '../connection/link.js';

/** Where a view lives: a connection in the tenant's account (a store fits). */
export interface ViewSource {
  readonly connection: NatsConnection;
  readonly tenant: string;
  /** Where the account has the JetStream API (a store knows; default: the connection's). */
  readonly apiPrefix?: string;
}

/** Options for {@link openView}. */
export interface OpenViewOptions {
  /** Default `views`. */
  bucket?: string;
  /** Per-request timeout in ms. Default 5000. */
  timeoutMs?: number;
}

/** Reads one view: a promise for a key, or live Observables. Works for a tenant reader in a browser. */
export interface ViewReader<S> {
  /** The key's value in the active version (see {@link ViewEntry.version}), or null when it has none yet. */
  get(key: string): Promise<ViewEntry<S> | null>;
  /** The key's value once loaded (null when missing), then every change. Follows version switches. */
  watch(key: string): Observable<ViewEntry<S> | null>;
  /**
   * Every key of the view once loaded, then the whole map after each change. Changes that
   * arrive together (a projector's batch) emit one map, not one copy per key.
   */
  watchAll(): Observable<ReadonlyMap<string, ViewEntry<S>>>;
  /** The version being served, or undefined before any projector has caught up. */
  activeVersion(): Promise<number | undefined>;
}

/** A view named without its definition, by a reader that does not import it. */
export interface ViewName {
  readonly name: string;
  readonly version: number;
  /** Absent: a full definition takes the other overload, which infers the state type. */
  readonly evolve?: never;
}

/**
 * Opens a view for reading. It uses only permission-scopable APIs: direct get by
 * subject and a single-filter consumer per watch, so a tenant reader can use it. Given
 * the view's definition, the state type is the definition's; given only its name and
 * version, say the state type.
 *
 * @example
 * const balances = openView(store, balancesView); // ViewReader<number>
 * balances.watch('alice').subscribe((entry) => render(entry?.state ?? 0));
 * const remote = openView<number>(store, { name: 'balances', version: 1 });
 */
export function openView<S>(
  source: ViewSource,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any event map: readers do not fold
  view: ViewDefinition<S, any>,
  options?: OpenViewOptions,
): ViewReader<S>;
export function openView<S = unknown>(
  source: ViewSource,
  view: ViewName,
  options?: OpenViewOptions,
): ViewReader<S>;
export function openView<S>(
  source: ViewSource,
  view: { readonly name: string; readonly version: number },
  options: OpenViewOptions = {},
): ViewReader<S> {
  assertObject('view source', source, 'a store, or { connection, tenant }');
  assertObject('view', view, 'its definition, or { name, version }');
  assertObject('openView options', options, '{ bucket, timeoutMs }');
  const bucket = assertBucketName(options.bucket ?? 'views');
  const keys = new ViewKeys(source.tenant, view.name);
  const missing = 'the service role creates it with ensureViews() or by starting a projector';
  const { connection } = source;
  followConnection(connection, 'view source connection');
  const apiPrefix = source.apiPrefix === undefined ? undefined : assertApiPrefix(source.apiPrefix);
  const timeoutMs = timeoutOption('timeoutMs', options.timeoutMs);
  const direct = new DirectReader(connection, `KV_${bucket}`, timeoutMs, missing, apiPrefix);
  const watchBucket = (keyFilter: string) => watchKv(connection, bucket, keyFilter, missing, apiPrefix);
  const subjectOf = (key: string) => `$KV.${bucket}.${key}`;
  // Only projectors write the bucket: anything else there is no value to guess at.
  const decoded = <T>(what: string, decode: () => T): T => {
    try {
      return decode();
    } catch (cause) {
      throw new StoreConfigError(`KV_${bucket}`, [`${what} is not what a projector writes`], {
        cause,
        remedy:
          'Only projectors write to a views bucket: delete the key, or rebuild the view under a new version.',
      });
    }
  };
  const entryOf = (key: string, version: number, msg: Pick<StoredMessage, 'data' | 'header'>) =>
    decoded(`the value of ${keys.entry(version, key)}`, () => decodeViewEntry<S>(key, version, msg));
  const activeOf = (data: Uint8Array) => decoded(keys.active, () => parseActive(data));

  const activeVersion = async () => {
    const msg = await direct.last(subjectOf(keys.active));
    return msg ? activeOf(msg.data) : undefined;
  };

  // The serving version: the active pointer once loaded, else the caller's version.
  const version$ = watchBucket(keys.active).pipe(
    scan(
      (version: number | undefined, m: KvWatchMessage) =>
        m.kind === 'entry' ? (activeOf(m.message.data) ?? version) : (version ?? view.version),
      undefined,
    ),
    filter((v): v is number => v !== undefined),
    distinctUntilChanged(),
  );

  return {
    activeVersion,
    async get(key) {
      const version = (await activeVersion()) ?? view.version;
      const msg = await direct.last(subjectOf(keys.entry(version, key)));
      return msg ? entryOf(key, version, msg) : null;
    },
    watch(key) {
      return version$.pipe(
        switchMap((version) =>
          watchBucket(keys.entry(version, key)).pipe(
            scan(
              (acc: { loaded: boolean; value: ViewEntry<S> | null }, m) =>
                m.kind === 'loaded'
                  ? { ...acc, loaded: true }
                  : { ...acc, value: entryOf(key, version, m.message) },
              { loaded: false, value: null },
            ),
            filter((acc) => acc.loaded),
            map((acc) => acc.value),
          ),
        ),
      );
    },
    watchAll() {
      return version$.pipe(
        switchMap((version) =>
          watchBucket(keys.entries(version)).pipe(
            // One mutable map while loading (no copy per key); each emission is a fresh snapshot.
            scan(
              (acc: { loaded: boolean; entries: Map<string, ViewEntry<S>> }, m) => {
                if (m.kind === 'loaded') return { ...acc, loaded: true };
                const key = keys.keyOf(m.key);
                const entry = entryOf(key, version, m.message);
                if (entry) acc.entries.set(key, entry);
                else acc.entries.delete(key);
                return acc;
              },
              { loaded: false, entries: new Map<string, ViewEntry<S>>() },
            ),
            filter((acc) => acc.loaded),
            // Copying the map costs its size: once per burst, after the messages in hand.
            auditTime(0, asapScheduler),
            map((acc) => new Map(acc.entries) as ReadonlyMap<string, ViewEntry<S>>),
          ),
        ),
      );
    },
  };
}

function parseActive(data: Uint8Array): number | undefined {
  if (data.length === 0) return undefined;
  const version = (JSON.parse(new TextDecoder().decode(data)) as { version?: unknown }).version;
  return typeof version === 'number' ? version : undefined;
}
