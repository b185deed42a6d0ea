import type { StandardSchemaV1 } from '@standard-schema/spec';
import { describe, expect, test, vi } from 'vitest';
import { InvalidArgumentError, PayloadTooLargeError } from '../../src/index.js';
import {
  conformanceCases,
  conformanceSchemas,
  createMemoryEventStore,
  type ConformanceHarness,
  type MemoryEventStore,
} from '../../src/testing/index.js';
import type { ConformanceEvents } from '../../src/testing/index.js';

let tenant = 0;
const harness: ConformanceHarness = {
  maxBatch: 50,
  async store({ validated } = {}) {
    return createMemoryEventStore<ConformanceEvents>({
      tenant: `t${tenant++}`,
      maxBatch: 50,
      schemas: validated ? conformanceSchemas : undefined,
    });
  },
  async injectRaw(store, raw) {
    const memory = store as MemoryEventStore<ConformanceEvents>;
    memory.appendRaw({
      subject: memory.format.scheme.event(raw.entity, raw.eventType),
      data: raw.data,
      headers: raw.headers,
    });
  },
};

describe('in-memory store conformance', () => {
  for (const c of conformanceCases) test(c.name, () => c.run(harness));
});

describe('in-memory store limits, as the server keeps them', () => {
  const entity = { type: 'account', id: 'a' };

  test('an event over maxPayload is refused, naming the limit', async () => {
    const store = createMemoryEventStore({ tenant: 't', maxPayload: 1000 });
    const err = await store
      .append(entity, { type: 'Noted', data: { text: 'x'.repeat(1000) } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    expect(err).toMatchObject({ limit: 1000 });
    expect(await store.version(entity)).toBe(0);
    // A write's first event also carries its expectation headers, as on the wire.
    const near = { type: 'Noted', data: { text: 'x'.repeat(800) } };
    await store.append({ type: 'account', id: 'near' }, near);
    await expect(
      store.append({ type: 'account', id: 'near2' }, near, { expect: 'new' }),
    ).rejects.toBeInstanceOf(PayloadTooLargeError);
    // So does the stream it names, as the JetStream store sends it.
    const named = createMemoryEventStore({ tenant: 't', maxPayload: 1000, stream: 'S'.repeat(64) });
    await expect(named.append({ type: 'account', id: 'near' }, near)).rejects.toBeInstanceOf(
      PayloadTooLargeError,
    );
    // The default is nats-server's 1 MiB.
    const big = createMemoryEventStore({ tenant: 't' });
    await expect(
      big.append(entity, { type: 'Noted', data: { text: 'x'.repeat(1024 * 1024) } }),
    ).rejects.toBeInstanceOf(PayloadTooLargeError);
  });

  test('an event id deduplicates only within the duplicate window', async () => {
    vi.useFakeTimers();
    try {
      const store = createMemoryEventStore({ tenant: 't', duplicateWindowMs: 1000 });
      const event = { type: 'Noted', data: {}, id: 'same' };
      const first = await store.append(entity, event);
      vi.advanceTimersByTime(500);
      expect((await store.append(entity, event)).version).toBe(first.version);
      vi.advanceTimersByTime(600);
      // The server has forgotten the id: the append is stored again, as on JetStream.
      expect((await store.append(entity, event)).version).toBe(first.version + 1);
    } finally {
      vi.useRealTimers();
    }
  });

  test('past the window, a retry with its expectation is still recognised, as JetStream recognises it', async () => {
    vi.useFakeTimers();
    try {
      const store = createMemoryEventStore({ tenant: 't', duplicateWindowMs: 1000 });
      const events = [
        { type: 'Noted', data: {}, id: 'w1' },
        { type: 'Noted', data: {}, id: 'w2' },
      ];
      const first = await store.append(entity, events, { expect: 'new' });
      await store.append(entity, { type: 'Noted', data: {} });
      vi.advanceTimersByTime(2000);
      // The expectation fails, and the events sit right after it: this append was stored.
      expect(await store.append(entity, events, { expect: 'new' })).toEqual(first);
      // Anything else at that place is a conflict.
      await expect(
        store.append(entity, { type: 'Noted', data: {}, id: 'other' }, { expect: 'new' }),
      ).rejects.toMatchObject({ code: 'CONCURRENCY', actual: 3 });
    } finally {
      vi.useRealTimers();
    }
  });

  test('a codec must encode to bytes; one that reuses its buffer, or a decoder that writes into it, alters nothing stored', async () => {
    const notBytes = createMemoryEventStore({
      tenant: 't',
      codec: { encode: () => 'text' as unknown as Uint8Array, decode: () => ({}) },
    });
    await expect(notBytes.append(entity, { type: 'Noted', data: {} })).rejects.toThrow(
      /invalid codec: encode returned string, not a Uint8Array/,
    );
    // One shared output buffer, and a decoder that zeroes what it read.
    const shared = new Uint8Array(1);
    const store = createMemoryEventStore<{ Noted: { n: number } }>({
      tenant: 't',
      codec: {
        encode: (data) => {
          shared[0] = (data as { n: number }).n;
          return shared;
        },
        decode: (bytes) => {
          const n = bytes[0]!;
          bytes.fill(0);
          return { n };
        },
      },
    });
    await store.append(entity, [
      { type: 'Noted', data: { n: 22 } },
      { type: 'Noted', data: { n: 3 } },
    ]);
    for (let read = 0; read < 2; read++) {
      const seen: number[] = [];
      for await (const e of store.read(entity)) seen.push(e.data.n);
      expect(seen).toEqual([22, 3]);
    }
  });

  test('a raw message whose Nats-Msg-Id is stored within the window is deduplicated, as a raw publish is', () => {
    const store = createMemoryEventStore({ tenant: 't' });
    const raw = {
      subject: store.format.scheme.event(entity, 'Noted'),
      data: new TextEncoder().encode('{}'),
      headers: [['Nats-Msg-Id', 'dup'] as [string, string]],
    };
    expect(store.appendRaw(raw)).toBe(1);
    expect(store.appendRaw(raw)).toBe(1);
    expect(store.appendRaw({ ...raw, headers: [] })).toBe(2);
  });

  test.each([Number.NaN, 0, -1, 1.5])('maxBatch %s is refused when the store is opened', (maxBatch) => {
    expect(() => createMemoryEventStore({ tenant: 't', maxBatch })).toThrow(/invalid maxBatch/);
  });

  test('a stream name JetStream would refuse is refused when the store is opened', () => {
    expect(() => createMemoryEventStore({ tenant: 't', stream: 'a.b' })).toThrow(/invalid stream/);
  });

  test('version belongs to one entity: a filter is refused', async () => {
    const store = createMemoryEventStore({ tenant: 't' });
    await expect(store.version({ entityType: 'doc' } as never)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  test('a repeated header reads as its first value, as on JetStream', async () => {
    const store = createMemoryEventStore({ tenant: 't' });
    store.appendRaw({
      subject: store.format.scheme.event(entity, 'Noted'),
      data: new TextEncoder().encode('{}'),
      headers: [
        ['Es-Time', new Date().toISOString()],
        ['Es-Meta-k', 'first'],
        ['Es-Meta-a', 'next'],
        ['Es-Meta-k', 'second'],
      ],
    });
    const metas: unknown[] = [];
    for await (const event of store.read(entity)) metas.push(event.meta);
    expect(metas).toEqual([{ k: 'first', a: 'next' }]);
    expect(Object.keys(metas[0] as object)).toEqual(['k', 'a']);
  });
});

describe('options checked as the JetStream store checks them', () => {
  test.each([
    ['maxPayload', { maxPayload: Number.NaN }],
    ['maxPayload', { maxPayload: 0 }],
    ['duplicateWindowMs', { duplicateWindowMs: Number.NaN }],
    ['duplicateWindowMs', { duplicateWindowMs: '2m' as unknown as number }],
  ] as const)('%s %o is refused, not a limit switched off', (name, option) => {
    expect(() => createMemoryEventStore({ tenant: 't', ...option })).toThrow(
      new RegExp(`^invalid ${name} .*: use an integer >=`),
    );
  });
});

describe('dates in event data', () => {
  type Events = { Scheduled: { at: Date } };
  const entity = { type: 'meeting', id: 'm' };
  const at = new Date('2026-11-24T09:30:00.000Z');

  test('JSON stores a Date as its ISO string, so without a schema it reads back as one', async () => {
    const store = createMemoryEventStore<Events>({ tenant: 't' });
    await store.append(entity, { type: 'Scheduled', data: { at } });
    const { state } = await store.load(entity, { initial: null as unknown, evolve: (_, e) => e.data.at });
    expect(state).toBe(at.toISOString());
  });

  test('a schema that turns the string back into a Date makes the type true on read', async () => {
    // What zod's z.object({ at: z.coerce.date() }) does, as a plain Standard Schema.
    const scheduled: StandardSchemaV1<unknown, { at: Date }> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: (v) => {
          const when = new Date((v as { at?: string | Date }).at ?? NaN);
          return Number.isNaN(when.getTime())
            ? { issues: [{ message: 'at must be a date' }] }
            : { value: { at: when } };
        },
      },
    };
    const store = createMemoryEventStore<Events>({ tenant: 't', schemas: { Scheduled: scheduled } });
    await store.append(entity, { type: 'Scheduled', data: { at } });
    const { state } = await store.load(entity, { initial: null as Date | null, evolve: (_, e) => e.data.at });
    expect(state).toBeInstanceOf(Date);
    expect(state).toEqual(at);
  });
});
