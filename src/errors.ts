// Types only: the processing errors live in jetsource/server, and the client entry must not carry them.
import type { DeadLetterNotFoundError, FoldError, ProcessorConfigError } from './processing/errors.js';
import type { EntityRef } from './subjects/subjects.js';

/** Every error jetsource raises has one of these codes (see {@link JetsourceErrorByCode}). */
export type JetsourceErrorCode = keyof JetsourceErrorByCode;

const brand = Symbol.for('jetsource.error');

/** A short, never-throwing rendering of a bad value for messages. */
function preview(value: unknown): string {
  let text: string;
  try {
    // Numbers as written: JSON would show NaN and Infinity as null.
    text =
      typeof value === 'number'
        ? String(value)
        : typeof value === 'string'
          ? JSON.stringify(value)
          : (JSON.stringify(value) ?? String(value));
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Base class of every jetsource error: a stable `code`, a `name`, and the original `cause`. */
export class JetsourceError extends Error {
  readonly code: JetsourceErrorCode;
  readonly [brand] = true;
  constructor(code: JetsourceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'JetsourceError';
  }
}

/**
 * True for any jetsource error, even one from another copy of the library (another realm
 * or bundle), where `instanceof` would fail. With a `code`, true only for that error, and
 * narrowed to its class (`err.expected` after `'CONCURRENCY'`).
 */
export function isJetsourceError<C extends JetsourceErrorCode>(
  err: unknown,
  code: C,
): err is JetsourceErrorByCode[C];
export function isJetsourceError(err: unknown, code?: JetsourceErrorCode): err is JetsourceError;
export function isJetsourceError(err: unknown, code?: JetsourceErrorCode): err is JetsourceError {
  return (
    typeof err === 'object' &&
    err !== null &&
    (err as Record<symbol, unknown>)[brand] === true &&
    (code === undefined || (err as JetsourceError).code === code)
  );
}

/**
 * Adds to the stack of jetsource's error where the user's code met it: `origin` (an Error
 * made there), under `--- <where> ---`. V8 records no caller through async generators or
 * a source's callbacks, so an error raised deep in a read or a watch would otherwise name
 * only jetsource's frames. Once per error: one raised again already says where.
 */
export function withOrigin(error: unknown, where: string, origin: Error): unknown {
  if (!isJetsourceError(error) || typeof error.stack !== 'string' || error.stack.includes(ORIGIN_MARK))
    return error;
  const frames = origin.stack?.split('\n').slice(1).join('\n');
  if (frames) error.stack += `${ORIGIN_MARK}${where} ---\n${frames}`;
  return error;
}

const ORIGIN_MARK = '\n    --- ';

/** The entity changed since it was read: reload it, decide again, and retry the append. */
export class ConcurrencyError extends JetsourceError {
  /** The entity as `type/id`, for messages (a `/` inside a type or id makes it ambiguous: see `entityRef`). */
  readonly entity: string;
  /** The entity that moved; in an `appendAll`, the write whose expectation failed. */
  readonly entityRef: EntityRef | undefined;

  constructor(
    /** The entity that moved, or its `type/id`. */
    entity: EntityRef | string,
    /** What the append expected: a version, or `'new'` for no events yet. */
    readonly expected: number | 'new',
    /** The entity's version the server found; undefined when the server did not say and looking it up failed. */
    readonly actual: number | undefined,
    options?: { cause?: unknown },
  ) {
    const described = typeof entity === 'string' ? entity : `${entity.type}/${entity.id}`;
    // Versions only grow: one ahead of the entity's was never read from it.
    const why =
      typeof expected === 'number' && actual !== undefined && expected > actual
        ? 'the expected version is ahead of the entity, so it did not come from loading it'
        : 'another writer appended first';
    super(
      'CONCURRENCY',
      `${described} is at ${actual === undefined ? 'an unknown version' : `version ${actual}`}, not ${expected}: ` +
        `${why}. Load it again, re-decide, and retry.`,
      options,
    );
    this.name = 'ConcurrencyError';
    this.entity = described;
    this.entityRef = typeof entity === 'string' ? undefined : { type: entity.type, id: entity.id };
  }
}

/** A tenant, entity type, id or event type cannot be used as a subject token. */
export class InvalidTokenError extends JetsourceError {
  constructor(
    readonly part: string,
    readonly value: unknown,
    reason: string,
  ) {
    super('INVALID_TOKEN', `invalid ${part} ${preview(value)}: ${reason}`);
    this.name = 'InvalidTokenError';
  }
}

/**
 * An argument jetsource cannot use: an `expect`, a read bound, a target mixing an entity
 * with a filter, metadata a header cannot carry… Raised before anything is sent.
 */
export class InvalidArgumentError extends JetsourceError {
  constructor(
    readonly argument: string,
    readonly value: unknown,
    reason: string,
    options?: { cause?: unknown },
  ) {
    // A missing argument has no value worth quoting (and connect options may hold secrets).
    const shown = value === undefined ? '' : ` ${preview(value)}`;
    super('INVALID_ARGUMENT', `invalid ${argument}${shown}: ${reason}`, options);
    this.name = 'InvalidArgumentError';
  }
}

/** An encoded event exceeds the server's `max_payload`. Nothing was written. */
export class PayloadTooLargeError extends JetsourceError {
  constructor(
    readonly subject: string,
    readonly size: number,
    readonly limit: number,
  ) {
    super(
      'PAYLOAD_TOO_LARGE',
      `event on ${subject} is ${size} bytes, over the server's max_payload of ${limit}. ` +
        'Store large blobs elsewhere and append a reference, or raise max_payload.',
    );
    this.name = 'PayloadTooLargeError';
  }
}

/** An atomic append holds more events than the server accepts in one batch. Nothing was written. */
export class BatchTooLargeError extends JetsourceError {
  constructor(
    readonly count: number,
    readonly limit: number,
    /** `cause`: the server's refusal, when the server (not the store's `maxBatch`) set the limit. */
    options?: { cause?: unknown },
  ) {
    super(
      'BATCH_TOO_LARGE',
      `an atomic append of ${count} events exceeds the batch limit of ${limit}. ` +
        'Split it, or raise jetstream.limits.batch.max_msgs on the server and `maxBatch` on the store.',
      options,
    );
    this.name = 'BatchTooLargeError';
  }
}

/** Event data failed its Standard Schema, or its type is not in the store's schema map. */
export class ValidationError extends JetsourceError {
  constructor(
    readonly eventType: string,
    readonly issues: ReadonlyArray<{ message: string; path?: ReadonlyArray<unknown> }>,
    /**
     * `cause`: what the validator or codec threw, when it threw rather than listing issues;
     * `event`: which event of an append it is (`#2 of 3, for order/1`).
     */
    options?: { cause?: unknown; event?: string },
  ) {
    super(
      'VALIDATION',
      `${eventType}${options?.event ? ` (event ${options.event})` : ''} is invalid: ${issues.map((i) => (i.path?.length ? `${i.path.map(pathKey).join('.')}: ` : '') + i.message).join('; ')}. ` +
        'Nothing was written.',
      options,
    );
    this.name = 'ValidationError';
  }
}

/** A Standard Schema path segment: a property key, or `{ key }`. */
const pathKey = (segment: unknown): string =>
  String(typeof segment === 'object' && segment !== null ? (segment as { key: unknown }).key : segment);

/**
 * Why a stored event could not be decoded: `json` when the default codec could not parse
 * the payload, `codec` when a codec of your own could not decode it.
 */
export type MalformedReason = 'subject' | 'json' | 'codec' | 'unknown-type' | 'validation' | 'metadata';

/** A stored event could not be decoded. It carries the raw bytes so nothing is lost. */
export class MalformedEventError extends JetsourceError {
  constructor(
    readonly sequence: number,
    readonly subject: string,
    readonly raw: Uint8Array,
    readonly reason: MalformedReason,
    /** What is wrong, without the advice: for showing beside the event. */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      'MALFORMED_EVENT',
      `event #${sequence} on ${subject} is malformed (${reason}): ${detail}. ` +
        "Fix the schema or codec, or read with { onMalformed: 'report' } to receive it beside the good events.",
      options,
    );
    this.name = 'MalformedEventError';
  }
}

/** The connection's user may not use this subject. */
export class PermissionDeniedError extends JetsourceError {
  constructor(
    readonly subject: string,
    readonly operation: 'publish' | 'subscribe' | 'request',
    options?: { cause?: unknown; remedy?: string },
  ) {
    super(
      'PERMISSION_DENIED',
      `permission denied to ${operation} ${subject}. ${options?.remedy ?? "Check that the user's role allows it (readers cannot append; admin steps need the service role) and the tenant."}`,
      options,
    );
    this.name = 'PermissionDeniedError';
  }
}

/** The server refused the connection's credentials. */
export class AuthenticationError extends JetsourceError {
  constructor(
    /** The user name the connection tried, when it used one (never the password or token). */
    readonly user: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      'AUTHENTICATION',
      `the server refused the credentials${user === undefined ? '' : ` of user "${user}"`}. ` +
        'Check the user name and password, token or credentials file.',
      options,
    );
    this.name = 'AuthenticationError';
  }
}

/** The credentials belong to a different tenant than the one the store was opened for. */
export class TenantMismatchError extends JetsourceError {
  constructor(
    readonly tenant: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      'TENANT_MISMATCH',
      `these credentials cannot act as tenant "${tenant}": ${detail}. ` +
        "Connect with that tenant's credentials, or open the store for the credentials' own tenant.",
      options,
    );
    this.name = 'TenantMismatchError';
  }
}

/** No stream answers for the store. An admin must create it with `ensureStore()`. */
export class StoreNotFoundError extends JetsourceError {
  constructor(
    readonly stream: string,
    options?: { cause?: unknown; remedy?: string },
  ) {
    super(
      'STORE_NOT_FOUND',
      `no JetStream stream "${stream}" answers; ${options?.remedy ?? 'create it once with ensureStore()'}.`,
      { cause: options?.cause },
    );
    this.name = 'StoreNotFoundError';
  }
}

/**
 * A stream or KV bucket jetsource cannot use as it is: an existing stream whose config
 * could lose events, a views or dead-letter bucket whose entries expire or that lacks
 * atomic batches or direct get, or a view value no projector wrote. `stream` names it
 * (`KV_<bucket>` for a bucket).
 */
export class StoreConfigError extends JetsourceError {
  constructor(
    readonly stream: string,
    readonly problems: string[],
    options?: { cause?: unknown; remedy?: string },
  ) {
    super(
      'STORE_CONFIG',
      `stream "${stream}" is not a compatible jetsource store: ${problems.join('; ')}. ` +
        (options?.remedy ?? 'jetsource never replaces a stream; fix it by hand or use another stream name.'),
      options,
    );
    this.name = 'StoreConfigError';
  }
}

/** The server did not answer in time, is temporarily unavailable, or the connection is closed. */
export class UnavailableError extends JetsourceError {
  /**
   * For an append that may have been stored: its events' ids, in order. Appending the same
   * events with these ids stores them once, however often it is retried.
   */
  readonly eventIds?: readonly string[];
  constructor(message: string, options?: { cause?: unknown; remedy?: string; eventIds?: readonly string[] }) {
    super('UNAVAILABLE', `${message}. ${options?.remedy ?? 'Retry it.'}`, options);
    this.name = 'UnavailableError';
    if (options?.eventIds) this.eventIds = options.eventIds;
  }
}

/** The nats-server release is too old to keep jetsource's guarantees (atomic appends above all). */
export class UnsupportedServerError extends JetsourceError {
  constructor(
    readonly version: string,
    detail = 'lacks atomic batches that keep expectations',
  ) {
    super(
      'UNSUPPORTED_SERVER',
      `nats-server ${version} ${detail}: jetsource needs 2.14.4 or newer (2.12.14 on the 2.12 line). Upgrade the server.`,
    );
    this.name = 'UnsupportedServerError';
  }
}

/** The server refused an operation for a reason not covered by a more specific error. */
export class ServerError extends JetsourceError {
  constructor(
    /** The JetStream API error code (`err_code`), as nats-server documents them. */
    readonly errCode: number,
    /** The server's own words (an admin step's prefixed with the step, e.g. `ensureViews (bucket views): …`). */
    readonly description: string,
    /** `remedy`: what to change, when the caller knows (default: report it). */
    options?: { cause?: unknown; remedy?: string },
  ) {
    super(
      'SERVER',
      `nats-server refused (${errCode}): ${description}. ${options?.remedy ?? 'Report it if jetsource should map it.'}`,
      options,
    );
    this.name = 'ServerError';
  }
}

/** The error class behind each code, for {@link isJetsourceError}. */
export interface JetsourceErrorByCode {
  CONCURRENCY: ConcurrencyError;
  INVALID_TOKEN: InvalidTokenError;
  INVALID_ARGUMENT: InvalidArgumentError;
  PAYLOAD_TOO_LARGE: PayloadTooLargeError;
  BATCH_TOO_LARGE: BatchTooLargeError;
  VALIDATION: ValidationError;
  MALFORMED_EVENT: MalformedEventError;
  PERMISSION_DENIED: PermissionDeniedError;
  AUTHENTICATION: AuthenticationError;
  TENANT_MISMATCH: TenantMismatchError;
  STORE_NOT_FOUND: StoreNotFoundError;
  STORE_CONFIG: StoreConfigError;
  UNAVAILABLE: UnavailableError;
  UNSUPPORTED_SERVER: UnsupportedServerError;
  SERVER: ServerError;
  /** From `jetsource/server`. */
  PROCESSOR_CONFIG: ProcessorConfigError;
  /** From `jetsource/server`. */
  DEAD_LETTER_NOT_FOUND: DeadLetterNotFoundError;
  /** From `jetsource/server`. */
  FOLD_FAILED: FoldError;
}
