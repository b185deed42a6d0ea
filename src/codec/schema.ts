import type { StandardSchemaV1 } from '@standard-schema/spec';

/**
 * One Standard Schema validator per event type of the map (zod, valibot, arktype… all
 * fit). Every type needs one: the map is also the store's list of known types, so an
 * event of a type outside it is refused on append and malformed on read.
 */
export type EventSchemas<E> = { readonly [K in keyof E]-?: StandardSchemaV1<unknown, E[K]> };

/** The outcome of validating one event's data; `cause` is what a validator threw. */
export type Checked =
  | { ok: true; value: unknown }
  | { ok: false; issues: ReadonlyArray<StandardSchemaV1.Issue>; cause?: unknown };

const toChecked = (r: StandardSchemaV1.Result<unknown>): Checked => {
  if (typeof r !== 'object' || r === null)
    return threw(new TypeError(`validate returned ${String(r)}, not a Standard Schema result`));
  return r.issues ? { ok: false, issues: r.issues } : { ok: true, value: r.value };
};

/**
 * A validator that throws, rather than returning issues, fails the data and keeps the
 * error: callers report it as the event's validation failure, with its sequence or type,
 * instead of ending a read that was asked to report malformed events.
 */
const threw = (cause: unknown): Checked => ({
  ok: false,
  issues: [{ message: `its validator threw: ${cause instanceof Error ? cause.message : String(cause)}` }],
  cause,
});

/**
 * Validates data against an optional schema; without one the data passes unchanged.
 * Stays synchronous for synchronous validators, so hot read paths do not pay for a promise.
 */
export function check(schema: StandardSchemaV1 | undefined, data: unknown): Checked | Promise<Checked> {
  if (!schema) return { ok: true, value: data };
  let result: StandardSchemaV1.Result<unknown> | Promise<StandardSchemaV1.Result<unknown>>;
  try {
    result = schema['~standard'].validate(data);
  } catch (err) {
    return threw(err);
  }
  // A thenable, not `instanceof Promise`: validators from another realm return foreign promises.
  return typeof (result as Partial<PromiseLike<unknown>> | null)?.then === 'function'
    ? Promise.resolve(result).then(toChecked, threw)
    : toChecked(result as StandardSchemaV1.Result<unknown>);
}
