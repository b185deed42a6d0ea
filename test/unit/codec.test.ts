import { describe, expect, test } from 'vitest';
import { jsonCodec } from '../../src/codec/codec.js';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe('jsonCodec', () => {
  test.each([
    ['object', { a: 1, b: [true, null, 'x'], c: { d: 'é😀' } }],
    ['array', [1, 2, 3]],
    ['string', 'hello'],
    ['number', 42.5],
    ['zero', 0],
    ['false', false],
    ['null', null],
    ['empty object', {}],
  ])('round-trips %s', (_label, value) => {
    const bytes = jsonCodec.encode(value);
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(jsonCodec.decode(bytes)).toEqual(value);
  });

  test('encodes UTF-8 JSON', () => {
    expect(Array.from(jsonCodec.encode('é'))).toEqual([0x22, 0xc3, 0xa9, 0x22]);
    expect(text(jsonCodec.encode({ a: 1 }))).toBe('{"a":1}');
  });

  test('undefined data encodes as null', () => {
    expect(text(jsonCodec.encode(undefined))).toBe('null');
    expect(jsonCodec.decode(jsonCodec.encode(undefined))).toBeNull();
  });

  test('undefined object fields are dropped, as in JSON', () => {
    expect(jsonCodec.decode(jsonCodec.encode({ a: undefined, b: 1 }))).toEqual({ b: 1 });
  });

  test.each([
    ['NaN', { amount: Number.NaN }, /amount is NaN/],
    ['Infinity', [1, Number.POSITIVE_INFINITY], /Infinity/],
    ['a Map', { tags: new Map([['a', 1]]) }, /tags is a Map/],
    ['a Set', new Set([1]), /data is a Set/],
  ])('refuses %s, which JSON would silently change', (_label, value, message) => {
    expect(() => jsonCodec.encode(value)).toThrow(message);
  });

  test('invalid JSON and invalid UTF-8 throw on decode', () => {
    expect(() => jsonCodec.decode(new TextEncoder().encode('{not json'))).toThrow(SyntaxError);
    expect(() => jsonCodec.decode(new Uint8Array())).toThrow();
    expect(() => jsonCodec.decode(new Uint8Array([0x22, 0xff, 0x22]))).toThrow(TypeError);
  });
});
