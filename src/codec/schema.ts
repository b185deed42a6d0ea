import type { StandardSchemaV1 } from '@standard-schema/spec';

/**
 * One Standard Schema validator per event type of the map (zod, valibot, arktype… all
 * fit). Every type needs one: the map is also the store's list of known types, so an
 * event of a type outside it is refused on append and malformed on read.
 */
export type EventSchemas<E> = { readonly [K in keyof E]-?: StandardSchemaV1<unknown, E[K]> };

/** The outcome of validating one event's data. */
export type Checked =
  { ok: true; value: unknown } | { ok: false; issues: ReadonlyArray<StandardSchemaV1.Issue> };

const toChecked = (r: StandardSchemaV1.Result<unknown>): Checked =>
  r.issues ? { ok: false, issues: r.issues } : { ok: true, value: r.value };

/**
 * Validates data against an optional schema; without one the data passes unchanged.
 * Stays synchronous for synchronous validators, so hot read paths do not pay for a promise.
 */
export function check(schema: StandardSchemaV1 | undefined, data: unknown): Checked | Promise<Checked> {
  if (!schema) return { ok: true, value: data };
  const result = schema['~standard'].validate(data);
  // A thenable, not `instanceof Promise`: validators from another realm return foreign promises.
  return typeof (result as PromiseLike<unknown>).then === 'function'
    ? Promise.resolve(result).then(toChecked)
    : toChecked(result as StandardSchemaV1.Result<unknown>);
}
