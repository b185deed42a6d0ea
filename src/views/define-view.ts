import { assertObject } from '../options.js';
import { InvalidArgumentError } from '../errors.js';
import type { EnvelopeOf, EventMap, ReadTarget } from '../store/types.js';
import { toFilter } from '../store/reading.js';
import { decodeToken, encodeToken } from '../subjects/tokens.js';

/** A materialized view: a pure fold of events into one state per key. */
export interface ViewDefinition<S, E extends object = EventMap> {
  /** Stable name; it is part of the KV keys. */
  readonly name: string;
  /** Bump it when `evolve` or `key` change meaning: the new version is rebuilt beside the old one. */
  readonly version: number;
  /** Which events feed the view: an entity, or a filter whose event type is one of the map's. */
  readonly filter: ReadTarget<E>;
  /** Each new key's state; copied with `structuredClone`, and stored as JSON like every state. */
  readonly initial: S;
  /** Pure: the same events in the same order always give the same state. */
  readonly evolve: (state: S, event: EnvelopeOf<E>) => S;
  /** The key an event updates. Default: the event's entity id. */
  readonly key: (event: EnvelopeOf<E>) => string;
}

/**
 * Defines a view. Keys default to the entity id, one value per entity; return a constant
 * from `key` for a tenant-wide summary.
 *
 * @example
 * const balances = defineView<number, Bank>({
 *   name: 'balances', version: 1, filter: { entityType: 'account' }, initial: 0,
 *   evolve: (total, e) => (e.type === 'Deposited' ? total + e.data.amount : total),
 * });
 */
export function defineView<S, E extends object = EventMap>(
  definition: Omit<ViewDefinition<S, E>, 'key'> & { key?: ViewDefinition<S, E>['key'] },
): ViewDefinition<S, E> {
  assertObject('view definition', definition, '{ name, version, filter, initial, evolve, key? }');
  encodeToken('view name', definition.name);
  if (!Number.isSafeInteger(definition.version) || definition.version < 1) {
    throw new InvalidArgumentError('view version', definition.version, 'use an integer >= 1');
  }
  // Caught here, not by the projector at its first event, where it would dead-letter them all.
  if (typeof definition.evolve !== 'function')
    throw new InvalidArgumentError('view evolve', undefined, 'pass a function (state, event) => new state');
  if (definition.key !== undefined && typeof definition.key !== 'function')
    throw new InvalidArgumentError('view key', undefined, 'pass a function (event) => key, or leave it out');
  toFilter(definition.filter, 'view filter');
  return { ...definition, key: definition.key ?? ((event) => event.entity.id) };
}

/** One key's value in a view, as readers see it. */
export interface ViewEntry<S> {
  readonly key: string;
  /**
   * The view version the value belongs to: readers follow the active version, which may
   * not be the definition's they were opened with (before it has caught up, or after a
   * newer one took over), and its state may have another shape.
   */
  readonly version: number;
  readonly state: S;
  /**
   * Stream sequence of the last event folded in order: how fresh the value is. A replayed
   * dead letter, folded late, does not move it.
   */
  readonly sequence: number;
  /** When the newest event in the value was appended. */
  readonly time: Date;
}

/** What the projector stores per key. Deterministic (no wall clock), so a rebuild is byte-identical. */
export interface StoredViewValue<S> {
  readonly sequence: number;
  readonly time: string;
  readonly state: S;
  /**
   * Dead-lettered events folded since (late, by a replay, or in order by fixed code after
   * a restart), so replaying one again does not fold it twice.
   */
  readonly replayed?: readonly number[];
  /**
   * This key's events that were dead-lettered, not folded, and not yet replayed: a replay
   * folds these, and knows any other event up to `sequence` is in.
   */
  readonly deadLettered?: readonly number[];
}

/**
 * The KV key layout of one tenant's views, in a bucket shared by the tenant's views:
 * `<tenant>.<view>.active` names the serving version; `<tenant>.<view>.v<n>.k.<key>`
 * holds values and `<tenant>.<view>.v<n>.meta.checkpoint` the projector's position.
 * Every key starts with the tenant, so permissions can scope readers to `$KV.<bucket>.<tenant>.>`.
 */
export class ViewKeys {
  private readonly base: string;
  constructor(tenant: string, view: string) {
    this.base = `${encodeToken('tenant', tenant)}.${encodeToken('view name', view)}`;
  }
  get active(): string {
    return `${this.base}.active`;
  }
  entry(version: number, key: string): string {
    return `${this.base}.v${version}.k.${encodeToken('view key', key)}`;
  }
  entries(version: number): string {
    return `${this.base}.v${version}.k.>`;
  }
  checkpoint(version: number): string {
    return `${this.base}.v${version}.meta.checkpoint`;
  }
  /** The view key of a KV key made by {@link entry}. */
  keyOf(kvKey: string): string {
    return decodeToken('view key', kvKey.slice(kvKey.lastIndexOf('.') + 1));
  }
}
