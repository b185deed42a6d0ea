import type { Observable } from 'rxjs';

/** The contract of React's `useSyncExternalStore`, Svelte stores and friends. */
export interface ExternalStore<T> {
  /** The latest value (stable between changes, as React requires). */
  getSnapshot(): T;
  /** Registers a listener; returns the unsubscribe function. The first listener starts the Observable, the last one stops it. */
  subscribe(onChange: () => void): () => void;
}

/**
 * Adapts an Observable to `getSnapshot` + `subscribe`, with no framework dependency.
 * An error is kept and rethrown by `getSnapshot`, so error boundaries see it, until the
 * last listener leaves and a new one starts the Observable again.
 *
 * @example
 * const balance = toStore(store.watch(account).pipe(foldState(evolver)), 0);
 * const value = useSyncExternalStore(balance.subscribe, balance.getSnapshot);
 */
export function toStore<T>(source: Observable<T>, initial: T): ExternalStore<T> {
  let value = initial;
  let failure: { error: unknown } | undefined;
  const listeners = new Set<() => void>();
  let connection: { unsubscribe(): void } | undefined;
  const notify = () => listeners.forEach((l) => l());
  return {
    getSnapshot() {
      if (failure) throw failure.error;
      return value;
    },
    subscribe(onChange) {
      listeners.add(onChange);
      // A fresh start (e.g. an error boundary retrying) must not see the last run's error.
      if (!connection) failure = undefined;
      connection ??= source.subscribe({
        next: (v) => {
          value = v;
          notify();
        },
        error: (error) => {
          failure = { error };
          notify();
        },
      });
      return () => {
        listeners.delete(onChange);
        if (listeners.size === 0) {
          connection?.unsubscribe();
          connection = undefined;
        }
      };
    },
  };
}
