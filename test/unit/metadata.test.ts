import { describe, expect, test } from 'vitest';
import { eventIdHeader } from '../../src/codec/event-format.js';
import {
  mapHeaderSource,
  Header,
  readMeta,
  readOptional,
  toHeaderPairs,
  MAX_EVENT_HEADER_BYTES,
  type EventMetadata,
  type HeaderFields,
  type HeaderSource,
} from '../../src/codec/metadata.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { fromAlphabet, prng } from '../support/random.js';
import { thrown } from '../support/thrown.js';

const base: HeaderFields = {
  id: 'e1',
  type: 'placed',
  time: '2024-05-01T12:00:00.000Z',
  tenant: 'acme',
};

/** What a message's headers look like to the envelope builder, built from pairs. */
function read(pairs: Array<[string, string]>) {
  const map = new Map(pairs);
  expect(map.size).toBe(pairs.length); // no header written twice
  return readBack(mapHeaderSource(map));
}

/** What the envelope builder reads: absent optional fields are left out, not undefined. */
function readBack(source: HeaderSource) {
  const optional: EventMetadata = {};
  readOptional(source, optional);
  return {
    id: source.header(Header.Id),
    time: source.header(Header.Time),
    meta: readMeta(source),
    ...optional,
  };
}

describe('toHeaderPairs', () => {
  test('writes the four required headers first, in a fixed order', () => {
    expect(toHeaderPairs(base)).toEqual([
      ['Nats-Msg-Id', 'e1'],
      ['Es-Type', 'placed'],
      ['Es-Time', '2024-05-01T12:00:00.000Z'],
      ['Es-Tenant', 'acme'],
    ]);
  });

  test('the event id travels as Nats-Msg-Id so retries are deduplicated', () => {
    expect(Header.Id).toBe('Nats-Msg-Id');
    expect(eventIdHeader).toBe(Header.Id);
  });

  test('optional fields are omitted when undefined', () => {
    const pairs = toHeaderPairs({
      ...base,
      correlationId: undefined,
      causationId: undefined,
      traceparent: undefined,
      schemaVersion: undefined,
      meta: undefined,
    });
    expect(pairs).toHaveLength(4);
    expect(toHeaderPairs({ ...base, meta: {} })).toHaveLength(4);
  });

  test('writes every optional field under its own header', () => {
    const pairs = toHeaderPairs({
      ...base,
      correlationId: 'corr',
      causationId: 'cause',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      schemaVersion: 3,
      meta: { user: 'ann', 'X-Region-2': 'eu west' },
    });
    expect(new Map(pairs)).toEqual(
      new Map([
        ['Nats-Msg-Id', 'e1'],
        ['Es-Type', 'placed'],
        ['Es-Time', base.time],
        ['Es-Tenant', 'acme'],
        ['Es-Schema-Version', '3'],
        ['Es-Correlation-Id', 'corr'],
        ['Es-Causation-Id', 'cause'],
        ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
        ['Es-Meta-user', 'ann'],
        ['Es-Meta-X-Region-2', 'eu west'],
      ]),
    );
  });

  test('schemaVersion 0 is written, not mistaken for absent', () => {
    expect(toHeaderPairs({ ...base, schemaVersion: 0 })).toContainEqual(['Es-Schema-Version', '0']);
  });

  test.each(['x', 'X-1', '9lives', 'a'.repeat(64)])('accepts meta key %j', (key) => {
    expect(toHeaderPairs({ ...base, meta: { [key]: 'v' } })).toContainEqual([`Es-Meta-${key}`, 'v']);
  });

  test.each([
    ['empty', ''],
    ['space', 'a b'],
    ['dot', 'a.b'],
    ['colon', 'a:b'],
    ['underscore', 'a_b'],
    ['leading dash', '-a'],
    ['unicode', 'é'],
    ['newline', 'a\nb'],
    ['65 characters', 'a'.repeat(65)],
  ])('rejects meta key with %s', (_label, key) => {
    const run = () => toHeaderPairs({ ...base, meta: { ok: 'v', [key]: 'v' } });
    expect(run).toThrow(InvalidArgumentError);
    expect(run).toThrow(/invalid meta key/);
  });

  // Errors name the field the caller wrote, not the header jetsource carries it in.
  const fields: Array<[string, keyof HeaderFields, string]> = [
    ['event id', 'id', 'id'],
    ['event type', 'type', 'type'],
    ['time', 'time', 'time'],
    ['tenant', 'tenant', 'tenant'],
    ['correlationId', 'correlationId', 'corr'],
    ['causationId', 'causationId', 'cause'],
    ['traceparent', 'traceparent', 'tp'],
  ];
  for (const [name, field, value] of fields) {
    for (const bad of ['\r', '\n', '\r\n']) {
      test(`refuses ${JSON.stringify(bad)} in ${field}, naming it ${name}`, () => {
        const run = () => toHeaderPairs({ ...base, [field]: `${value}${bad}Injected: yes` });
        expect(run).toThrow(InvalidArgumentError);
        expect(run).toThrow(`invalid ${name} "${value}`);
      });
    }
  }

  test('an event without a type names the event type, not its header', () => {
    const run = () => toHeaderPairs({ ...base, type: undefined as unknown as string });
    expect(run).toThrow(/^invalid event type: must be a string$/);
  });

  test('refuses CR or LF in a meta value', () => {
    expect(() => toHeaderPairs({ ...base, meta: { note: 'a\nb' } })).toThrow(/invalid meta\.note "a\\nb"/);
    expect(() => toHeaderPairs({ ...base, meta: { note: 'a\rb' } })).toThrow(InvalidArgumentError);
  });

  test('refuses lone surrogates, which UTF-8 headers would turn into one U+FFFD', () => {
    // Two such ids would deduplicate as one event: the second append would be lost.
    expect(() => toHeaderPairs({ ...base, id: 'x\uD800' })).toThrow(/invalid event id .*well-formed/);
    expect(() => toHeaderPairs({ ...base, correlationId: 'a\uDC00b' })).toThrow(InvalidArgumentError);
    expect(() => toHeaderPairs({ ...base, meta: { note: '\uD83D' } })).toThrow(/invalid meta\.note/);
    expect(toHeaderPairs({ ...base, meta: { note: '\uD83D\uDE00' } })).toContainEqual(['Es-Meta-note', '😀']);
  });

  test('refuses headers over what NATS carries, counted in UTF-8 bytes', () => {
    const limit = MAX_EVENT_HEADER_BYTES;
    expect(() => toHeaderPairs({ ...base, meta: { big: 'v'.repeat(limit) } })).toThrow(
      /metadata.*keep large values/,
    );
    expect(() => toHeaderPairs({ ...base, meta: { big: 'é'.repeat(limit / 2) } })).toThrow(
      InvalidArgumentError,
    );
    expect(toHeaderPairs({ ...base, meta: { big: 'é'.repeat(limit / 4) } })).toHaveLength(5);
  });

  test('refuses non-string ids and correlation ids instead of coercing them', () => {
    expect(() => toHeaderPairs({ ...base, id: 42 as unknown as string })).toThrow(
      /^invalid event id 42: must be a string$/,
    );
    expect(() => toHeaderPairs({ ...base, correlationId: 42 as unknown as string })).toThrow(
      /must be a string/,
    );
  });

  test.each<[string, unknown]>([
    ['a string', 'abc'],
    ['an array', ['a', 'b']],
    ['a Map', new Map([['source', 'web']])],
    ['a number', 7],
  ])('refuses meta that is %s instead of storing it index by index (or not at all)', (_label, meta) => {
    const run = () => toHeaderPairs({ ...base, meta: meta as Record<string, string> });
    expect(run).toThrow(InvalidArgumentError);
    expect(run).toThrow(/^invalid meta .*: use a plain object of string values/);
  });

  test('refuses non-string meta values', () => {
    const meta = { n: 1 } as unknown as Record<string, string>;
    expect(() => toHeaderPairs({ ...base, meta })).toThrow(InvalidArgumentError);
  });
});

describe('readMeta and readOptional', () => {
  test('reads back everything toHeaderPairs wrote', () => {
    const fields: HeaderFields = {
      ...base,
      correlationId: 'corr',
      causationId: 'cause',
      traceparent: '00-abc-def-01',
      schemaVersion: 7,
      meta: { user: 'ann', 'X-Empty': '' },
    };
    expect(read(toHeaderPairs(fields))).toEqual({
      id: 'e1',
      time: base.time,
      correlationId: 'corr',
      causationId: 'cause',
      traceparent: '00-abc-def-01',
      schemaVersion: 7,
      meta: { user: 'ann', 'X-Empty': '' },
    });
  });

  test('missing optional fields stay undefined and meta is empty', () => {
    const meta = read(toHeaderPairs(base));
    expect(meta.id).toBe('e1');
    expect(meta.time).toBe(base.time);
    expect(meta.schemaVersion).toBeUndefined();
    expect(meta.correlationId).toBeUndefined();
    expect(meta.causationId).toBeUndefined();
    expect(meta.traceparent).toBeUndefined();
    expect(meta.meta).toEqual({});
  });

  test('no headers at all', () => {
    const meta = readBack({ header: () => undefined, headerNames: () => [] });
    expect(meta.id).toBeUndefined();
    expect(meta.time).toBeUndefined();
    expect(meta.meta).toEqual({});
  });

  test('schemaVersion 0 survives the round trip', () => {
    expect(read(toHeaderPairs({ ...base, schemaVersion: 0 })).schemaVersion).toBe(0);
  });

  test('only Es-Meta-* headers become meta', () => {
    const meta = read([
      ['Nats-Msg-Id', 'e1'],
      ['Es-Meta-a', '1'],
      ['Es-Metadata', 'x'],
      ['X-Other', 'y'],
    ]);
    expect(meta.meta).toEqual({ a: '1' });
  });

  test('values NATS would trim are refused, whatever the whitespace', () => {
    for (const bad of [' x', 'x ', '\tx', 'x\u00a0', '\ufeffx']) {
      expect(thrown(() => toHeaderPairs({ ...base, id: bad }))).toBeInstanceOf(InvalidArgumentError);
      expect(thrown(() => toHeaderPairs({ ...base, meta: { k: bad } }))).toBeInstanceOf(InvalidArgumentError);
    }
  });

  test('random single-line metadata round-trips', () => {
    const rand = prng(0x5eed_7003);
    const keyAlphabet = 'abcXYZ019-';
    const valueAlphabet = 'ab .:;=*>/\\"\'\té😀-_';
    // Spaces and tabs inside; NATS trims them at the ends, so those are refused (below).
    const value = () => `<${fromAlphabet(rand, valueAlphabet, 20)}>`;
    for (let i = 0; i < 500; i++) {
      const meta: Record<string, string> = {};
      const n = Math.floor(rand() * 4);
      for (let k = 0; k < n; k++) meta[`k${fromAlphabet(rand, keyAlphabet, 10)}`] = value();
      const fields: HeaderFields = {
        id: value(),
        type: 'placed',
        time: new Date(Math.floor(rand() * 4e12)).toISOString(),
        tenant: 'acme',
        correlationId: rand() < 0.5 ? undefined : value(),
        schemaVersion: rand() < 0.5 ? undefined : Math.floor(rand() * 100),
        meta,
      };
      const back = read(toHeaderPairs(fields));
      expect(back.id).toBe(fields.id);
      expect(back.time).toBe(fields.time);
      expect(back.correlationId).toBe(fields.correlationId);
      expect(back.schemaVersion).toBe(fields.schemaVersion);
      expect(back.meta).toEqual(meta);
    }
  });
});
