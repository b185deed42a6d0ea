import { InvalidArgumentError } from './errors.js';

/** The longest delay a timer keeps: a longer one fires at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * A whole-number option (a count, milliseconds, bytes) from `min` to `max`, or `fallback`
 * when unset. NaN, fractions and strings are refused rather than coerced: NaN retries
 * would never stop, and a string timeout would be no timeout at all.
 */
export function wholeOption(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max)
    throw new InvalidArgumentError(
      name,
      value,
      max === Number.MAX_SAFE_INTEGER ? `use an integer >= ${min}` : `use an integer from ${min} to ${max}`,
    );
  return value;
}

/**
 * Refuses an argument that is not an object, from callers without types (plain JS): a
 * string or null in place of options would be read as no options and silently ignored,
 * and in place of an event it would fail with a bare TypeError.
 */
export function assertObject(name: string, value: unknown, shape: string): void {
  if (typeof value !== 'object' || value === null)
    throw new InvalidArgumentError(name, value, `pass ${shape}`);
}

/**
 * Refuses what is not a NATS connection (plain JS callers): a `connect()` not awaited
 * would otherwise fail later, at the first request or in the background, as a bare TypeError.
 */
export function assertConnection(value: unknown, name = 'connection'): void {
  const nc = value as { then?: unknown; request?: unknown; status?: unknown } | null;
  if (typeof nc?.then === 'function')
    throw new InvalidArgumentError(name, undefined, 'got a Promise: await connect() first');
  if (
    typeof nc !== 'object' ||
    nc === null ||
    typeof nc.request !== 'function' ||
    typeof nc.status !== 'function'
  )
    throw new InvalidArgumentError(
      name,
      undefined,
      'pass a connection from connect(), wsconnect() or @nats-io/transport-node',
    );
}

/** Refuses a fold without an `evolve` function before any event is read (plain JS callers). */
export function assertEvolver(evolver: unknown): void {
  if (typeof (evolver as { evolve?: unknown } | null)?.evolve !== 'function')
    throw new InvalidArgumentError('evolver', evolver, 'pass { initial, evolve: (state, event) => state }');
}

/** A per-request timeout option in ms, default 5000. */
export const timeoutOption = (name: string, value: number | undefined): number =>
  wholeOption(name, value, 5000, 1, MAX_TIMER_MS);

/**
 * The `replicas` option of a stream or bucket an admin step creates: an integer >= 1,
 * default 1. Checked before the server is asked, which would refuse a negative count in
 * its own words and a string as invalid JSON.
 */
export const replicasOption = (replicas: number | undefined): number =>
  wholeOption('replicas', replicas, 1, 1);
