import { describe, expect, test } from 'vitest';
import { InvalidTokenError } from '../../src/errors.js';
import { assertPlainToken, decodeToken, encodeToken } from '../../src/subjects/tokens.js';
import { fromAlphabet, int, prng, randomString } from '../support/random.js';
import { thrown } from '../support/thrown.js';

const SEED = 0x5eed_7001;
const RUNS = 5000;
const VALID_TOKEN = /^[A-Za-z0-9_=-]+$/;

function generated(seed: number, runs: number, maxUnits?: number): string[] {
  const rand = prng(seed);
  return Array.from({ length: runs }, () => randomString(rand, maxUnits));
}

/** The encoded length, computed independently: 1 per plain character, 3 per UTF-8 byte otherwise. */
const encodedLength = (x: string) =>
  [...x].reduce((n, ch) => n + (/[A-Za-z0-9_-]/.test(ch) ? 1 : 3 * Buffer.byteLength(ch)), 0);

describe(`encodeToken / decodeToken properties (seed ${SEED.toString(16)})`, () => {
  const inputs = generated(SEED, RUNS);
  const longest = generated(SEED + 1, 400, 256);
  const long = longest.filter((x) => encodedLength(x) <= 768);

  test('values that encode past 768 characters are refused, the rest are not', () => {
    const tooLong = longest.filter((x) => encodedLength(x) > 768);
    expect(tooLong.length).toBeGreaterThan(10);
    expect(long.length).toBeGreaterThan(10);
    for (const x of tooLong) expect(thrown(() => encodeToken('id', x))).toBeInstanceOf(InvalidTokenError);
  });

  test('the generator covers the awkward classes of characters', () => {
    const all = inputs.join('');
    for (const needle of ['.', '*', '>', '=', ' ', '\t', '\n']) expect(all).toContain(needle);
    expect(all).toMatch(/[\u0300-\u036f]/); // combining marks
    expect(all).toMatch(/[\u{1f300}-\u{1faff}]/u); // emoji
    expect(longest.some((s) => s.length > 200)).toBe(true);
  });

  test('decode(encode(x)) === x', () => {
    for (const x of [...inputs, ...long]) expect(decodeToken('id', encodeToken('id', x))).toBe(x);
  });

  test('every token is a valid NATS subject token and KV key', () => {
    for (const x of [...inputs, ...long]) {
      const token = encodeToken('id', x);
      expect(token).toMatch(VALID_TOKEN);
      expect(token).not.toMatch(/[.*>\s]/);
    }
  });

  test('distinct inputs give distinct tokens', () => {
    const seen = new Map<string, string>();
    for (const x of [...inputs, ...long]) {
      const token = encodeToken('id', x);
      const earlier = seen.get(token);
      if (earlier !== undefined) expect(earlier).toBe(x);
      seen.set(token, x);
    }
    expect(seen.size).toBe(new Set([...inputs, ...long]).size);
  });

  test('encoding is per character, so it distributes over concatenation', () => {
    for (let i = 0; i + 1 < inputs.length; i += 2) {
      const a = inputs[i]!;
      const b = inputs[i + 1]!;
      if (a.length + b.length > 256) continue;
      expect(encodeToken('id', a + b)).toBe(encodeToken('id', a) + encodeToken('id', b));
    }
  });

  test('letters, digits, "_" and "-" pass through unchanged', () => {
    const rand = prng(SEED + 2);
    for (let i = 0; i < 1000; i++) {
      const x = fromAlphabet(rand, 'ABCXYZabcxyz0189_-', 30);
      expect(encodeToken('id', x)).toBe(x);
    }
  });
});

describe('encodeToken examples', () => {
  test.each([
    ['a.b c', 'a=2Eb=20c'],
    ['=', '=3D'],
    ['*', '=2A'],
    ['>', '=3E'],
    ['\t\n', '=09=0A'],
    ['é', '=C3=A9'],
    ['e\u0301', 'e=CC=81'],
    ['😀', '=F0=9F=98=80'],
    ['\u0000', '=00'],
    ['order-42_x', 'order-42_x'],
  ])('%j → %s', (input, token) => {
    expect(encodeToken('id', input)).toBe(token);
    expect(decodeToken('id', token)).toBe(input);
  });

  test('look-alikes stay apart: no normalisation and no confusion with escapes', () => {
    const pairs: Array<[string, string]> = [
      ['é', 'e\u0301'],
      ['a.b', 'a=2Eb'],
      ['=', '=3D'],
      ['a b', 'a_b'],
      ['A', 'a'],
    ];
    for (const [x, y] of pairs) expect(encodeToken('id', x)).not.toBe(encodeToken('id', y));
  });
});

describe('encodeToken rejects values it cannot carry', () => {
  test.each([
    ['empty string', ''],
    ['number', 42],
    ['null', null],
    ['undefined', undefined],
    ['object', { id: 'x' }],
    ['array', ['x']],
    ['String object', new String('x')],
  ])('%s', (_label, value) => {
    const err = thrown(() => encodeToken('entity id', value as string));
    expect(err).toBeInstanceOf(InvalidTokenError);
    expect((err as InvalidTokenError).code).toBe('INVALID_TOKEN');
    expect((err as InvalidTokenError).part).toBe('entity id');
    expect((err as InvalidTokenError).message).toContain('entity id');
  });

  test('256 code units pass, 257 fail with a message naming the part and the limit', () => {
    expect(encodeToken('tenant', 'a'.repeat(256))).toBe('a'.repeat(256));
    for (const value of ['a'.repeat(257), '😀'.repeat(129), 'é'.repeat(1000)]) {
      const err = thrown(() => encodeToken('tenant', value));
      expect(err).toBeInstanceOf(InvalidTokenError);
      expect((err as Error).message).toMatch(/^invalid tenant /);
      expect((err as Error).message).toContain('256');
    }
  });
});

test('a value over 768 characters once encoded is refused, so subjects stay within NATS lines', () => {
  expect(decodeToken('id', encodeToken('id', '😀'.repeat(64)))).toBe('😀'.repeat(64));
  expect(decodeToken('id', encodeToken('id', '漢'.repeat(85)))).toBe('漢'.repeat(85));
  const err = thrown(() => encodeToken('entity id', '漢'.repeat(86)));
  expect(err).toBeInstanceOf(InvalidTokenError);
  expect((err as Error).message).toMatch(/^invalid entity id .*encodes to 774 characters, over 768/);
});

describe('decodeToken rejects tokens encodeToken could not produce', () => {
  test.each([
    ['empty', ''],
    ['lowercase hex', '=c3=a9'],
    ['mixed-case hex', '=C3=a9'],
    ['stray "=" at the end', 'abc='],
    ['"=" with one digit', 'a=4'],
    ['"=" with a non-hex digit', '=4G'],
    ['a dot', 'a.b'],
    ['a space', 'a b'],
    ['a star', '*'],
    ['a gt', '>'],
    ['raw unicode', 'é'],
    ['invalid UTF-8 byte', '=FF'],
    ['lone continuation byte', '=80'],
    ['truncated sequence', '=E2=82'],
    ['overlong encoding', '=C0=80'],
    ['encoded surrogate', '=ED=A0=80'],
  ])('%s: %j', (_label, token) => {
    const err = thrown(() => decodeToken('event type', token));
    expect(err).toBeInstanceOf(InvalidTokenError);
    expect((err as InvalidTokenError).part).toBe('event type');
    expect((err as Error).message).toContain('event type');
  });

  test('random garbage either decodes to a string or throws InvalidTokenError, nothing else', () => {
    const rand = prng(SEED + 3);
    let rejected = 0;
    for (let i = 0; i < 3000; i++) {
      const token = fromAlphabet(rand, 'aZ09_-=====ACEF8cf .*', 12);
      try {
        expect(typeof decodeToken('id', token)).toBe('string');
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidTokenError);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(0);
  });
});

describe('assertPlainToken', () => {
  test.each(['es', 'A-b_9', 'x', 'a'.repeat(64)])('accepts %j and returns it', (value) => {
    expect(assertPlainToken('prefix', value)).toBe(value);
  });

  test.each([
    ['empty', ''],
    ['star', '*'],
    ['gt', '>'],
    ['dot', 'a.b'],
    ['space', 'a b'],
    ['newline', 'a\n'],
    ['equals', 'a=2E'],
    ['unicode letter', 'é'],
    ['emoji', '😀'],
    ['65 characters', 'a'.repeat(65)],
    ['non-string', 7],
  ])('rejects %s', (_label, value) => {
    const err = thrown(() => assertPlainToken('prefix', value as string));
    expect(err).toBeInstanceOf(InvalidTokenError);
    expect((err as InvalidTokenError).part).toBe('prefix');
    expect((err as Error).message).toContain('prefix');
  });

  test('random plain-alphabet strings are accepted exactly when 1-64 long', () => {
    const rand = prng(SEED + 4);
    for (let i = 0; i < 500; i++) {
      const value = fromAlphabet(rand, 'aZ09_-', int(rand, 1, 80));
      if (value.length <= 64) expect(assertPlainToken('prefix', value)).toBe(value);
      else expect(() => assertPlainToken('prefix', value)).toThrow(InvalidTokenError);
    }
  });
});

describe('edge cases found in review', () => {
  test('a leading byte-order mark survives the round trip', () => {
    for (const value of ['\uFEFFabc', '\uFEFF'])
      expect(decodeToken('id', encodeToken('id', value))).toBe(value);
  });

  test('lone surrogates are refused rather than collapsed into U+FFFD', () => {
    expect(() => encodeToken('id', '\uD800')).toThrow(InvalidTokenError);
    expect(() => encodeToken('id', 'a\uDFFF')).toThrow(/well-formed/);
    expect(decodeToken('id', encodeToken('id', '😀'))).toBe('😀');
  });

  test('non-canonical tokens are refused, so one id never hides behind two subjects', () => {
    for (const token of ['=41', '=2D', 'a'.repeat(300)])
      expect(() => decodeToken('id', token)).toThrow(InvalidTokenError);
  });

  test('unprintable bad values still produce an InvalidTokenError', () => {
    expect(() => encodeToken('id', 10n as unknown as string)).toThrow(InvalidTokenError);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(() => encodeToken('id', circular as unknown as string)).toThrow(InvalidTokenError);
  });
});
