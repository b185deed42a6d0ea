import { errors, type Msg } from '@nats-io/nats-core';
import { ServerError } from '../../errors.js';
import type { StoredMessage } from '../../codec/event-format.js';
import { HeaderBlock } from './header-block.js';
import { deliveredMessageTime } from './delivery.js';

/** JetStream API error codes jetsource acts on (nats-server `server/errors.json`). */
export const ApiErrorCode = {
  WrongLastSequence: 10071,
  /** Ambiguous expectation, or a subject already written earlier in the same batch. */
  ExpectationRace: 10164,
  /** The last sequence per subject cannot be checked yet (a write to it in flight). Transient. */
  ExpectationNotReady: 10163,
  /**
   * An event id of the append is being stored by another attempt that is still in flight (a
   * replicated stream's proposal): a retry learns how it ended. Transient.
   */
  DuplicateInProcess: 10158,
  StreamNotFound: 10059,
  /** `Nats-Expected-Stream` names another stream than the one that captured the subject. */
  StreamMismatch: 10060,
  ConsumerNotFound: 10014,
  /** The account holds as many consumers as its `max_consumers` allows. */
  MaximumConsumers: 10026,
  /** The consumer asks to stay unused longer than the stream's `consumer_limits.inactive_threshold`. */
  IdleOverStreamLimit: 10153,
  /** A stream of that name exists with another config (say, created a moment ago by another client). */
  StreamNameInUse: 10058,
  SubjectsOverlap: 10065,
  AtomicDisabled: 10174,
  /** The batch lost messages on the way (a reconnect or restart mid-batch): nothing was stored. */
  BatchIncomplete: 10176,
  TooManyBatches: 10210,
  DuplicateIdInBatch: 10201,
  /** The batch holds more messages than the server's limit (the description ends with it). */
  BatchTooLarge: 10199,
} as const;

/** A JetStream API reply: either a result or `{ error }`. */
export interface ApiReply {
  error?: { code: number; err_code: number; description: string };
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  batch?: string;
  count?: number;
}

const decoder = new TextDecoder();

export function parseReply(msg: Msg): ApiReply {
  if (msg.data.length === 0) return {};
  return JSON.parse(decoder.decode(msg.data)) as ApiReply;
}

/**
 * A write refused because an expected last sequence moved (10071, or 10164 in a batch):
 * nothing was written. Ours (ServerError) or nats.js's (a KV update's JetStreamApiError).
 */
export function isWriteConflict(err: unknown): boolean {
  return isWriteConflictCode(
    err instanceof ServerError ? err.errCode : (err as { code?: unknown } | null)?.code,
  );
}

/** Whether a JetStream error code says an expected last sequence moved (10071, 10164). */
export const isWriteConflictCode = (code: unknown): boolean =>
  code === ApiErrorCode.WrongLastSequence || code === ApiErrorCode.ExpectationRace;

/** nats.js's refusal of a JetStream API request for a stream that does not exist. */
export function isStreamNotFound(err: unknown): boolean {
  const refused = err as { code?: unknown; message?: unknown } | undefined;
  return refused?.code === ApiErrorCode.StreamNotFound || refused?.message === 'stream not found';
}

/** Errors from a request that are safe to retry unchanged. */
export function isTransient(err: unknown): boolean {
  return (
    err instanceof errors.TimeoutError ||
    (err instanceof ServerError &&
      (err.errCode === ApiErrorCode.ExpectationNotReady ||
        err.errCode === ApiErrorCode.DuplicateInProcess ||
        err.errCode === ApiErrorCode.TooManyBatches ||
        err.errCode === ApiErrorCode.BatchIncomplete))
  );
}

/** Adapts a direct-get reply (stored headers, then the server's `Nats-Sequence`, `Nats-Subject` …) to a stored message. */
export function directMessage(msg: Msg): NatsStoredMessage {
  const headers = headerBlockOf(msg);
  const stored = new NatsStoredMessage(
    Number(headers.last('Nats-Sequence')),
    headers.last('Nats-Subject') ?? '',
    msg.data,
    headers,
  );
  stored.pending = Number(headers.last('Nats-Num-Pending') || 0);
  return stored;
}

/**
 * A stored message over its header block. A class rather than an object of closures:
 * one is made per event on every read and watch, so it must be cheap.
 */
export class NatsStoredMessage implements StoredMessage {
  pending = 0;
  constructor(
    readonly sequence: number,
    readonly subject: string,
    readonly data: Uint8Array,
    private readonly headers: HeaderBlock,
    /** A pushed message's `$JS.ACK…` reply, which carries its storage time. */
    private readonly reply?: string,
  ) {}
  header(name: string): string | undefined {
    return this.headers.get(name);
  }
  headerNames(prefix?: string): Iterable<string> {
    return this.headers.names(prefix);
  }
  /** When the server stored it (ms since 1970, server clock): read only when needed. */
  storedAt(): number | undefined {
    const stamp = this.headers.last('Nats-Time-Stamp');
    return stamp !== undefined ? Date.parse(stamp) : deliveredMessageTime(this.reply);
  }
}

const noHeaders = new HeaderBlock('');

/**
 * A message's header block. nats.js's general-purpose header decoder (validation,
 * canonical keys, multi-values) was the largest cost of a replay, so when the raw block
 * is at hand (nats.js `Msg` internals) it is read in place; otherwise the public
 * `msg.headers` is serialized back to the same text.
 */
export function headerBlockOf(msg: Msg): HeaderBlock {
  const raw = msg as unknown as { _msg?: { hdr?: number }; _rdata?: Uint8Array };
  const length = raw._msg?.hdr;
  if (raw._rdata instanceof Uint8Array && typeof length === 'number') {
    return length > 0 ? new HeaderBlock(decoder.decode(raw._rdata.subarray(0, length))) : noHeaders;
  }
  return msg.headers ? new HeaderBlock(msg.headers.toString()) : noHeaders;
}
