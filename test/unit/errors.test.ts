import vm from 'node:vm';
import { describe, expect, test } from 'vitest';
import {
  BatchTooLargeError,
  ConcurrencyError,
  InvalidArgumentError,
  InvalidTokenError,
  isJetsourceError,
  JetsourceError,
  MalformedEventError,
  PayloadTooLargeError,
  PermissionDeniedError,
  AuthenticationError,
  ServerError,
  StoreConfigError,
  StoreNotFoundError,
  TenantMismatchError,
  UnavailableError,
  UnsupportedServerError,
  ValidationError,
  type JetsourceErrorCode,
} from '../../src/errors.js';

const brand = Symbol.for('jetsource.error');
const cause = new Error('root cause');

interface Case {
  name: string;
  code: JetsourceErrorCode;
  make: (cause?: unknown) => JetsourceError;
  /** Whether the constructor accepts a cause. */
  keepsCause: boolean;
  /** What the message must say so the reader knows what to do. */
  advice: RegExp;
}

const cases: Case[] = [
  {
    name: 'ConcurrencyError',
    code: 'CONCURRENCY',
    make: (c) => new ConcurrencyError('order/1', 3, 5, { cause: c }),
    keepsCause: true,
    advice: /load it again.*retry/i,
  },
  {
    name: 'InvalidTokenError',
    code: 'INVALID_TOKEN',
    make: () => new InvalidTokenError('entity id', 'a', 'must not be empty'),
    keepsCause: false,
    advice: /must not be empty/,
  },
  {
    name: 'InvalidArgumentError',
    code: 'INVALID_ARGUMENT',
    make: () => new InvalidArgumentError('expect', -1, "use 'any', 'new' or a sequence number >= 0"),
    keepsCause: false,
    advice: /invalid expect -1: use 'any'/,
  },
  {
    name: 'PayloadTooLargeError',
    code: 'PAYLOAD_TOO_LARGE',
    make: () => new PayloadTooLargeError('es.t.a.b.c', 2_000_000, 1_048_576),
    keepsCause: false,
    advice: /store large blobs elsewhere|raise max_payload/i,
  },
  {
    name: 'BatchTooLargeError',
    code: 'BATCH_TOO_LARGE',
    make: (c) => new BatchTooLargeError(2000, 1000, { cause: c }),
    keepsCause: true,
    advice: /split it/i,
  },
  {
    name: 'ValidationError',
    code: 'VALIDATION',
    make: (c) => new ValidationError('placed', [{ message: 'required', path: ['amount'] }], { cause: c }),
    keepsCause: true,
    advice: /amount: required\. Nothing was written/,
  },
  {
    name: 'MalformedEventError',
    code: 'MALFORMED_EVENT',
    make: (c) => new MalformedEventError(9, 'es.t.a.b.c', new Uint8Array([1]), 'json', 'bad', { cause: c }),
    keepsCause: true,
    advice: /fix the schema or codec.*onMalformed: 'report'/i,
  },
  {
    name: 'PermissionDeniedError',
    code: 'PERMISSION_DENIED',
    make: (c) => new PermissionDeniedError('es.t.>', 'publish', { cause: c }),
    keepsCause: true,
    advice: /check that the user's role allows it/i,
  },
  {
    name: 'AuthenticationError',
    code: 'AUTHENTICATION',
    make: (c) => new AuthenticationError('acme-writer', { cause: c }),
    keepsCause: true,
    advice: /credentials of user "acme-writer".*check the user name and password/i,
  },
  {
    name: 'TenantMismatchError',
    code: 'TENANT_MISMATCH',
    make: (c) => new TenantMismatchError('acme', 'user belongs to globex', { cause: c }),
    keepsCause: true,
    advice: /cannot act as tenant "acme": user belongs to globex\. Connect with that tenant's credentials/,
  },
  {
    name: 'StoreNotFoundError',
    code: 'STORE_NOT_FOUND',
    make: (c) => new StoreNotFoundError('EVENTS', { cause: c }),
    keepsCause: true,
    advice: /ensureStore\(\)/,
  },
  {
    name: 'StoreConfigError',
    code: 'STORE_CONFIG',
    make: () => new StoreConfigError('EVENTS', ['retention is workqueue', 'no direct get']),
    keepsCause: false,
    advice: /retention is workqueue; no direct get.*fix it by hand or use another stream name/,
  },
  {
    name: 'UnavailableError',
    code: 'UNAVAILABLE',
    make: (c) => new UnavailableError('request timed out', { cause: c }),
    keepsCause: true,
    advice: /request timed out\. Retry it\./,
  },
  {
    name: 'UnsupportedServerError',
    code: 'UNSUPPORTED_SERVER',
    make: () => new UnsupportedServerError('2.10.4', 'has no atomic batches'),
    keepsCause: false,
    advice: /2\.10\.4 has no atomic batches: jetsource needs 2\.14\.4 or newer.*upgrade the server/i,
  },
  {
    name: 'ServerError',
    code: 'SERVER',
    make: (c) => new ServerError(10071, 'wrong last sequence', { cause: c }),
    keepsCause: true,
    advice: /\(10071\): wrong last sequence/,
  },
];

describe('error classes', () => {
  test('names and codes are distinct across classes', () => {
    const errors = cases.map((c) => c.make(cause));
    expect(new Set(errors.map((e) => e.name)).size).toBe(cases.length);
    expect(new Set(errors.map((e) => e.code)).size).toBe(cases.length);
    expect(errors.map((e) => e.name)).not.toContain('JetsourceError');
    expect(errors.map((e) => e.name)).not.toContain('Error');
  });

  describe.each(cases)('$name', (c) => {
    test('has its name and code and is a branded JetsourceError', () => {
      const err = c.make(cause);
      expect(err.name).toBe(c.name);
      expect(err.code).toBe(c.code);
      expect(err).toBeInstanceOf(JetsourceError);
      expect(err).toBeInstanceOf(Error);
      expect(String(err)).toMatch(new RegExp(`^${c.name}: `));
      expect(isJetsourceError(err)).toBe(true);
      expect(isJetsourceError(err, c.code)).toBe(true);
      const other = cases.find((o) => o.code !== c.code)!.code;
      expect(isJetsourceError(err, other)).toBe(false);
    });

    test('says what happened and what to do', () => {
      expect(c.make(cause).message).toMatch(c.advice);
    });

    if (c.keepsCause) {
      test('keeps its cause', () => {
        expect(c.make(cause).cause).toBe(cause);
      });
    }
  });

  test('the base class carries code, message and cause', () => {
    const err = new JetsourceError('SERVER', 'boom', { cause });
    expect(err.name).toBe('JetsourceError');
    expect(err.code).toBe('SERVER');
    expect(err.message).toBe('boom');
    expect(err.cause).toBe(cause);
    expect((err as unknown as Record<symbol, unknown>)[brand]).toBe(true);
  });

  test('UnavailableError takes a remedy when a plain retry is not the answer', () => {
    const err = new UnavailableError('the connection is closed', { remedy: 'Connect again.' });
    expect(err.message).toBe('the connection is closed. Connect again.');
  });

  test('ServerError takes a remedy when jetsource knows what to change', () => {
    expect(new ServerError(10071, 'wrong last sequence').message).toMatch(/Report it if jetsource/);
    expect(new ServerError(10074, 'replicas > 1', { remedy: 'Use replicas: 1.' }).message).toBe(
      'nats-server refused (10074): replicas > 1. Use replicas: 1.',
    );
  });

  test('ConcurrencyError keeps the versions and explains an unknown one', () => {
    const known = new ConcurrencyError('order/1', 'new', 4);
    expect(known.entity).toBe('order/1');
    expect(known.expected).toBe('new');
    expect(known.actual).toBe(4);
    expect(known.message).toMatch(/^order\/1 is at version 4, not new/);
    expect(new ConcurrencyError('order/1', 2, undefined).message).toContain('an unknown version');
  });

  test('ConcurrencyError blames another writer only when the entity moved past the expected version', () => {
    expect(new ConcurrencyError('order/1', 3, 5).message).toContain('another writer appended first');
    // Versions only grow: a version ahead of the entity's was never loaded from it.
    const ahead = new ConcurrencyError('order/1', 99_999, 6).message;
    expect(ahead).toMatch(
      /^order\/1 is at version 6, not 99999: the expected version is ahead of the entity/,
    );
    expect(ahead).not.toContain('another writer');
  });

  test('InvalidArgumentError shows numbers as written, NaN and Infinity too', () => {
    expect(new InvalidArgumentError('after', Number.NaN, 'use a sequence number >= 0').message).toBe(
      'invalid after NaN: use a sequence number >= 0',
    );
    expect(new InvalidArgumentError('until', -Infinity, 'x').message).toBe('invalid until -Infinity: x');
  });

  test('InvalidTokenError keeps part and value and quotes the value', () => {
    const err = new InvalidTokenError('tenant', 'a.b', 'nope');
    expect(err.part).toBe('tenant');
    expect(err.value).toBe('a.b');
    expect(err.message).toBe('invalid tenant "a.b": nope');
  });

  test('MalformedEventError keeps the raw bytes and reason', () => {
    const raw = new Uint8Array([0xff]);
    const err = new MalformedEventError(3, 's', raw, 'json', 'detail');
    expect(err.raw).toBe(raw);
    expect(err.reason).toBe('json');
    expect(err.sequence).toBe(3);
  });

  test('ValidationError renders Standard Schema path segments and symbol keys', () => {
    const err = new ValidationError('placed', [
      { message: 'Expected number', path: [{ key: 'items' }, { key: 0 }, 'amount'] },
      { message: 'unexpected', path: [Symbol('tag')] },
    ]);
    expect(err.message).toBe(
      'placed is invalid: items.0.amount: Expected number; Symbol(tag): unexpected. Nothing was written.',
    );
  });

  test('ValidationError lists every issue, with paths when given', () => {
    const err = new ValidationError('placed', [
      { message: 'required', path: ['items', 0, 'sku'] },
      { message: 'too many', path: [] },
      { message: 'odd' },
    ]);
    expect(err.message).toBe('placed is invalid: items.0.sku: required; too many; odd. Nothing was written.');
    expect(err.issues).toHaveLength(3);
  });
});

describe('isJetsourceError', () => {
  test('recognises a structurally branded object from another copy of the library', () => {
    const foreign = { [Symbol.for('jetsource.error')]: true, code: 'CONCURRENCY', message: 'x' };
    expect(isJetsourceError(foreign)).toBe(true);
    expect(isJetsourceError(foreign, 'CONCURRENCY')).toBe(true);
    expect(isJetsourceError(foreign, 'UNAVAILABLE')).toBe(false);
  });

  test('recognises a branded error made in another realm, where instanceof fails', () => {
    const foreign = vm.runInNewContext(
      'const e = new Error("x"); e[Symbol.for("jetsource.error")] = true; e.code = "UNAVAILABLE"; e',
    ) as unknown;
    expect(foreign).not.toBeInstanceOf(Error);
    expect(foreign).not.toBeInstanceOf(JetsourceError);
    expect(isJetsourceError(foreign)).toBe(true);
    expect(isJetsourceError(foreign, 'UNAVAILABLE')).toBe(true);
  });

  test.each<[string, unknown]>([
    ['a plain Error', new Error('x')],
    ['an Error with a jetsource code', Object.assign(new Error('x'), { code: 'CONCURRENCY' })],
    ['a brand that is not exactly true', { [brand]: 'true', code: 'CONCURRENCY' }],
    ['a local symbol of the same name', { [Symbol('jetsource.error')]: true, code: 'CONCURRENCY' }],
    ['a string-keyed brand', { 'jetsource.error': true, code: 'CONCURRENCY' }],
    ['null', null],
    ['undefined', undefined],
    ['a string', 'CONCURRENCY'],
    ['a number', 1],
  ])('rejects %s', (_label, value) => {
    expect(isJetsourceError(value)).toBe(false);
  });
});
