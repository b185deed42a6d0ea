import type { StandardSchemaV1 } from '@standard-schema/spec';

/** Standard Schema validators per event type: zod, valibot, arktype… all fit. */
export type EventSchemas<E> = { readonly [K in keyof E]?: StandardSchemaV1<unknown, E[K]> };

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
