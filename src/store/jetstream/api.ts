import { errors, type Msg } from '@nats-io/nats-core';
import { PermissionDeniedError, ServerError, StoreNotFoundError, UnavailableError } from '../../errors.js';
import type { StoredMessage } from '../../codec/event-format.js';

/** JetStream API error codes jetsource acts on (nats-server `server/errors.json`). */
export const ApiErrorCode = {
  WrongLastSequence: 10071,
  /** Ambiguous expectation, or a subject already written earlier in the same batch. */
  ExpectationRace: 10164,
  /** Stream temporarily unavailable (e.g. leader election). Transient. */
  StreamUnavailable: 10163,
  StreamNotFound: 10059,
  BatchTooLarge: 10199,
  AtomicDisabled: 10174,
  BatchIncomplete: 10176,
  TooManyBatches: 10210,
  DuplicateIdInBatch: 10201,
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

/** Errors from a request that are safe to retry unchanged. */
export function isTransient(err: unknown): boolean {
  return (
    err instanceof errors.TimeoutError ||
    (err instanceof ServerError &&
      (err.errCode === ApiErrorCode.StreamUnavailable || err.errCode === ApiErrorCode.TooManyBatches))
  );
}

/**
 * Maps what nats.js throws for a request into jetsource's errors, so callers see a
 * permission problem, a missing store or an outage, never a bare protocol error.
 */
export function fromRequestError(err: unknown, stream: string, subject: string): unknown {
  const cause = err instanceof errors.RequestError && err.cause ? err.cause : err;
  if (cause instanceof errors.PermissionViolationError) {
    return new PermissionDeniedError(
      cause.subject || subject,
      cause.operation === 'subscription' ? 'subscribe' : 'publish',
      {
        cause,
      },
    );
  }
  if (cause instanceof errors.NoRespondersError) return new StoreNotFoundError(stream, { cause });
  if (cause instanceof errors.TimeoutError)
    return new UnavailableError(`no answer from the server on ${subject}`, { cause });
  if (cause instanceof errors.ClosedConnectionError || cause instanceof errors.DrainingConnectionError) {
    return new UnavailableError('the connection is closed', { cause });
  }
  return err;
}

/** Adapts a direct-get reply (original headers plus `Nats-Sequence` / `Nats-Subject`) to a stored message. */
export function directMessage(msg: Msg): NatsStoredMessage {
  const headers = headersOf(msg);
  return new NatsStoredMessage(
    Number(headers.get('Nats-Sequence')),
    headers.get('Nats-Subject') ?? '',
    msg.data,
    headers,
  );
}

/**
 * A stored message over nats.js headers. A class rather than an object of closures:
 * one is made per event on every read and watch, so it must be cheap.
 */
export class NatsStoredMessage implements StoredMessage {
  pending = 0;
  constructor(
    readonly sequence: number,
    readonly subject: string,
    readonly data: Uint8Array,
    private readonly headers: ReadonlyMap<string, string>,
  ) {}
  header(name: string): string | undefined {
    return this.headers.get(name);
  }
  headerNames(): Iterable<string> {
    return this.headers.keys();
  }
}

const headerDecoder = new TextDecoder();
const noHeaders: ReadonlyMap<string, string> = new Map();

/**
 * A message's headers as a plain map (first value of each). Event headers are read on
 * every replayed event, and nats.js's general-purpose decoder (validation, canonical keys,
 * multi-values) was the largest cost of a replay; when the raw header block is at hand it
 * is parsed directly, otherwise through the public `msg.headers`.
 */
export function headersOf(msg: Msg): ReadonlyMap<string, string> {
  const raw = msg as unknown as { _msg?: { hdr?: number }; _rdata?: Uint8Array };
  const length = raw._msg?.hdr;
  if (raw._rdata instanceof Uint8Array && typeof length === 'number') {
    return length > 0 ? parseHeaderBlock(headerDecoder.decode(raw._rdata.subarray(0, length))) : noHeaders;
  }
  const headers = msg.headers;
  if (!headers) return noHeaders;
  return new Map([...headers.keys()].map((k) => [k, headers.get(k)]));
}

/** Parses `NATS/1.0[ status]\r\nKey: Value\r\n…` into a map of first values. Pure. */
export function parseHeaderBlock(text: string): Map<string, string> {
  const headers = new Map<string, string>();
  let start = text.indexOf('\r\n') + 2;
  if (start < 2) return headers;
  while (start < text.length) {
    let end = text.indexOf('\r\n', start);
    if (end === -1) end = text.length;
    const colon = text.indexOf(':', start);
    if (colon > start && colon < end) {
      const key = text.slice(start, colon);
      if (!headers.has(key)) headers.set(key, text.slice(colon + 1, end).trim());
    }
    start = end + 2;
  }
  return headers;
}
