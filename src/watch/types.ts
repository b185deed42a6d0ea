import type { EnvelopeOf, MalformedEvent, MalformedPolicy } from '../store/types.js';

/** Where a watch starts. */
export type WatchStart = number | 'new';

/** Options for `store.watch()`. */
export interface WatchOptions {
  /**
   * Deliver events after this sequence. `'new'` skips history: it starts after the newest
   * matching event when the watch starts, and resumes from there across reconnects.
   * Default 0: everything.
   */
  after?: WatchStart;
  /**
   * Complete after delivering every matching event up to this sequence (inclusive): at
   * once when one lands on it, else once the tenant's events reach it. A watch waiting for
   * that looks again after each event, and every few seconds at most.
   */
  until?: number;
  /** Complete once caught up: a bounded replay (like `WithNoWait` in Synadia's Rita). */
  noWait?: boolean;
  /** `'throw'` (default) errors the Observable; `'report'` emits a `malformed` message and goes on. */
  onMalformed?: MalformedPolicy;
  /** Idle heartbeat in ms (100 to 60 000), which bounds how fast a silent server is noticed. Default 2000. */
  heartbeatMs?: number;
}

/** How far a watch's catch-up has come, for progress bars. */
export interface WatchProgress {
  /** Events delivered by this subscription so far. */
  readonly delivered: number;
  /** Events known to be still behind the last one delivered (0 once live). */
  readonly pending: number;
  readonly caughtUp: boolean;
}

/**
 * What a watch emits, in stream order:
 * - `event`: one decoded event, with progress;
 * - `caught-up`: exactly once, when every event that existed at subscribe time has been
 *   delivered (also on an empty stream or filter). Everything after it is live. Its
 *   `sequence` is where: every matching event up to it is out, and later ones follow it.
 * - `malformed`: an undecodable event, only with `onMalformed: 'report'`.
 */
export type WatchMessage<E extends object> = WatchMessageOf<EnvelopeOf<E>>;

/** {@link WatchMessage} over an envelope type rather than an event map (what operators infer from). */
export type WatchMessageOf<V> =
  | { readonly kind: 'event'; readonly event: V; readonly progress: WatchProgress }
  | { readonly kind: 'caught-up'; readonly sequence: number; readonly progress: WatchProgress }
  | { readonly kind: 'malformed'; readonly malformed: MalformedEvent; readonly progress: WatchProgress };

/** Connection state as a value, never as an error. */
export type ConnectionState = 'connected' | 'reconnecting' | 'disconnected' | 'closed';
