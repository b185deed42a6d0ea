import { InvalidTokenError } from '../errors.js';
import { assertPlainToken, decodeToken, encodeToken } from './tokens.js';

/** An entity (aggregate, stream) addressed by its type and id. */
export interface EntityRef {
  readonly type: string;
  readonly id: string;
}

/**
 * Selects events. Every field left out matches anything; an empty filter matches the
 * whole tenant. One filter maps to exactly one subject, which keeps reads permission-scopable.
 */
export interface EventFilter {
  readonly entityType?: string;
  readonly entityId?: string;
  readonly eventType?: string;
}

/** Where an event lives: the decoded parts of its subject. */
export interface EventAddress {
  readonly tenant: string;
  readonly entity: EntityRef;
  readonly eventType: string;
}

/** Builds and parses `<prefix>.<tenant>.<entityType>.<entityId>.<eventType>` subjects. Pure. */
export class SubjectScheme {
  readonly prefix: string;
  readonly tenant: string;
  private readonly tenantPrefix: string;
  private readonly parsed = new Map<string, EventAddress>();

  constructor(prefix: string, tenant: string) {
    this.prefix = assertPlainToken('prefix', prefix);
    this.tenant = tenant;
    this.tenantPrefix = `${prefix}.${encodeToken('tenant', tenant)}`;
  }

  /** The subject one event is stored on. */
  event(entity: EntityRef, eventType: string): string {
    return `${this.entityPrefix(entity)}.${encodeToken('event type', eventType)}`;
  }

  /** The wildcard subject covering every event of one entity: the unit of concurrency. */
  entity(entity: EntityRef): string {
    return `${this.entityPrefix(entity)}.*`;
  }

  private entityPrefix(entity: EntityRef): string {
    if (!entity || typeof entity !== 'object')
      throw new InvalidTokenError('entity', entity, 'must be { type, id }');
    return `${this.tenantPrefix}.${encodeToken('entity type', entity.type)}.${encodeToken('entity id', entity.id)}`;
  }

  /** The single subject filter for an {@link EventFilter}. */
  filter(filter: EventFilter = {}): string {
    if (filter.entityId !== undefined && filter.entityType === undefined) {
      throw new InvalidTokenError('filter', filter, 'entityId needs entityType');
    }
    const part = (name: string, value: string | undefined) =>
      value === undefined ? '*' : encodeToken(name, value);
    return [
      this.tenantPrefix,
      part('entity type', filter.entityType),
      part('entity id', filter.entityId),
      part('event type', filter.eventType),
    ].join('.');
  }

  /** Every subject of this tenant, for stream and permission config. */
  all(): string {
    return `${this.tenantPrefix}.>`;
  }

  /**
   * Decodes a stored subject; throws {@link InvalidTokenError} when it is not one of ours.
   * Results are cached (entities' subjects repeat on every replay) and frozen, since
   * envelopes share them.
   */
  parse(subject: string): EventAddress {
    let address = this.parsed.get(subject);
    if (!address) {
      address = this.parseUncached(subject);
      if (this.parsed.size >= 10_000) this.parsed.clear();
      this.parsed.set(subject, address);
    }
    return address;
  }

  private parseUncached(subject: string): EventAddress {
    const parts = subject.split('.');
    if (parts.length !== 5 || parts[0] !== this.prefix) {
      throw new InvalidTokenError('subject', subject, `expected ${this.prefix}.<tenant>.<type>.<id>.<event>`);
    }
    const [, tenant, type, id, eventType] = parts as [string, string, string, string, string];
    return Object.freeze({
      tenant: decodeToken('tenant', tenant),
      entity: Object.freeze({ type: decodeToken('entity type', type), id: decodeToken('entity id', id) }),
      eventType: decodeToken('event type', eventType),
    });
  }
}

/** `type/id`, for messages and map keys. */
export function describeEntity(entity: EntityRef): string {
  return `${entity.type}/${entity.id}`;
}

/** NATS subject matching: `*` matches one token, a trailing `>` one or more. Pure. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length || (f[i] !== '*' && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}
