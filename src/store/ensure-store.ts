import type { NatsConnection } from '@nats-io/nats-core';
import {
  DiscardPolicy,
  jetstreamManager,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  StoreCompression,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { InvalidArgumentError, StoreConfigError, StoreNotFoundError } from '../errors.js';
import { isStreamNotFound } from './jetstream/api.js';
import { ApiErrorCode } from './jetstream/api.js';
import { MIN_IDLE_LIMIT_MS } from './jetstream/ordered-consumer.js';
import { untilDirectGetsAnswer } from './jetstream/direct.js';
import { assertPlainToken } from '../subjects/tokens.js';
import { assertSupportedServer } from '../connection/server-version.js';
import { adminStep } from '../connection/request-errors.js';
import { replicasOption, wholeOption } from '../options.js';

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
   * for a stream no untrusted user may create consumers on. Watches ask for at least 10 s
   * (5 heartbeats), so a cap under 10 000 is refused: the server would refuse every watch.
   */
  consumerIdleLimitMs?: number;
}

/** What {@link ensureStore} found or did. */
export interface EnsuredStore {
  /** The stream's name. */
  readonly stream: string;
  /**
   * True when the stream was missing and this call's create succeeded, false when it found
   * a compatible one. Clients racing with identical options may all see true: the server
   * accepts an identical create as a no-op.
   */
  readonly created: boolean;
  /** The stream's config as the server reports it. */
  readonly config: StreamConfig;
}

const nanos = (ms: number) => ms * 1_000_000;

/** Prefixes whose subjects NATS uses for replies (`$`-subjects are refused as tokens already). */
const reservedPrefix = /^_INBOX/i;

/** The stream config {@link ensureStore} creates, from validated options. */
function storeConfig(options: EnsureStoreOptions): StreamConfigWanted & { subjects: string[] } {
  const stream = assertPlainToken('stream', options.stream ?? 'EVENTS');
  const prefix = assertPlainToken('prefix', options.prefix ?? 'es');
  if (reservedPrefix.test(prefix))
    throw new InvalidArgumentError('prefix', prefix, 'it would capture NATS inbox replies; choose another');
  const storage = options.storage ?? 'file';
  if (storage !== 'file' && storage !== 'memory')
    throw new InvalidArgumentError('storage', storage, "use 'file' or 'memory'");
  // The server's minimum window is 100 ms.
  const duplicateWindowMs = wholeOption('duplicateWindowMs', options.duplicateWindowMs, 120_000, 100);
  const maxAgeMs = wholeOption('maxAgeMs', options.maxAgeMs, 0, 0);
  // The server refuses a window longer than the age limit: events would expire while
  // their ids still guard retries.
  if (maxAgeMs > 0 && maxAgeMs < duplicateWindowMs)
    throw new InvalidArgumentError(
      'maxAgeMs',
      maxAgeMs,
      `use 0 (forever) or at least duplicateWindowMs (${duplicateWindowMs})`,
    );
  const idleLimitMs = wholeOption('consumerIdleLimitMs', options.consumerIdleLimitMs, 300_000, 0);
  if (idleLimitMs > 0 && idleLimitMs < MIN_IDLE_LIMIT_MS)
    throw new InvalidArgumentError(
      'consumerIdleLimitMs',
      idleLimitMs,
      `use 0 (no cap) or at least ${MIN_IDLE_LIMIT_MS}: watch consumers ask to stay ${MIN_IDLE_LIMIT_MS / 1000} s unused, and the server would refuse every watch`,
    );
  const maxBytes = options.maxBytes === -1 ? -1 : wholeOption('maxBytes', options.maxBytes, 0, 0);
  return {
    name: stream,
    subjects: [`${prefix}.>`],
    storage: storage === 'memory' ? StorageType.Memory : StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(maxAgeMs),
    // The server stores 0 as -1 (unlimited); asking for what it stores keeps this call repeatable.
    max_bytes: maxBytes === 0 ? -1 : maxBytes,
    max_msgs: -1,
    max_msgs_per_subject: -1,
    num_replicas: replicasOption(options.replicas),
    duplicate_window: nanos(duplicateWindowMs),
    allow_atomic: true,
    allow_direct: true,
    deny_delete: true,
    deny_purge: true,
    compression: StoreCompression.S2,
    consumer_limits: {
      inactive_threshold: nanos(idleLimitMs),
    },
  };
}

/** The config a stream is created with, and checked against. */
type StreamConfigWanted = Partial<StreamConfig> & { name: string };

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
  const wanted = storeConfig(options);
  return adminStep(`ensureStore (stream ${wanted.name})`, async () => {
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    const ensured = await createOrVerify(jsm, wanted, (actual) => incompatibilities(actual, wanted));
    await untilDirectGetsAnswer(nc, ensured.config);
    return ensured;
  });
}

/**
 * Verifies the stream `wanted` names, or creates it when it is missing. Another client may
 * create it between the two steps: then what it created is verified like any stream.
 */
async function createOrVerify(
  jsm: JetStreamManager,
  wanted: StreamConfigWanted,
  problemsOf: (actual: StreamConfig) => string[],
): Promise<EnsuredStore> {
  const stream = wanted.name;
  const verified = (config: StreamConfig): EnsuredStore => {
    const problems = problemsOf(config);
    if (problems.length) throw new StoreConfigError(stream, problems);
    return { stream, created: false, config };
  };
  const existing = await infoOrNull(jsm, stream);
  if (existing) return verified(existing);
  try {
    return { stream, created: true, config: (await jsm.streams.add(wanted)).config };
  } catch (err) {
    if (!(err instanceof JetStreamApiError)) throw err;
    if (err.code === ApiErrorCode.StreamNameInUse) {
      const raced = await infoOrNull(jsm, stream);
      if (raced) return verified(raced);
    }
    if (err.code === ApiErrorCode.SubjectsOverlap) {
      const subjects = wanted.subjects ?? [];
      const owner = await jsm.streams.find(subjects[0] ?? '').then(
        (name) => `stream "${name}"`,
        () => 'another stream',
      );
      throw new StoreConfigError(stream, [`its subjects ${subjects.join(', ')} overlap those of ${owner}`], {
        remedy: `Use that stream's name and prefix, or another prefix.`,
        cause: err,
      });
    }
    throw err;
  }
}

async function infoOrNull(jsm: JetStreamManager, stream: string): Promise<StreamConfig | null> {
  try {
    return (await jsm.streams.info(stream)).config;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === ApiErrorCode.StreamNotFound) return null;
    throw err;
  }
}

/** Every way an existing stream would weaken durability, ordering, idempotency or reads. */
export function incompatibilities(
  actual: StreamConfig,
  wanted: StreamConfigWanted & { subjects: string[] },
): string[] {
  const problems: string[] = [];
  for (const subject of wanted.subjects) {
    if (!actual.subjects?.includes(subject))
      problems.push(`subjects ${JSON.stringify(actual.subjects)} lack ${subject}`);
  }
  problems.push(
    ...keepingProblems(actual, wanted, ['allow_atomic', 'allow_direct', 'deny_delete', 'deny_purge']),
  );
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
  else if (wantedIdle === 0 && idle > 0)
    problems.push(
      `consumer_limits.inactive_threshold is ${idle / 1e6} ms, though consumerIdleLimitMs: 0 asks for none: a processor's durable consumer on it would be removed when idle`,
    );
  else if (idle > 0 && idle < MIN_IDLE_LIMIT_MS * 1e6)
    problems.push(
      `consumer_limits.inactive_threshold is ${idle / 1e6} ms, under the ${MIN_IDLE_LIMIT_MS} ms a watch's consumer asks to stay unused, so the server would refuse every watch and long read`,
    );
  return problems;
}

/**
 * Every way a stream would not keep each event as stored, for good: its storage,
 * retention or limits differ from `wanted`, one of `flags` is off, or it rewrites.
 */
function keepingProblems(
  actual: StreamConfig,
  wanted: StreamConfigWanted,
  flags: ReadonlyArray<'allow_atomic' | 'allow_direct' | 'deny_delete' | 'deny_purge'>,
): string[] {
  const problems: string[] = [];
  for (const key of [
    'storage',
    'retention',
    'max_age',
    'max_bytes',
    'max_msgs',
    'max_msgs_per_subject',
  ] as const) {
    if (actual[key] !== wanted[key])
      problems.push(`${key} is ${String(actual[key])}, expected ${String(wanted[key])}`);
  }
  for (const flag of flags) if (!actual[flag]) problems.push(`${flag} is off`);
  problems.push(...rewrites(actual));
  return problems;
}

/**
 * Settings that let events vanish, change or arrive past optimistic concurrency, or that
 * make appends fail: none belongs on an event store (or on its processors' mirror).
 */
function rewrites(actual: StreamConfig): string[] {
  const extra = actual as StreamConfig & { persist_mode?: string };
  const problems: string[] = [];
  const refuse = (on: unknown, problem: string) => on && problems.push(problem);
  refuse(actual.sealed, 'it is sealed (appends fail)');
  refuse(actual.sources?.length, 'it sources other streams (their messages would bypass expectations)');
  refuse(actual.subject_transform, 'subject_transform rewrites event subjects');
  refuse(actual.republish, 'republish copies every event to other subjects, outside tenant permissions');
  refuse(actual.allow_msg_ttl, 'allow_msg_ttl lets a Nats-TTL header expire an event');
  refuse(actual.subject_delete_marker_ttl, 'subject_delete_marker_ttl writes markers among events');
  refuse(actual.allow_msg_counter, 'allow_msg_counter makes it a counter (events are refused)');
  refuse(
    actual.allow_msg_schedules,
    'allow_msg_schedules lets a message publish others later, without expectations',
  );
  refuse(actual.no_ack, 'no_ack leaves appends unacknowledged');
  refuse(
    actual.max_msg_size > 0,
    `max_msg_size is ${actual.max_msg_size}: leave it unset, the server's max_payload limits events`,
  );
  refuse(extra.persist_mode === 'async', 'persist_mode is async (no atomic batches)');
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
 * or pause a processor's durable there, as they could on the store's stream. A store
 * that does not exist is refused with StoreNotFoundError: a mirror of it would be created
 * all the same, and stay empty.
 */
export async function ensureProcessorStream(
  nc: NatsConnection,
  options: EnsureProcessorStreamOptions = {},
): Promise<EnsuredStore> {
  const origin = assertPlainToken('stream', options.stream ?? 'EVENTS');
  const name = assertPlainToken('stream', options.name ?? `${origin}_WORK`);
  const wanted: StreamConfigWanted = {
    name,
    mirror: { name: origin },
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    max_age: 0,
    max_bytes: -1,
    max_msgs: -1,
    max_msgs_per_subject: -1,
    num_replicas: replicasOption(options.replicas),
    deny_delete: true,
    deny_purge: true,
    compression: StoreCompression.S2,
  };
  return adminStep(`ensureProcessorStream (stream ${name})`, async () => {
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    // A mirror of a stream that does not exist is created all the same, and stays empty.
    await jsm.streams.info(origin).catch((err: unknown) => {
      throw isStreamNotFound(err) ? new StoreNotFoundError(origin, { cause: err }) : err;
    });
    return createOrVerify(jsm, wanted, (actual) => mirrorIncompatibilities(actual, wanted, origin));
  });
}

/** Every way an existing stream falls short of a whole, lasting copy of `origin`. */
function mirrorIncompatibilities(actual: StreamConfig, wanted: StreamConfigWanted, origin: string): string[] {
  const mirror = actual.mirror;
  if (mirror?.name !== origin) return [`it is not a mirror of ${origin}`];
  const problems: string[] = [];
  const partial =
    mirror.filter_subject ||
    mirror.subject_transforms?.length ||
    mirror.opt_start_seq ||
    mirror.opt_start_time ||
    mirror.external;
  if (partial)
    problems.push(
      'its mirror copies part of the origin (a filter, transform, start point or external source)',
    );
  problems.push(...keepingProblems(actual, wanted, ['deny_delete', 'deny_purge']));
  return problems;
}
