import { nuid } from '@nats-io/nats-core';
import {
  BatchTooLargeError,
  InvalidArgumentError,
  InvalidTokenError,
  MalformedEventError,
  PayloadTooLargeError,
  ValidationError,
  type MalformedReason,
} from '../errors.js';
import type { AppendAllOptions, EntityWrite, EnvelopeOf, ExpectedVersion } from '../store/types.js';
import {
  describeEntity,
  type EntityRef,
  type EventAddress,
  type SubjectScheme,
} from '../subjects/subjects.js';
import { assertObject } from '../options.js';
import { jsonCodec, type EventCodec } from './codec.js';
import { fitsHeader, Header, readMeta, readOptional, toHeaderPairs, type EventMetadata } from './metadata.js';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { check, type Checked, type EventSchemas } from './schema.js';

/** One event ready for the wire: subject, headers and bytes. */
export interface PreparedEvent {
  readonly id: string;
  /**
   * The caller chose the id. Only then can an earlier call have stored this event: ids
   * jetsource generates are new to each call (its own retries carry the same expectation).
   */
  readonly idGiven: boolean;
  readonly type: string;
  readonly subject: string;
  readonly headers: ReadonlyArray<[string, string]>;
  readonly data: Uint8Array;
}

/** One entity's events ready for the wire, with the expectation to enforce. */
export interface PreparedWrite {
  readonly entity: EntityRef;
  /** `<prefix>.<tenant>.<type>.<id>.*`: the subject the version check covers. */
  readonly entitySubject: string;
  readonly expect: ExpectedVersion;
  readonly events: ReadonlyArray<PreparedEvent>;
}

/** A stored message as any store or transport hands it over. */
export interface StoredMessage {
  readonly sequence: number;
  readonly subject: string;
  readonly data: Uint8Array;
  header(name: string): string | undefined;
  /** Header names in order; only those starting with `prefix` when given. */
  headerNames(prefix?: string): Iterable<string>;
  /** When the server stored it (ms since 1970), where the store knows. */
  storedAt?(): number | undefined;
}

/** Options shared by every store for how events are addressed, encoded and validated. */
export interface EventFormatOptions<E extends object> {
  codec: EventCodec;
  /** When given, only these event types may be written or read, and their data is validated both ways. */
  schemas?: EventSchemas<E>;
  /** Most events one atomic append may hold (the server's batch limit). Default 1000. */
  maxBatch?: number;
}

// randomUUID is missing in insecure browser contexts (plain http on a LAN address); nuid is unique too.
const newId: () => string =
  typeof globalThis.crypto?.randomUUID === 'function'
    ? () => globalThis.crypto.randomUUID()
    : () => nuid.next();

/**
 * Turns typed events into wire messages and stored messages back into typed envelopes.
 * Pure apart from id and clock defaults; shared by the JetStream store, the in-memory
 * store and watch, so all of them accept and reject exactly the same things.
 */
export class EventFormat<E extends object> {
  constructor(
    readonly scheme: SubjectScheme,
    private readonly options: EventFormatOptions<E>,
  ) {
    const { maxBatch } = options;
    // The subject carries it encoded, the Es-Tenant header as it is: refused now, not at the first append.
    if (!fitsHeader(scheme.tenant)) throw headerToken('tenant', scheme.tenant);
    // NaN would switch the limit off, and 0 would refuse every append.
    if (maxBatch !== undefined && !(Number.isSafeInteger(maxBatch) && maxBatch >= 1))
      throw new InvalidArgumentError(
        'maxBatch',
        maxBatch,
        "use the server's atomic batch limit, an integer >= 1",
      );
  }

  /** Validates, encodes and addresses every write. Throws before anything is sent. */
  async prepare(
    writes: ReadonlyArray<EntityWrite<E>>,
    options: AppendAllOptions = {},
  ): Promise<PreparedWrite[]> {
    if (!Array.isArray(writes))
      throw new InvalidArgumentError('writes', writes, 'pass an array of { entity, events, expect? }');
    assertObject('appendAll options', options, '{ correlationId, … } (expect goes on each write)');
    for (const write of writes) {
      assertObject('write', write, '{ entity, events, expect? }');
      if (!Array.isArray(write.events))
        throw new InvalidArgumentError(
          'events',
          write.events,
          'pass an array of { type, data } for each write',
        );
      for (const event of write.events) assertObject('event', event, '{ type, data }');
    }
    if (writes.length === 0)
      throw new InvalidArgumentError('writes', writes, 'pass at least one { entity, events, expect? }');
    // Set, not merely present: a spread of optional fields may carry expect: undefined.
    if (options.expect !== undefined)
      throw new InvalidArgumentError(
        'expect',
        options.expect,
        'appendAll takes it per write: { entity, events, expect }',
      );
    const count = writes.reduce((n, w) => n + w.events.length, 0);
    const maxBatch = this.options.maxBatch ?? 1000;
    if (count > maxBatch) throw new BatchTooLargeError(count, maxBatch);
    const seen = new Set<string>();
    const ids = new Set<string>();
    const time = new Date().toISOString();
    const prepared: PreparedWrite[] = [];
    for (const write of writes) {
      const entitySubject = this.scheme.entity(write.entity);
      if (seen.has(entitySubject)) {
        throw new InvalidArgumentError(
          'writes',
          undefined,
          `${describeEntity(write.entity)} appears twice: put all its events in one write`,
        );
      }
      seen.add(entitySubject);
      if (write.events.length === 0) {
        throw new InvalidArgumentError(
          'events',
          write.events,
          `pass at least one { type, data } for ${describeEntity(write.entity)}`,
        );
      }
      const events: PreparedEvent[] = [];
      for (const [index, event] of write.events.entries()) {
        if (typeof event.type === 'string' && !fitsHeader(event.type))
          throw headerToken('event type', event.type);
        // Which one, when the append has several: its errors say so (worded only for one).
        const where = () =>
          count > 1
            ? `#${index + 1} of ${write.events.length}, for ${describeEntity(write.entity)}`
            : undefined;
        // Without schemas there is nothing to wait for: no await per event on the hot path.
        const data = this.options.schemas
          ? await this.validate(String(event.type), event.data, where)
          : event.data;
        const id = event.id ?? newId();
        if (ids.has(id))
          throw new ValidationError(event.type, [
            { message: `event id "${id}" is used twice in one append` },
          ]);
        ids.add(id);
        const headers = toHeaderPairs({
          id,
          type: event.type,
          time,
          tenant: this.scheme.tenant,
          correlationId: event.correlationId ?? options.correlationId,
          causationId: event.causationId ?? options.causationId,
          traceparent: event.traceparent ?? options.traceparent,
          schemaVersion: event.schemaVersion,
          meta: event.meta,
        });
        events.push({
          id,
          idGiven: event.id !== undefined,
          type: event.type,
          subject: this.scheme.event(write.entity, event.type),
          headers,
          data: this.encode(event.type, data, where),
        });
      }
      prepared.push({
        entity: write.entity,
        entitySubject,
        expect: checkExpect(write.expect === undefined ? 'any' : write.expect),
        events,
      });
    }
    return prepared;
  }

  /** Decodes a stored message, or throws {@link MalformedEventError} with its raw bytes. */
  decode(msg: StoredMessage): EnvelopeOf<E> | Promise<EnvelopeOf<E>> {
    let address: EventAddress;
    try {
      address = this.scheme.parse(msg.subject);
    } catch (cause) {
      throw malformed(msg, 'subject', (cause as Error).message, cause);
    }
    let data: unknown;
    try {
      data = this.options.codec.decode(msg.data);
    } catch (cause) {
      const reason = this.options.codec === jsonCodec ? 'json' : 'codec';
      throw malformed(msg, reason, String((cause as Error | null)?.message ?? cause), cause);
    }
    const schemas = this.options.schemas as Record<string, StandardSchemaV1> | undefined;
    if (!schemas) return envelope<E>(msg, address, data);
    if (!Object.hasOwn(schemas, address.eventType)) {
      throw malformed(msg, 'unknown-type', `"${address.eventType}" is not in the store's schemas`);
    }
    const checked = check(schemas[address.eventType], data);
    return checked instanceof Promise
      ? checked.then((c) => checkedEnvelope<E>(msg, address, c))
      : checkedEnvelope<E>(msg, address, checked);
  }

  private encode(type: string, data: unknown, where: () => string | undefined): Uint8Array {
    let bytes: unknown;
    try {
      bytes = this.options.codec.encode(data);
    } catch (cause) {
      throw new ValidationError(
        type,
        [{ message: `cannot be encoded: ${String((cause as Error | null)?.message ?? cause)}` }],
        { cause, event: where() },
      );
    }
    // By tag, not instanceof: a codec may build its arrays in another realm (a vm, an iframe).
    if (Object.prototype.toString.call(bytes) !== '[object Uint8Array]')
      throw new InvalidArgumentError('codec', undefined, `encode returned ${typeof bytes}, not a Uint8Array`);
    // Events are encoded before any is sent: a codec that reuses one buffer would otherwise
    // send the last event's bytes for all of them. The built-in codec's arrays are fresh.
    return this.options.codec === jsonCodec ? (bytes as Uint8Array) : (bytes as Uint8Array).slice();
  }

  private async validate(type: string, data: unknown, where: () => string | undefined): Promise<unknown> {
    const schemas = this.options.schemas as Record<string, never> | undefined;
    if (schemas && !Object.hasOwn(schemas, type)) {
      throw new ValidationError(
        type,
        [{ message: `unknown event type; known: ${Object.keys(schemas).join(', ')}` }],
        { event: where() },
      );
    }
    const checked = await check(schemas?.[type], data);
    if (!checked.ok)
      throw new ValidationError(type, checked.issues, { cause: checked.cause, event: where() });
    return checked.value;
  }
}

function checkExpect(expect: ExpectedVersion): ExpectedVersion {
  if (expect === 'any' || expect === 'new' || (Number.isSafeInteger(expect) && expect >= 0)) return expect;
  throw new InvalidArgumentError('expect', expect, "use 'any', 'new' or a sequence number >= 0");
}

/** The header block's framing (`NATS/1.0\r\n` … `\r\n`). */
const FRAMING_BYTES = 12;
/** The framing and the batch headers an atomic append adds later (id, sequence, commit). */
const BATCH_HEADER_BYTES = 120;

/**
 * The message's size on the wire, as the server counts it against max_payload. Exact
 * (UTF-8) only when a cheap upper bound comes near the limit: most events are far below.
 */
function wireSize(
  data: Uint8Array,
  pairs: ReadonlyArray<readonly [string, string]>,
  maxPayload: number,
  overhead: number,
): number {
  let chars = 0;
  for (const [k, v] of pairs) chars += k.length + v.length + 4;
  const base = overhead + data.length;
  if (base + chars * 3 <= maxPayload) return base + chars;
  const utf8 = new TextEncoder();
  return pairs.reduce((n, [k, v]) => n + utf8.encode(`${k}: ${v}\r\n`).length, base);
}

/**
 * The headers a write's first event carries for the server to enforce its expectation on
 * the entity's wildcard subject; none for `'any'`.
 */
function expectationHeaders(write: PreparedWrite): ReadonlyArray<readonly [string, string]> {
  if (write.expect === 'any') return [];
  return [
    ['Nats-Expected-Last-Subject-Sequence', String(write.expect === 'new' ? 0 : write.expect)],
    ['Nats-Expected-Last-Subject-Sequence-Subject', write.entitySubject],
  ];
}

/** An event with every header it goes out with. */
export interface WireEvent {
  readonly event: PreparedEvent;
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/**
 * Each event of the writes with the headers it is published with (a write's first event
 * also carries its expectation, and each but a write's last says how many of the write's
 * follow it, `Es-Append-Following`, so a reader can tell a write seen part-way), refusing
 * one the server would refuse as over `maxPayload`. With `stream`, the first event also
 * names the stream that must store the append (`Nats-Expected-Stream`): the server
 * refuses it if another stream captures its subject.
 */
export function wireEvents(
  writes: ReadonlyArray<PreparedWrite>,
  maxPayload: number,
  stream?: string,
): WireEvent[] {
  const streamHeader = stream === undefined ? [] : [[expectedStreamHeader, stream] as const];
  // One event goes as a plain publish; more as an atomic batch, whose headers count too.
  const events = writes.reduce((n, write) => n + write.events.length, 0);
  const overhead = events > 1 ? BATCH_HEADER_BYTES : FRAMING_BYTES;
  return writes.flatMap((write, w) =>
    write.events.map((event, i) => {
      const following = write.events.length - 1 - i;
      const headers = [
        ...event.headers,
        ...(following > 0 ? [[Header.AppendFollowing, String(following)] as const] : []),
        ...(i === 0 ? [...(w === 0 ? streamHeader : []), ...expectationHeaders(write)] : []),
      ];
      const size = wireSize(event.data, headers, maxPayload, overhead);
      if (size > maxPayload) throw new PayloadTooLargeError(event.subject, size, maxPayload);
      return { event, headers };
    }),
  );
}

/** Names the stream an append must land in; checked once per message or atomic batch. */
const expectedStreamHeader = 'Nats-Expected-Stream';

/** The header that carries an event id, exposed for stores that compare ids after a lost ack. */
export const eventIdHeader = Header.Id;

/**
 * Whether a stored message is this event, as a retry would have stored it: its subject,
 * its id and its bytes. The id alone is not proof: another writer may have stored other
 * data under an id the caller chose.
 */
export function isStoredEvent(stored: StoredMessage, event: PreparedEvent): boolean {
  return (
    stored.subject === event.subject &&
    stored.header(eventIdHeader) === event.id &&
    sameBytes(stored.data, event.data)
  );
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * An append reused the id of another stored event (the event `sequence` on `subject`).
 * Ids deduplicate retries, so the new event would be dropped as a retry: refuse it.
 */
export function eventIdTaken(
  event: PreparedEvent,
  known: { sequence: number; subject?: string },
): ValidationError {
  return new ValidationError(event.type, [
    {
      message: `id "${event.id}" is already used by event #${known.sequence} on ${known.subject}; give each new event its own id`,
      path: ['id'],
    },
  ]);
}

/** An atomic append was refused for an id already stored; the server does not say which. */
export function batchIdTaken(events: ReadonlyArray<PreparedEvent>): ValidationError {
  const ids = events.map((e) => `"${e.id}"`);
  const listed = ids.length > 5 ? `${ids.slice(0, 5).join(', ')} …` : ids.join(', ');
  const types = [...new Set(events.map((e) => e.type))].join(', ');
  return new ValidationError(types, [
    {
      message: `one of the ids ${listed} is already used by another stored event, or this append was stored longer ago than the store's duplicateWindowMs: read the entity, then give each new event its own id`,
      path: ['id'],
    },
  ]);
}

/** A token the subject could carry, but its header copy (`Es-Tenant`, `Es-Type`) could not. */
const headerToken = (part: string, value: string) =>
  new InvalidTokenError(
    part,
    value,
    'must be one line, without leading or trailing spaces: it also travels in a header',
  );

function malformed(
  msg: StoredMessage,
  reason: MalformedReason,
  detail: string,
  cause?: unknown,
): MalformedEventError {
  return new MalformedEventError(msg.sequence, msg.subject, msg.data, reason, detail, { cause });
}

function checkedEnvelope<E extends object>(
  msg: StoredMessage,
  address: EventAddress,
  checked: Checked,
): EnvelopeOf<E> {
  if (!checked.ok)
    throw malformed(msg, 'validation', checked.issues.map((i) => i.message).join('; '), checked.cause);
  return envelope<E>(msg, address, checked.value);
}

/** Builds the envelope in one object literal: this runs once per event on every read and watch. */
function envelope<E extends object>(msg: StoredMessage, address: EventAddress, data: unknown): EnvelopeOf<E> {
  const stamp = msg.header(Header.Time);
  // An event published without jetsource's headers gets the time the server stored it.
  const time = new Date(stamp ?? msg.storedAt?.() ?? Number.NaN);
  if (Number.isNaN(time.getTime()))
    throw malformed(
      msg,
      'metadata',
      stamp === undefined ? `no ${Header.Time} header` : `${Header.Time} "${stamp}" is not a time`,
    );
  const event = {
    id: msg.header(Header.Id) ?? `seq-${msg.sequence}`,
    type: address.eventType,
    data,
    entity: address.entity,
    tenant: address.tenant,
    sequence: msg.sequence,
    time,
    subject: msg.subject,
    meta: readMeta(msg),
  };
  const problem = readOptional(msg, event as EventMetadata);
  if (problem) throw malformed(msg, 'metadata', problem);
  return event as unknown as EnvelopeOf<E>;
}
