import { InvalidArgumentError } from '../errors.js';
import { isWellFormed } from '../subjects/tokens.js';

/** Metadata that travels with an event, in message headers. */
export interface EventMetadata {
  /** Groups every event caused by one request or workflow. */
  correlationId?: string;
  /** The id of the event or command that caused this one. */
  causationId?: string;
  /** W3C trace context, so traces continue across the store. */
  traceparent?: string;
  /** The version of the data's schema, for upcasting. */
  schemaVersion?: number;
  /** Your own string metadata, stored as `Es-Meta-<key>` headers. */
  meta?: Readonly<Record<string, string>>;
}

/** Header names jetsource writes. `Nats-Msg-Id` doubles as the event id, so retries are deduplicated. */
export const Header = {
  Id: 'Nats-Msg-Id',
  Type: 'Es-Type',
  Time: 'Es-Time',
  Tenant: 'Es-Tenant',
  SchemaVersion: 'Es-Schema-Version',
  CorrelationId: 'Es-Correlation-Id',
  CausationId: 'Es-Causation-Id',
  Traceparent: 'traceparent',
  MetaPrefix: 'Es-Meta-',
  /**
   * On each event of an atomic append but its entity's last: how many of the entity's
   * events follow it there, so a reader knows where the entity's part ends.
   */
  AppendFollowing: 'Es-Append-Following',
} as const;

/** The header fields one stored event carries, as plain pairs (no I/O, no nats.js types). */
export interface HeaderFields extends EventMetadata {
  id: string;
  type: string;
  time: string;
  tenant: string;
}

const metaKey = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
// Empty, or printable ASCII (tabs inside) that neither starts nor ends with a space.
const plainValue = /^(?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?$/;
// NATS headers are one line each, and nats.js trims values: such values would not round-trip.
const badValue = /[\r\n]|^\s|\s$/;

/** Whether a string travels in a header as it is: one line, no edge spaces, well-formed. */
export const fitsHeader = (value: string): boolean => !badValue.test(value) && isWellFormed(value);

/** Flattens metadata to header pairs, refusing keys or values that headers cannot carry. */
export function toHeaderPairs(fields: HeaderFields): Array<[string, string]> {
  const pairs: Array<[string, string]> = [
    [Header.Id, fields.id],
    [Header.Type, fields.type],
    [Header.Time, fields.time],
    [Header.Tenant, fields.tenant],
  ];
  const optional: Array<[string, string | number | undefined]> = [
    [Header.SchemaVersion, fields.schemaVersion],
    [Header.CorrelationId, fields.correlationId],
    [Header.CausationId, fields.causationId],
    [Header.Traceparent, fields.traceparent],
  ];
  // The server ignores an empty Nats-Msg-Id: such an event would be stored again on retry.
  if (fields.id === '')
    throw new InvalidArgumentError('event id', '', 'must not be empty; leave it out to get a generated one');
  const version = fields.schemaVersion;
  if (version !== undefined && !(Number.isSafeInteger(version) && version >= 0))
    throw new InvalidArgumentError('schemaVersion', version, 'use an integer >= 0');
  // Only the schema version is a number; any other non-string is refused below, not coerced.
  for (const [k, v] of optional)
    if (v !== undefined) pairs.push([k, k === Header.SchemaVersion ? String(v) : (v as string)]);
  const meta = fields.meta ?? {};
  // A string or an array would be read index by index ({ 0: 'a', … }), a Map as empty.
  if (Object.prototype.toString.call(meta) !== '[object Object]')
    throw new InvalidArgumentError(
      'meta',
      meta,
      'use a plain object of string values, such as { source: "web" }',
    );
  for (const [k, v] of Object.entries(meta)) {
    if (!metaKey.test(k))
      throw new InvalidArgumentError('meta key', k, 'use letters, digits and "-" (max 64)');
    pairs.push([Header.MetaPrefix + k, v]);
  }
  let bytes = 0;
  for (const [k, v] of pairs) {
    // The common case (ids, types, times) in one test: printable ASCII, no edge spaces.
    if (typeof v === 'string' && plainValue.test(v)) {
      bytes += k.length + v.length + 4;
      continue;
    }
    if (typeof v !== 'string') throw new InvalidArgumentError(fieldOf(k), v, 'must be a string');
    if (badValue.test(v))
      throw new InvalidArgumentError(fieldOf(k), v, 'must be one line, without leading or trailing spaces');
    // Headers travel as UTF-8: distinct lone surrogates would all arrive as U+FFFD, so two
    // different event ids would deduplicate as one.
    if (!isWellFormed(v)) throw new InvalidArgumentError(fieldOf(k), v, 'is not well-formed Unicode');
    bytes += k.length + utf8Length(v) + 4;
  }
  if (bytes > MAX_EVENT_HEADER_BYTES)
    throw new InvalidArgumentError(
      'metadata',
      undefined,
      `its headers take ${bytes} bytes, over ${MAX_EVENT_HEADER_BYTES}; keep large values in data`,
    );
  return pairs;
}

/** The field a header carries, as the caller wrote it: errors name that, not the header. */
const headerFields: Readonly<Record<string, string>> = {
  [Header.Id]: 'event id',
  [Header.Type]: 'event type',
  [Header.Time]: 'time',
  [Header.Tenant]: 'tenant',
  [Header.SchemaVersion]: 'schemaVersion',
  [Header.CorrelationId]: 'correlationId',
  [Header.CausationId]: 'causationId',
  [Header.Traceparent]: 'traceparent',
};
const fieldOf = (header: string) => headerFields[header] ?? `meta.${header.slice(Header.MetaPrefix.length)}`;

/**
 * nats-server refuses a message whose header block exceeds 64 KiB. The append protocol
 * adds its own headers (expectations, batch ids) to an event's: this leaves them room.
 */
export const MAX_EVENT_HEADER_BYTES = 65_536 - 1_024;

const utf8 = new TextEncoder();
const utf8Length = (text: string) => (/^[\x00-\x7f]*$/.test(text) ? text.length : utf8.encode(text).length);

/** Anything that can look headers up: a stored message, or a plain map in tests. */
export interface HeaderSource {
  header(name: string): string | undefined;
  /** Header names in order; only those starting with `prefix` when given. */
  headerNames(prefix?: string): Iterable<string>;
}

/** A {@link HeaderSource} over a map of first values: the memory store's, and tests'. */
export function mapHeaderSource(map: ReadonlyMap<string, string>): HeaderSource {
  return {
    header: (name) => map.get(name),
    headerNames: (prefix = '') => [...map.keys()].filter((name) => name.startsWith(prefix)),
  };
}

const noMeta: Readonly<Record<string, string>> = Object.freeze({});

/** The `Es-Meta-*` headers as a record; one shared frozen empty record when there are none. */
export function readMeta(source: HeaderSource): Readonly<Record<string, string>> {
  let meta: Record<string, string> | undefined;
  for (const k of source.headerNames(Header.MetaPrefix)) {
    (meta ??= {})[k.slice(Header.MetaPrefix.length)] = source.header(k) ?? '';
  }
  return meta ?? noMeta;
}

/**
 * Copies the optional metadata that is present onto `target`; absent fields are left out,
 * not undefined. Returns what is wrong with a present one that does not parse.
 */
export function readOptional(
  source: HeaderSource,
  target: Pick<EventMetadata, 'schemaVersion' | 'correlationId' | 'causationId' | 'traceparent'>,
): string | undefined {
  let problem: string | undefined;
  const version = source.header(Header.SchemaVersion);
  if (version !== undefined) {
    if (/^\d+$/.test(version)) target.schemaVersion = Number(version);
    else problem = `${Header.SchemaVersion} "${version}" is not a whole number`;
  }
  const correlationId = source.header(Header.CorrelationId);
  if (correlationId !== undefined) target.correlationId = correlationId;
  const causationId = source.header(Header.CausationId);
  if (causationId !== undefined) target.causationId = causationId;
  const traceparent = source.header(Header.Traceparent);
  if (traceparent !== undefined) target.traceparent = traceparent;
  return problem;
}
