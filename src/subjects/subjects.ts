import { InvalidArgumentError, InvalidTokenError } from '../errors.js';
import { assertPlainToken, decodeToken, encodeToken } from './tokens.js';

/** An entity (aggregate, stream) addressed by its type and id. */
export interface EntityRef {
  readonly type: string;
  readonly id: string;
}

/**
 * Selects events. Every field left out matches anything; an empty filter matches the
 * whole tenant. One filter maps to exactly one subject, which keeps reads permission-scopable.
 * To keep a filter in a variable for a typed store's `read` or `watch`, type it
 * `ReadTarget<YourEvents>` (or `EventFilter<keyof YourEvents & string>`): a bare
 * `EventFilter` allows any event type, which a typed store refuses.
 */
export interface EventFilter<T extends string = string> {
  readonly entityType?: string;
  readonly entityId?: string;
  readonly eventType?: T;
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
  private readonly tenantToken: string;
  private readonly tenantPrefix: string;
  private readonly types = new Map<string, string>();

  constructor(prefix: string, tenant: string) {
    this.prefix = assertPlainToken('prefix', prefix);
    this.tenant = tenant;
    this.tenantToken = encodeToken('tenant', tenant);
    this.tenantPrefix = `${prefix}.${this.tenantToken}`;
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
    // A filter ({ entityType }) in an entity's place is a mistake, not a wildcard.
    if (!entity || typeof entity !== 'object' || entity.type === undefined || entity.id === undefined)
      throw new InvalidArgumentError('entity', entity, 'must be { type, id }');
    return `${this.tenantPrefix}.${encodeToken('entity type', entity.type)}.${encodeToken('entity id', entity.id)}`;
  }

  /** The single subject filter for an {@link EventFilter}. */
  filter(filter: EventFilter = {}): string {
    if (filter.entityId !== undefined && filter.entityType === undefined) {
      throw new InvalidArgumentError('filter', filter, 'entityId needs entityType');
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
   * It runs once per event on every read and watch, and a replay meets as many subjects as
   * there are entities, so tokens are found without split(), the tenant is compared rather
   * than decoded, and the few entity and event types are decoded once each.
   */
  parse(subject: string): EventAddress {
    const tenantAt = this.prefix.length + 1;
    const typeAt = subject.indexOf('.', tenantAt) + 1;
    const idAt = subject.indexOf('.', typeAt) + 1;
    const eventAt = subject.indexOf('.', idAt) + 1;
    if (
      !subject.startsWith(this.prefix) ||
      subject[this.prefix.length] !== '.' ||
      typeAt === 0 ||
      idAt === 0 ||
      eventAt === 0 ||
      subject.includes('.', eventAt)
    ) {
      throw new InvalidTokenError('subject', subject, `expected ${this.prefix}.<tenant>.<type>.<id>.<event>`);
    }
    const tenantToken = subject.slice(tenantAt, typeAt - 1);
    return {
      tenant: tenantToken === this.tenantToken ? this.tenant : decodeToken('tenant', tenantToken),
      entity: {
        type: this.typeToken('entity type', subject.slice(typeAt, idAt - 1)),
        id: decodeToken('entity id', subject.slice(idAt, eventAt - 1)),
      },
      eventType: this.typeToken('event type', subject.slice(eventAt)),
    };
  }

  /** Entity and event types are few and repeat on every event: each is decoded once. */
  private typeToken(part: string, token: string): string {
    let value = this.types.get(token);
    if (value === undefined) {
      value = decodeToken(part, token);
      if (this.types.size >= 1024) this.types.clear();
      this.types.set(token, value);
    }
    return value;
  }
}

/** `type/id`, for messages and map keys. */
export function describeEntity(entity: EntityRef): string {
  return `${entity.type}/${entity.id}`;
}

/** NATS subject matching: `*` matches one token, a trailing `>` one or more. Pure. */
export function subjectMatches(filter: string, subject: string): boolean {
  return subjectMatcher(filter)(subject);
}

/**
 * {@link subjectMatches} with the filter parsed once, for testing many subjects: its
 * literal head is compared as one string, and only the tokens from its first wildcard on
 * are looked at one by one. Pure.
 */
export function subjectMatcher(filter: string): (subject: string) => boolean {
  const tokens = filter.split('.');
  const wild = tokens.findIndex((t) => t === '*' || t === '>');
  if (wild === -1) return (subject) => subject === filter;
  const head = tokens
    .slice(0, wild)
    .map((t) => `${t}.`)
    .join('');
  const rest = tokens.slice(wild);
  return (subject) => {
    if (!subject.startsWith(head)) return false;
    let at = head.length;
    for (let i = 0; i < rest.length; i++) {
      // A `>` is always last: it takes the one or more tokens left.
      if (rest[i] === '>') return at < subject.length;
      const dot = subject.indexOf('.', at);
      const end = dot === -1 ? subject.length : dot;
      const token = rest[i]!;
      if (end === at) return false;
      // Compared in place: watches match every delivered subject.
      if (token !== '*' && (end - at !== token.length || !subject.startsWith(token, at))) return false;
      if (i === rest.length - 1) return dot === -1;
      if (dot === -1) return false;
      at = dot + 1;
    }
    return false;
  };
}
