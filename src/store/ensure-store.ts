import type { NatsConnection } from '@nats-io/nats-core';
import {
  DiscardPolicy,
  jetstreamManager,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  StoreCompression,
  type StreamConfig,
} from '@nats-io/jetstream';
import { StoreConfigError } from '../errors.js';
import { ApiErrorCode } from './jetstream/api.js';
import { assertPlainToken } from '../subjects/tokens.js';
import { assertSupportedServer } from '../connection/server-version.js';
import { adminStep } from '../connection/request-errors.js';

/** Options for {@link ensureStore}. Defaults favour keeping every event forever. */
export interface EnsureStoreOptions {
  /** Default `EVENTS`. */
  stream?: string;
  /** Subject prefix; the stream captures `<prefix>.>`. Default `es`. */
  prefix?: string;
  /** Default 1. Use 3 in a cluster. */
  replicas?: number;
  /** Default `'file'`. `'memory'` is for tests only. */
  storage?: 'file' | 'memory';
  /** How long `Nats-Msg-Id` deduplicates retries, in ms. Default 2 minutes. */
  duplicateWindowMs?: number;
  /** Maximum event age in ms; 0 (default) keeps events forever. */
  maxAgeMs?: number;
  /** Maximum stream size in bytes; -1 (default) is unlimited. */
  maxBytes?: number;
  /**
   * Longest a consumer of the stream may go unused before the server removes it, in ms.
   * Default 5 minutes, the longest nats.js's own ordered consumers ask for (a consumer
   * asking longer is refused). Tenant users create consumers (watches) but may not delete
   * them, so none may be made to live forever. Durable processors run on the mirror
   * ({@link ensureProcessorStream}), which has no such limit. 0 turns the cap off: only
   * for a stream no untrusted user may create consumers on.
   */
  consumerIdleLimitMs?: number;
}

/** What {@link ensureStore} found or did. */
export interface EnsuredStore {
  /** The stream's name. */
  readonly stream: string;
  /** True when this call created the stream, false when it found a compatible one. */
  readonly created: boolean;
  /** The stream's config as the server reports it. */
  readonly config: StreamConfig;
}

const nanos = (ms: number) => ms * 1_000_000;

/**
 * Creates the store's stream when it is missing, or verifies that an existing one keeps
 * every guarantee jetsource relies on. It never updates or replaces a stream: an
 * incompatible one raises {@link StoreConfigError} listing what differs.
 * This is an admin step: tenant users in browsers are not allowed to run it.
 */
export async function ensureStore(
  nc: NatsConnection,
  options: EnsureStoreOptions = {},
): Promise<EnsuredStore> {
  assertSupportedServer(nc);
  const stream = assertPlainToken('stream', options.stream ?? 'EVENTS');
  const prefix = assertPlainToken('prefix', options.prefix ?? 'es');
  const wanted: Partial<StreamConfig> & { name: string; subjects: string[] } = {
    name: stream,
    subjects: [`${prefix}.>`],
    storage: options.storage === 'memory' ? StorageType.Memory : StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(options.maxAgeMs ?? 0),
    max_bytes: options.maxBytes ?? -1,
    max_msgs: -1,
    max_msgs_per_subject: -1,
    num_replicas: options.replicas ?? 1,
    duplicate_window: nanos(options.duplicateWindowMs ?? 120_000),
    allow_atomic: true,
    allow_direct: true,
    deny_delete: true,
    deny_purge: true,
    compression: StoreCompression.S2,
    consumer_limits: { inactive_threshold: nanos(options.consumerIdleLimitMs ?? 300_000) },
  };
  return adminStep(`ensureStore (stream ${stream})`, async () => {
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    try {
      const info = await jsm.streams.info(stream);
      const problems = incompatibilities(info.config, wanted);
      if (problems.length) throw new StoreConfigError(stream, problems);
      return { stream, created: false, config: info.config };
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === ApiErrorCode.StreamNotFound)) throw err;
    }
    const info = await jsm.streams.add(wanted);
    return { stream, created: true, config: info.config };
  });
}

/** Every way an existing stream would weaken durability, ordering, idempotency or reads. */
export function incompatibilities(
  actual: StreamConfig,
  wanted: Partial<StreamConfig> & { subjects: string[] },
): string[] {
  const problems: string[] = [];
  const differs = <K extends keyof StreamConfig>(key: K, label: string) => {
    if (actual[key] !== wanted[key])
      problems.push(`${label} is ${String(actual[key])}, expected ${String(wanted[key])}`);
  };
  for (const subject of wanted.subjects) {
    if (!actual.subjects?.includes(subject))
      problems.push(`subjects ${JSON.stringify(actual.subjects)} lack ${subject}`);
  }
  differs('storage', 'storage');
  differs('retention', 'retention');
  differs('max_age', 'max_age');
  differs('max_bytes', 'max_bytes');
  differs('max_msgs', 'max_msgs');
  differs('max_msgs_per_subject', 'max_msgs_per_subject');
  for (const flag of ['allow_atomic', 'allow_direct', 'deny_delete', 'deny_purge'] as const) {
    if (!actual[flag]) problems.push(`${flag} is off`);
  }
  if ((actual.num_replicas ?? 1) < (wanted.num_replicas ?? 1))
    problems.push(`num_replicas is ${actual.num_replicas}`);
  if ((actual.duplicate_window ?? 0) < (wanted.duplicate_window ?? 0))
    problems.push('duplicate_window is shorter');
  const idle = actual.consumer_limits?.inactive_threshold ?? 0;
  const wantedIdle = wanted.consumer_limits?.inactive_threshold;
  if (wantedIdle && (idle === 0 || idle > wantedIdle))
    problems.push(
      `consumer_limits.inactive_threshold is ${idle === 0 ? 'unset' : `${idle / 1e6} ms`}, so consumers users cannot delete may live on`,
    );
  if ((actual as { persist_mode?: string }).persist_mode === 'async')
    problems.push('persist_mode is async (no atomic batches)');
  return problems;
}

/** Options for {@link ensureProcessorStream}. */
export interface EnsureProcessorStreamOptions {
  /** The store's stream to mirror. Default `EVENTS`. */
  stream?: string;
  /** The mirror's name. Default `<stream>_WORK`. */
  name?: string;
  /** Default 1. */
  replicas?: number;
}

/**
 * Creates (or verifies) a mirror of the store's stream for durable processors. A mirror
 * keeps the origin's sequences and subjects, so processors read it exactly as the store,
 * but tenant readers and writers have no consumer rights on it: they cannot reconfigure
 * or pause a processor's durable there, as they could on the store's stream.
 */
export async function ensureProcessorStream(
  nc: NatsConnection,
  options: EnsureProcessorStreamOptions = {},
): Promise<EnsuredStore> {
  const origin = assertPlainToken('stream', options.stream ?? 'EVENTS');
  const name = assertPlainToken('stream', options.name ?? `${origin}_WORK`);
  return adminStep(`ensureProcessorStream (stream ${name})`, async () => {
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    try {
      const info = await jsm.streams.info(name);
      if (info.config.mirror?.name !== origin) {
        throw new StoreConfigError(name, [`it is not a mirror of ${origin}`]);
      }
      return { stream: name, created: false, config: info.config };
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === ApiErrorCode.StreamNotFound)) throw err;
    }
    const info = await jsm.streams.add({
      name,
      mirror: { name: origin },
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      num_replicas: options.replicas ?? 1,
      deny_delete: true,
      deny_purge: true,
      compression: StoreCompression.S2,
    });
    return { stream: name, created: true, config: info.config };
  });
}
