import type { StandardSchemaV1 } from '@standard-schema/spec';
import { describe, expect, test } from 'vitest';
import { check, type Checked } from '../../src/codec/schema.js';

type Validate = StandardSchemaV1['~standard']['validate'];

/** A minimal Standard Schema object around a validate function. */
function schema(validate: Validate): StandardSchemaV1 {
  return { '~standard': { version: 1, vendor: 'jetsource-test', validate } };
}

const positive = schema((value) =>
  typeof value === 'number' && value > 0
    ? { value }
    : { issues: [{ message: 'must be positive', path: ['amount'] }] },
);
const positiveAsync = schema(async (value) => positive['~standard'].validate(value));

describe('check', () => {
  test('without a schema the data passes unchanged, synchronously', () => {
    const data = { any: 'thing' };
    const result = check(undefined, data);
    expect(result).not.toBeInstanceOf(Promise);
    expect(result).toEqual({ ok: true, value: data });
    expect((result as Checked & { ok: true }).value).toBe(data);
  });

  test('a sync validator stays synchronous on success', () => {
    const result = check(positive, 5);
    expect(result).not.toBeInstanceOf(Promise);
    expect(result).toEqual({ ok: true, value: 5 });
  });

  test('a sync validator stays synchronous on failure and surfaces its issues', () => {
    const result = check(positive, -1);
    expect(result).not.toBeInstanceOf(Promise);
    expect(result).toEqual({ ok: false, issues: [{ message: 'must be positive', path: ['amount'] }] });
  });

  test('the validated value replaces the input (transforming schemas)', () => {
    const trim = schema((value) => ({ value: String(value).trim() }));
    expect(check(trim, '  x  ')).toEqual({ ok: true, value: 'x' });
  });

  test('an async validator returns a Promise of the result', async () => {
    const ok = check(positiveAsync, 5);
    expect(ok).toBeInstanceOf(Promise);
    await expect(ok).resolves.toEqual({ ok: true, value: 5 });

    const bad = check(positiveAsync, 0);
    expect(bad).toBeInstanceOf(Promise);
    await expect(bad).resolves.toEqual({
      ok: false,
      issues: [{ message: 'must be positive', path: ['amount'] }],
    });
  });

  test('an empty issues array still means failure, as the spec says', () => {
    const result = check(
      schema(() => ({ issues: [] })),
      1,
    );
    expect(result).toEqual({ ok: false, issues: [] });
  });

  test('the validator sees the data once and exactly as given', () => {
    const seen: unknown[] = [];
    const spy = schema((value) => {
      seen.push(value);
      return { value };
    });
    const data = { a: 1 };
    check(spy, data);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBe(data);
  });

  test('a validator that throws fails the data, keeping what it threw, sync or async', async () => {
    const boom = new Error('boom');
    const failed = { ok: false, issues: [{ message: 'its validator threw: boom' }], cause: boom };
    const sync = check(
      schema(() => {
        throw boom;
      }),
      1,
    );
    expect(sync).not.toBeInstanceOf(Promise);
    expect(sync).toEqual(failed);
    const rejected = check(
      schema(async () => {
        throw boom;
      }),
      1,
    );
    await expect(rejected).resolves.toEqual(failed);
  });

  test('a validator that returns no result fails the data instead of throwing a TypeError', () => {
    const result = check(schema((() => undefined) as unknown as Validate), 1);
    expect(result).toMatchObject({ ok: false, cause: expect.any(TypeError) });
  });
});
