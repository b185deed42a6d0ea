import {
  distinctUntilChanged,
  filter,
  map,
  scan,
  share,
  ReplaySubject,
  timer,
  type MonoTypeOperatorFunction,
  type OperatorFunction,
} from 'rxjs';
import type { Observable } from 'rxjs';
import { assertEvolver } from '../options.js';
import type { EventStore, Evolver } from '../store/types.js';
import type { EntityRef } from '../subjects/subjects.js';
import type { WatchMessageOf } from './types.js';

/** Folded state as it follows a watch. */
export interface LiveState<S> {
  readonly state: S;
  /** Sequence of the last event seen (folded, or malformed); 0 before any. Pass it as `expect` when appending. */
  readonly version: number;
  /** False while history is still being replayed. */
  readonly caughtUp: boolean;
}

/** A pure fold over envelopes: the shape of {@link Evolver}, inferred from `evolve`'s event parameter. */
export interface Fold<S, V> {
  readonly initial: S;
  readonly evolve: (state: S, event: V) => S;
}

/** Keeps only the decoded events of a watch. */
export function onlyEvents<V>(): OperatorFunction<WatchMessageOf<V>, V> {
  return (source) =>
    source.pipe(
      filter((m): m is Extract<WatchMessageOf<V>, { kind: 'event' }> => m.kind === 'event'),
      map((m) => m.event),
    );
}

/**
 * Folds a watch with a pure `evolve`. Emits once at caught-up (not per replayed event, so
 * a UI does not re-render 10 000 times while loading), then after every live event.
 */
export function foldWatch<S, V extends { sequence: number }>(
  fold: Fold<S, V>,
): OperatorFunction<WatchMessageOf<V>, LiveState<S>> {
  assertEvolver(fold);
  return (source) =>
    source.pipe(
      scan<WatchMessageOf<V>, LiveState<S> & { emit: boolean }>(
        (acc, m) => {
          if (m.kind === 'caught-up') return { ...acc, caughtUp: true, emit: true };
          // A malformed event folds nothing, but it is the entity's version all the same.
          if (m.kind === 'malformed') return { ...acc, version: m.malformed.sequence, emit: acc.caughtUp };
          return {
            state: fold.evolve(acc.state, m.event),
            version: m.event.sequence,
            caughtUp: acc.caughtUp,
            emit: acc.caughtUp,
          };
        },
        { state: fold.initial, version: 0, caughtUp: false, emit: false },
      ),
      filter((acc) => acc.emit),
      map(({ state, version, caughtUp }) => ({ state, version, caughtUp })),
    );
}

/** Just the state of {@link foldWatch}, emitted only when it changes (by `===`, or your `equals`). */
export function foldState<S, V extends { sequence: number }>(
  evolver: Fold<S, V>,
  equals?: (a: S, b: S) => boolean,
): OperatorFunction<WatchMessageOf<V>, S> {
  assertEvolver(evolver);
  return (source) =>
    source.pipe(
      foldWatch(evolver),
      map((s) => s.state),
      distinctUntilChanged(equals),
    );
}

/**
 * Shares one watch among many subscribers: the latest value is replayed to late
 * subscribers, and the consumer stays open for `graceMs` after the last one leaves, so a
 * component that re-mounts does not replay history again. Errors and completion reset it.
 */
export function shareLive<T>(graceMs = 1000): MonoTypeOperatorFunction<T> {
  return share<T>({
    connector: () => new ReplaySubject<T>(1),
    resetOnError: true,
    resetOnComplete: true,
    resetOnRefCountZero: () => timer(graceMs),
  });
}

/**
 * Loads an entity, then follows it: `{ state, version, caughtUp }` at caught-up and after
 * every change. Cold, like `watch`; add {@link shareLive} to share it.
 *
 * @example
 * liveState(store, { type: 'account', id: 'a1' }, {
 *   initial: 0,
 *   evolve: (balance, e) => (e.type === 'Deposited' ? balance + e.data.amount : balance),
 * })
 */
export function liveState<S, E extends object>(
  store: EventStore<E>,
  entity: EntityRef,
  evolver: Evolver<S, E>,
): Observable<LiveState<S>> {
  assertEvolver(evolver);
  return store.watch(entity).pipe(foldWatch(evolver));
}
