import { InvalidArgumentError } from '../errors.js';

const brand = Symbol.for('jetsource.processor.outcome');

/** A handler's request to see the event again later. Create it with {@link retry}. */
export interface Retry {
  readonly kind: 'retry';
  /** How long the server waits before delivering the event again. */
  readonly delayMs: number;
}

/** A handler's verdict that the event can never be processed. Create it with {@link reject}. */
export interface Reject {
  readonly kind: 'reject';
  /** Why, kept in the dead letter. */
  readonly reason: string;
}

/** What a handler may return or throw instead of succeeding. */
export type HandlerOutcome = Retry | Reject;

/**
 * Asks for the event to be delivered again after `delayMs` (a nak with delay). Return it or
 * throw it from a handler. It counts as an attempt: on the last one the event is dead-lettered.
 *
 * @example
 * if (!inventoryReady) return retry(10_000);
 */
export function retry(delayMs: number): Retry {
  if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
    throw new InvalidArgumentError('retry delay', delayMs, 'use a number of milliseconds >= 0');
  }
  return branded({ kind: 'retry', delayMs: Math.round(delayMs) });
}

/**
 * Gives up on the event at once: it is dead-lettered with `reason` and never redelivered.
 * Return it or throw it from a handler.
 *
 * @example
 * if (!event.data.email) return reject('no email address');
 */
export function reject(reason: string): Reject {
  return branded({ kind: 'reject', reason: String(reason) });
}

/** True for a value made by {@link retry} or {@link reject}, even from another copy of jetsource. */
export function isHandlerOutcome(value: unknown): value is HandlerOutcome {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}

function branded<T extends HandlerOutcome>(outcome: T): T {
  // Non-enumerable, so outcomes still print and compare as plain objects.
  return Object.freeze(Object.defineProperty(outcome, brand, { value: true }));
}
