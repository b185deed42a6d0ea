import type { StandardSchemaV1 } from '@standard-schema/spec';
import { describe, expect, test } from 'vitest';
import { jsonCodec } from '../../src/codec/codec.js';
import { Header, mapHeaderSource } from '../../src/codec/metadata.js';
import {
  EventFormat,
  wireEvents,
  type PreparedEvent,
  type StoredMessage,
} from '../../src/codec/event-format.js';
import type { EventSchemas } from '../../src/codec/schema.js';
import {
  InvalidArgumentError,
  InvalidTokenError,
  MalformedEventError,
  PayloadTooLargeError,
  ValidationError,
} from '../../src/errors.js';
import type { EntityWrite, ExpectedVersion } from '../../src/store/types.js';
import { SubjectScheme } from '../../src/subjects/subjects.js';
import { rejection, thrown } from '../support/thrown.js';

type Events = {
  placed: { amount: number };
  shipped: { carrier: string };
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const order = { type: 'order', id: 'o-1' };
const scheme = new SubjectScheme('es', 'acme');
const plain = new EventFormat<Events>(scheme, { codec: jsonCodec });

function schema<T>(
  validate: (value: unknown) => StandardSchemaV1.Result<T> | Promise<StandardSchemaV1.Result<T>>,
): StandardSchemaV1<unknown, T> {
  return { '~standard': { version: 1, vendor: 'jetsource-test', validate } };
}

const placedSchema = schema<{ amount: number }>((v) => {
  const amount = (v as { amount?: unknown } | null)?.amount;
  return typeof amount === 'number' && amount > 0
    ? { value: { amount } } // drops unknown keys: the validated value is what gets stored
    : { issues: [{ message: 'amount must be positive', path: ['amount'] }] };
});
const shippedSchema = schema<{ carrier: string }>((v) =>
  typeof (v as { carrier?: unknown } | null)?.carrier === 'string'
    ? { value: v as { carrier: string } }
    : { issues: [{ message: 'carrier is required' }] },
);
const syncSchemas: EventSchemas<Events> = { placed: placedSchema, shipped: shippedSchema };
const asyncSchemas: EventSchemas<Events> = {
  placed: schema(async (v) => placedSchema['~standard'].validate(v)),
  shipped: schema(async (v) => shippedSchema['~standard'].validate(v)),
};
const validated = new EventFormat<Events>(scheme, { codec: jsonCodec, schemas: syncSchemas });
const validatedAsync = new EventFormat<Events>(scheme, { codec: jsonCodec, schemas: asyncSchemas });

/** A stored message built by hand, as a store would hand it over. */
/** When the stores below "stored" their messages. */
const STORED_AT = Date.UTC(2026, 0, 2, 3, 4, 5);

function stored(
  subject: string,
  data: Uint8Array,
  headers: ReadonlyArray<readonly [string, string]> = [],
  sequence = 1,
  /** null: the store does not know. */
  storedAt: number | null = STORED_AT,
): StoredMessage {
  const map = new Map(headers);
  return { sequence, subject, data, storedAt: () => storedAt ?? undefined, ...mapHeaderSource(map) };
}

const fromPrepared = (event: PreparedEvent, sequence: number) =>
  stored(event.subject, event.data, event.headers, sequence);

const bytes = (s: string) => new TextEncoder().encode(s);

const boom = new Error('validator bug');
const throwing = (async: boolean) => {
  const validate = () => {
    throw boom;
  };
  const placed = schema<{ amount: number }>(async ? async () => validate() : validate);
  return new EventFormat<Events>(scheme, {
    codec: jsonCodec,
    schemas: { placed, shipped: shippedSchema },
  });
};

describe('EventFormat.prepare', () => {
  test('addresses, encodes and defaults one write', async () => {
    const before = Date.now();
    const [write, ...rest] = await plain.prepare([
      { entity: order, events: [{ type: 'placed', data: { amount: 3 } }] },
    ]);
    expect(rest).toHaveLength(0);
    expect(write!.entity).toEqual(order);
    expect(write!.entitySubject).toBe('es.acme.order.o-1.*');
    expect(write!.expect).toBe('any');
    expect(write!.events).toHaveLength(1);
    const event = write!.events[0]!;
    expect(event.id).toMatch(UUID);
    expect(event.subject).toBe('es.acme.order.o-1.placed');
    expect(new TextDecoder().decode(event.data)).toBe('{"amount":3}');

    const headers = new Map(event.headers);
    expect(headers.get('Nats-Msg-Id')).toBe(event.id);
    expect(headers.get('Es-Type')).toBe('placed');
    expect(headers.get('Es-Tenant')).toBe('acme');
    const time = Date.parse(headers.get('Es-Time')!);
    expect(time).toBeGreaterThanOrEqual(before - 1);
    expect(time).toBeLessThanOrEqual(Date.now() + 1);
    expect(headers.size).toBe(4);
  });

  test('puts the expectation on the write only, never in headers', async () => {
    const prepared = await plain.prepare([
      { entity: order, expect: 7, events: [{ type: 'placed', data: { amount: 1 } }] },
      {
        entity: { type: 'order', id: 'o-2' },
        expect: 'new',
        events: [{ type: 'placed', data: { amount: 1 } }],
      },
      { entity: { type: 'order', id: 'o-3' }, expect: 0, events: [{ type: 'placed', data: { amount: 1 } }] },
    ]);
    expect(prepared.map((w) => w.expect)).toEqual([7, 'new', 0]);
    for (const write of prepared) {
      for (const event of write.events) {
        for (const [name, value] of event.headers) {
          expect(name).not.toMatch(/expect/i);
          expect(value).not.toBe('new');
        }
      }
    }
  });

  test('random ids are UUIDs, distinct per event; given ids are kept', async () => {
    const [write] = await plain.prepare([
      {
        entity: order,
        events: [
          { type: 'placed', data: { amount: 1 } },
          { type: 'shipped', data: { carrier: 'ups' }, id: 'my-id' },
          { type: 'placed', data: { amount: 2 } },
        ],
      },
    ]);
    const ids = write!.events.map((e) => e.id);
    expect(ids[0]).toMatch(UUID);
    expect(ids[1]).toBe('my-id');
    expect(ids[2]).toMatch(UUID);
    expect(ids[0]).not.toBe(ids[2]);
    expect(new Map(write!.events[1]!.headers).get('Nats-Msg-Id')).toBe('my-id');
  });

  test('events of one append share a time; each gets its own subject', async () => {
    const [write] = await plain.prepare([
      {
        entity: order,
        events: [
          { type: 'placed', data: { amount: 1 } },
          { type: 'shipped', data: { carrier: 'dhl' } },
        ],
      },
    ]);
    const times = write!.events.map((e) => new Map(e.headers).get('Es-Time'));
    expect(times[0]).toBe(times[1]);
    expect(write!.events.map((e) => e.subject)).toEqual([
      'es.acme.order.o-1.placed',
      'es.acme.order.o-1.shipped',
    ]);
  });

  test('append options supply metadata; event fields win', async () => {
    const [write] = await plain.prepare(
      [
        {
          entity: order,
          events: [
            { type: 'placed', data: { amount: 1 } },
            {
              type: 'placed',
              data: { amount: 2 },
              correlationId: 'own-corr',
              schemaVersion: 2,
              meta: { user: 'ann' },
            },
          ],
        },
      ],
      { correlationId: 'corr', causationId: 'cause', traceparent: 'tp' },
    );
    const [first, second] = write!.events.map((e) => new Map(e.headers));
    expect(first!.get('Es-Correlation-Id')).toBe('corr');
    expect(first!.get('Es-Causation-Id')).toBe('cause');
    expect(first!.get('traceparent')).toBe('tp');
    expect(first!.has('Es-Schema-Version')).toBe(false);
    expect(second!.get('Es-Correlation-Id')).toBe('own-corr');
    expect(second!.get('Es-Causation-Id')).toBe('cause');
    expect(second!.get('Es-Schema-Version')).toBe('2');
    expect(second!.get('Es-Meta-user')).toBe('ann');
  });

  test('undefined data is stored as null', async () => {
    const format = new EventFormat<{ ping: undefined }>(scheme, { codec: jsonCodec });
    const [write] = await format.prepare([{ entity: order, events: [{ type: 'ping', data: undefined }] }]);
    expect(new TextDecoder().decode(write!.events[0]!.data)).toBe('null');
  });

  test('the same event id twice in one append is a ValidationError', async () => {
    const sameWrite = rejection(
      plain.prepare([
        {
          entity: order,
          events: [
            { type: 'placed', data: { amount: 1 }, id: 'dup' },
            { type: 'placed', data: { amount: 2 }, id: 'dup' },
          ],
        },
      ]),
    );
    const acrossWrites = rejection(
      plain.prepare([
        { entity: order, events: [{ type: 'placed', data: { amount: 1 }, id: 'dup' }] },
        {
          entity: { type: 'order', id: 'o-2' },
          events: [{ type: 'placed', data: { amount: 1 }, id: 'dup' }],
        },
      ]),
    );
    for (const err of [await sameWrite, await acrossWrites]) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as Error).message).toContain('"dup"');
    }
  });

  test('the same entity twice is an InvalidArgumentError', async () => {
    const err = await rejection(
      plain.prepare([
        { entity: order, events: [{ type: 'placed', data: { amount: 1 } }] },
        { entity: { type: 'cart', id: 'o-1' }, events: [{ type: 'placed', data: { amount: 1 } }] },
        { entity: { ...order }, events: [{ type: 'shipped', data: { carrier: 'x' } }] },
      ]),
    );
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toContain('order/o-1');
    expect((err as Error).message).toMatch(/twice/);
  });

  test('a write without events, or no write at all, is an InvalidArgumentError', async () => {
    expect(await rejection(plain.prepare([]))).toBeInstanceOf(InvalidArgumentError);
    const err = await rejection(plain.prepare([{ entity: order, events: [] }]));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toContain('order/o-1');
  });

  test.each<[string, unknown]>([
    ['-1', -1],
    ['1.5', 1.5],
    ["'old'", 'old'],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['a numeric string', '3'],
  ])('expect %s is an InvalidArgumentError', async (_label, expect_) => {
    const write: EntityWrite<Events> = {
      entity: order,
      expect: expect_ as ExpectedVersion,
      events: [{ type: 'placed', data: { amount: 1 } }],
    };
    const err = await rejection(plain.prepare([write]));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).argument).toBe('expect');
  });

  test('bad addresses and metadata fail before anything is returned', async () => {
    await expect(
      plain.prepare([
        { entity: { type: 'order', id: '' }, events: [{ type: 'placed', data: { amount: 1 } }] },
      ]),
    ).rejects.toThrow(/invalid entity id/);
    await expect(
      plain.prepare([
        { entity: order, events: [{ type: 'placed', data: { amount: 1 }, meta: { 'a b': 'x' } }] },
      ]),
    ).rejects.toThrow(/invalid meta key/);
    await expect(
      plain.prepare([
        { entity: order, events: [{ type: 'placed', data: { amount: 1 }, causationId: 'a\nb' }] },
      ]),
    ).rejects.toThrow(InvalidArgumentError);
  });

  describe.each([
    ['sync', validated],
    ['async', validatedAsync],
  ])('with %s schemas', (_label, format) => {
    test('stores the validated value', async () => {
      const data = { amount: 5, extra: 'dropped' } as unknown as { amount: number };
      const [write] = await format.prepare([{ entity: order, events: [{ type: 'placed', data }] }]);
      expect(new TextDecoder().decode(write!.events[0]!.data)).toBe('{"amount":5}');
    });

    test('failing data is a ValidationError carrying the issues', async () => {
      const err = await rejection(
        format.prepare([{ entity: order, events: [{ type: 'placed', data: { amount: -1 } }] }]),
      );
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).eventType).toBe('placed');
      expect((err as ValidationError).issues).toEqual([
        { message: 'amount must be positive', path: ['amount'] },
      ]);
      expect((err as Error).message).toContain('amount: amount must be positive');
    });

    test('in an append of several events, the error says which one failed; alone, it needs not', async () => {
      const err = await rejection(
        format.prepare([
          {
            entity: order,
            events: [
              { type: 'placed', data: { amount: 1 } },
              { type: 'placed', data: { amount: -1 } },
            ],
          },
        ]),
      );
      expect((err as Error).message).toMatch(/^placed \(event #2 of 2, for order\/o-1\) is invalid: amount/);
      const alone = await rejection(
        format.prepare([{ entity: order, events: [{ type: 'placed', data: { amount: -1 } }] }]),
      );
      expect((alone as Error).message).toMatch(/^placed is invalid/);
    });

    test('a validator that throws is a ValidationError keeping the error', async () => {
      const err = await rejection(
        throwing(format === validatedAsync).prepare([
          { entity: order, events: [{ type: 'placed', data: { amount: 1 } }] },
        ]),
      );
      expect(err).toBeInstanceOf(ValidationError);
      expect(err).toMatchObject({ eventType: 'placed', cause: boom });
      expect((err as Error).message).toBe(
        'placed is invalid: its validator threw: validator bug. Nothing was written.',
      );
    });

    test('an unknown event type is a ValidationError', async () => {
      const event = { type: 'refunded', data: {} } as never;
      const err = await rejection(format.prepare([{ entity: order, events: [event] }]));
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).eventType).toBe('refunded');
      expect((err as Error).message).toContain('placed, shipped');
    });
  });
});

describe('wireEvents', () => {
  test("only an append's first message names the stream, and the name counts toward max_payload", async () => {
    const placed = { type: 'placed' as const, data: { amount: 1 } };
    const prepared = await plain.prepare([
      { entity: order, expect: 'new', events: [placed, placed] },
      { entity: { type: 'order', id: 'o-2' }, expect: 'new', events: [placed] },
    ]);
    const named = wireEvents(prepared, Infinity, 'EVENTS').map((w) =>
      new Map(w.headers).get('Nats-Expected-Stream'),
    );
    expect(named).toEqual(['EVENTS', undefined, undefined]);
    const size = (stream?: string) =>
      (thrown(() => wireEvents(prepared, 1, stream)) as PayloadTooLargeError).size;
    expect(size('EVENTS') - size()).toBe('Nats-Expected-Stream: EVENTS\r\n'.length);
  });

  test("each event of an append but its entity's last says how many of the entity's follow", async () => {
    const placed = { type: 'placed' as const, data: { amount: 1 } };
    const other = { type: 'order', id: 'o-2' };
    const prepared = await plain.prepare([
      { entity: order, events: [placed, placed, placed] },
      { entity: other, events: [placed] },
    ]);
    const following = wireEvents(prepared, Infinity).map((w) =>
      new Map(w.headers).get('Es-Append-Following'),
    );
    expect(following).toEqual(['2', '1', undefined, undefined]);
    // It counts toward max_payload like every header: the first messages of these two
    // atomic appends differ by that header alone.
    const firstSize = async (writes: Parameters<typeof plain.prepare>[0]) => {
      const wire = await plain.prepare(writes);
      return (thrown(() => wireEvents(wire, 1)) as PayloadTooLargeError).size;
    };
    const withHeader = await firstSize([{ entity: order, events: [placed, placed] }]);
    const without = await firstSize([
      { entity: order, events: [placed] },
      { entity: other, events: [placed] },
    ]);
    expect(withHeader - without).toBe('Es-Append-Following: 1\r\n'.length);
  });
});

describe('EventFormat.decode', () => {
  test('a prepared event decodes back to its envelope', async () => {
    const [write] = await plain.prepare(
      [
        {
          entity: order,
          events: [
            {
              type: 'placed',
              data: { amount: 3 },
              id: 'ev-1',
              schemaVersion: 2,
              meta: { user: 'ann' },
            },
          ],
        },
      ],
      { correlationId: 'corr' },
    );
    const event = write!.events[0]!;
    const envelope = plain.decode(fromPrepared(event, 42));
    expect(envelope).not.toBeInstanceOf(Promise);
    expect(envelope).toMatchObject({
      id: 'ev-1',
      type: 'placed',
      data: { amount: 3 },
      entity: order,
      tenant: 'acme',
      sequence: 42,
      subject: 'es.acme.order.o-1.placed',
      correlationId: 'corr',
      schemaVersion: 2,
      meta: { user: 'ann' },
    });
    const time = (envelope as { time: Date }).time;
    expect(time).toBeInstanceOf(Date);
    expect(time.toISOString()).toBe(new Map(event.headers).get('Es-Time'));
  });

  test('a hand-built message with encoded tokens and no headers', () => {
    const envelope = plain.decode(stored('es.acme.order.a=2Eb=20c.placed', bytes('{"amount":1}'), [], 9));
    expect(envelope).toMatchObject({
      id: 'seq-9',
      type: 'placed',
      data: { amount: 1 },
      entity: { type: 'order', id: 'a.b c' },
      tenant: 'acme',
      sequence: 9,
      meta: {},
    });
    // No time header: the time the server stored it.
    expect((envelope as { time: Date }).time.getTime()).toBe(STORED_AT);
  });

  test('a time or schema version header that is not one makes the event malformed, never a made-up value', () => {
    const subject = 'es.acme.order.o-1.placed';
    const data = bytes('{"amount":1}');
    const cases: Array<[string, StoredMessage, RegExp]> = [
      [
        'garbage time',
        stored(subject, data, [[Header.Time, 'yesterday']]),
        /Es-Time "yesterday" is not a time/,
      ],
      ['no time, none known', stored(subject, data, [], 1, null), /no Es-Time header/],
      [
        'fractional schema version',
        stored(subject, data, [
          [Header.Time, new Date(STORED_AT).toISOString()],
          [Header.SchemaVersion, '1.5'],
        ]),
        /Es-Schema-Version "1.5" is not a whole number/,
      ],
    ];
    for (const [label, msg, detail] of cases) {
      const err = thrown(() => plain.decode(msg));
      expect(err, label).toBeInstanceOf(MalformedEventError);
      expect((err as MalformedEventError).reason, label).toBe('metadata');
      expect((err as Error).message, label).toMatch(detail);
    }
  });

  test('bad JSON is a MalformedEventError "json" with the raw bytes and sequence', () => {
    const raw = bytes('{"amount":');
    const err = thrown(() => plain.decode(stored('es.acme.order.o-1.placed', raw, [], 17)));
    expect(err).toBeInstanceOf(MalformedEventError);
    const malformed = err as MalformedEventError;
    expect(malformed.reason).toBe('json');
    expect(malformed.raw).toBe(raw);
    expect(malformed.sequence).toBe(17);
    expect(malformed.subject).toBe('es.acme.order.o-1.placed');
    expect(malformed.cause).toBeInstanceOf(SyntaxError);
    expect(malformed.message).toContain('#17');
  });

  test('bytes a codec of your own cannot decode are a MalformedEventError "codec", not "json"', () => {
    const refusing = {
      encode: jsonCodec.encode,
      decode: () => {
        throw new Error('not msgpack');
      },
    };
    const custom = new EventFormat<Events>(scheme, { codec: refusing });
    const err = thrown(() => custom.decode(stored('es.acme.order.o-1.placed', bytes('\x01'), [], 5)));
    expect(err).toBeInstanceOf(MalformedEventError);
    expect((err as MalformedEventError).reason).toBe('codec');
    expect((err as Error).message).toMatch(/\(codec\): not msgpack/);
  });

  test.each([
    ['wrong prefix', 'other.acme.order.o-1.placed'],
    ['wrong token count', 'es.acme.order.placed'],
    ['bad encoding', 'es.acme.order.o=zz.placed'],
  ])('a foreign subject (%s) is a MalformedEventError "subject"', (_label, subject) => {
    const raw = bytes('{"amount":1}');
    const err = thrown(() => plain.decode(stored(subject, raw, [], 3)));
    expect(err).toBeInstanceOf(MalformedEventError);
    expect((err as MalformedEventError).reason).toBe('subject');
    expect((err as MalformedEventError).raw).toBe(raw);
    expect((err as MalformedEventError).subject).toBe(subject);
    expect((err as MalformedEventError).cause).toBeInstanceOf(InvalidTokenError);
  });

  test('the subject is checked before the payload', () => {
    const err = thrown(() => plain.decode(stored('nope', bytes('{bad'))));
    expect((err as MalformedEventError).reason).toBe('subject');
  });

  test('sync schemas decode synchronously and use the validated value', () => {
    const envelope = validated.decode(stored('es.acme.order.o-1.placed', bytes('{"amount":2,"x":1}')));
    expect(envelope).not.toBeInstanceOf(Promise);
    expect((envelope as { data: unknown }).data).toEqual({ amount: 2 });
  });

  test('async schemas decode to a Promise', async () => {
    const envelope = validatedAsync.decode(stored('es.acme.order.o-1.placed', bytes('{"amount":2}')));
    expect(envelope).toBeInstanceOf(Promise);
    await expect(envelope).resolves.toMatchObject({ type: 'placed', data: { amount: 2 } });
  });

  test('an event type missing from the schemas is "unknown-type"', () => {
    const err = thrown(() => validated.decode(stored('es.acme.order.o-1.refunded', bytes('{}'), [], 4)));
    expect(err).toBeInstanceOf(MalformedEventError);
    expect((err as MalformedEventError).reason).toBe('unknown-type');
    expect((err as Error).message).toContain('refunded');
  });

  test('data failing a sync schema is "validation"', () => {
    const raw = bytes('{"amount":-5}');
    const err = thrown(() => validated.decode(stored('es.acme.order.o-1.placed', raw, [], 5)));
    expect(err).toBeInstanceOf(MalformedEventError);
    expect((err as MalformedEventError).reason).toBe('validation');
    expect((err as MalformedEventError).raw).toBe(raw);
    expect((err as Error).message).toContain('amount must be positive');
  });

  test('data failing an async schema rejects with "validation"', async () => {
    const err = await rejection(
      Promise.resolve(
        validatedAsync.decode(stored('es.acme.order.o-1.placed', bytes('{"amount":0}'), [], 6)),
      ),
    );
    expect(err).toBeInstanceOf(MalformedEventError);
    expect((err as MalformedEventError).reason).toBe('validation');
    expect((err as MalformedEventError).sequence).toBe(6);
  });

  test.each([
    ['throws', false],
    ['rejects', true],
  ])(
    'a validator that %s makes the event malformed ("validation"), keeping the error',
    async (_label, async) => {
      const raw = bytes('{"amount":2}');
      const err = await rejection(
        Promise.resolve().then(() => throwing(async).decode(stored('es.acme.order.o-1.placed', raw, [], 7))),
      );
      expect(err).toBeInstanceOf(MalformedEventError);
      expect(err).toMatchObject({ reason: 'validation', sequence: 7, raw, cause: boom });
      expect((err as Error).message).toContain('its validator threw: validator bug');
    },
  );

  test('without schemas any event type decodes', () => {
    const envelope = plain.decode(stored('es.acme.order.o-1.refunded', bytes('[1]')));
    expect(envelope).toMatchObject({ type: 'refunded', data: [1] });
  });
});

describe('tokens that also travel in headers', () => {
  test('a tenant the Es-Tenant header cannot carry as it is is refused when the store is made', () => {
    for (const tenant of [' acme', 'acme ', 'a\nb'])
      expect(() => new EventFormat(new SubjectScheme('es', tenant), { codec: jsonCodec })).toThrow(
        InvalidTokenError,
      );
  });

  test('so is an event type the Es-Type header cannot carry, before anything is sent', async () => {
    const format = new EventFormat<Record<string, unknown>>(scheme, { codec: jsonCodec });
    for (const type of ['placed ', ' placed', 'pla\r\nced']) {
      const err = await format
        .prepare([{ entity: order, events: [{ type, data: {} }] }])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidTokenError);
      expect((err as Error).message).toMatch(/^invalid event type .*travels in a header/);
    }
  });
});
