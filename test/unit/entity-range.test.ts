import { describe, expect, test } from 'vitest';
import type { DirectReader, PendingMessage } from '../../src/store/jetstream/direct.js';
import { UnavailableError } from '../../src/errors.js';
import { entityRange, EventTypeMemory, type SubjectRange } from '../../src/store/jetstream/entity-range.js';

const ENTITY = 'es.t.account.a1.';

/**
 * Direct get over an in-memory stream, as nats-server answers it: pages by literal subject
 * from a sequence, and multi_last listings. `beforeListing` runs between the pages asked
 * for early and the listing's answer, to stage appends in that window.
 */
class FakeDirect {
  readonly log: string[] = [];
  beforeListing?: () => void;
  constructor(public stored: { sequence: number; subject: string }[]) {}

  append(subject: string): void {
    this.stored.push({ sequence: this.stored.length + 1, subject });
  }

  async page(subject: string, seq: number, batch: number): Promise<PendingMessage[]> {
    this.log.push(`page ${subject.slice(ENTITY.length)} from ${seq}`);
    const matching = this.stored.filter((m) => m.subject === subject && m.sequence >= seq);
    return matching
      .slice(0, batch)
      .map((m, i) => ({ ...m, pending: matching.length - 1 - i }) as PendingMessage);
  }

  async lastPerSubject(filter: string, from: number, upTo?: number): Promise<PendingMessage[] | null> {
    await Promise.resolve();
    this.beforeListing?.();
    this.log.push('listing');
    const last = new Map<string, number>();
    for (const m of this.stored)
      if (m.subject.startsWith(filter.slice(0, -1)) && m.sequence >= from && m.sequence <= (upTo ?? Infinity))
        last.set(m.subject, m.sequence);
    return [...last].map(([subject, sequence]) => ({ subject, sequence, pending: 0 }) as PendingMessage);
  }

  /** The pages a real range makes, bounded by `until`. */
  range: SubjectRange = async function* (this: FakeDirect, subject: string, after: number, until: number) {
    let next = after + 1;
    for (;;) {
      const page = (await this.page(subject, next, 2)).filter((m) => m.sequence <= until);
      if (page.length === 0) return;
      yield page;
      next = page.at(-1)!.sequence + 1;
    }
  }.bind(this);
}

async function read(direct: FakeDirect, memory: EventTypeMemory, after = 0, until = Number.MAX_SAFE_INTEGER) {
  const read = {
    direct: direct as unknown as DirectReader,
    range: direct.range,
    pageSize: 2,
    eventTypes: memory,
  };
  const out: string[] = [];
  for await (const chunk of entityRange(read, 'account', `${ENTITY}*`, after, until))
    for (const m of chunk) out.push(`${m.sequence} ${m.subject.slice(ENTITY.length)}`);
  return out;
}

/** The entity's own messages in the stored stream, as a read must return them. */
const expected = (direct: FakeDirect, after = 0, until = Infinity) =>
  direct.stored
    .filter((m) => m.subject.startsWith(ENTITY) && m.sequence > after && m.sequence <= until)
    .map((m) => `${m.sequence} ${m.subject.slice(ENTITY.length)}`);

function stream(): FakeDirect {
  const direct = new FakeDirect([]);
  for (const type of [
    'Opened',
    'Deposited',
    'Deposited',
    'Withdrawn',
    'Deposited',
    'Deposited',
    'Withdrawn',
  ]) {
    direct.append(`${ENTITY}${type}`);
    direct.append(`es.t.account.a2.${type}`);
  }
  return direct;
}

describe('entityRange', () => {
  test('first read lists, then reads each subject; the next read asks for known types with the listing', async () => {
    const direct = stream();
    const memory = new EventTypeMemory();
    expect(await read(direct, memory)).toEqual(expected(direct));
    expect(direct.log[0]).toBe('listing');
    direct.log.length = 0;
    expect(await read(direct, memory)).toEqual(expected(direct));
    expect(direct.log.slice(0, 4)).toEqual([
      'page Opened from 1',
      'page Deposited from 1',
      'page Withdrawn from 1',
      'listing',
    ]);
  });

  test('bounds apply to early pages too', async () => {
    const direct = stream();
    const memory = new EventTypeMemory();
    await read(direct, memory);
    for (const [after, until] of [
      [0, 5],
      [3, 9],
      [4, 4],
      [13, 100],
    ] as const)
      expect(await read(direct, memory, after, until), `(${after}, ${until}]`).toEqual(
        expected(direct, after, until),
      );
  });

  test('a guessed type the entity lacks is ignored; a type never seen before is read once listed', async () => {
    const direct = stream();
    const memory = new EventTypeMemory();
    memory.learn('account', ['Closed']);
    direct.append(`${ENTITY}Frozen`);
    expect(await read(direct, memory)).toEqual(expected(direct));
    expect(direct.log).toContain('page Closed from 1');
    expect(direct.log).toContain('page Frozen from 1');
  });

  test('an event appended between the early pages and the listing is read', async () => {
    const direct = stream();
    const memory = new EventTypeMemory();
    await read(direct, memory);
    direct.beforeListing = () => {
      direct.append(`${ENTITY}Deposited`);
      direct.append(`${ENTITY}Opened`);
    };
    const result = await read(direct, memory);
    expect(result).toEqual(expected(direct));
    expect(result.slice(-2)).toEqual(['15 Deposited', '16 Opened']);
  });

  test('an empty range asks the server nothing', async () => {
    const direct = stream();
    expect(await read(direct, new EventTypeMemory(), 5, 5)).toEqual([]);
    expect(await read(direct, new EventTypeMemory(), 0, 0)).toEqual([]);
    expect(direct.log).toEqual([]);
  });

  test('a subject read that stops short of its listed last sequence fails instead of leaving a hole', async () => {
    const direct = stream();
    // A replica behind the one that answered the listing: it does not have sequence 13 yet.
    const page = direct.page.bind(direct);
    direct.page = async (subject, seq, batch) =>
      (await page(subject, seq, batch)).filter((m) => m.sequence < 13);
    await expect(read(direct, new EventTypeMemory())).rejects.toThrow(UnavailableError);
  });

  test('more subjects than one listing holds: the wildcard is read after all', async () => {
    const direct = stream();
    direct.lastPerSubject = async () => null;
    const ranges: string[] = [];
    const range: SubjectRange = async function* (subject) {
      ranges.push(subject);
      yield [];
    };
    const out = [];
    const args = {
      direct: direct as unknown as DirectReader,
      range,
      pageSize: 2,
      eventTypes: new EventTypeMemory(),
    };
    for await (const chunk of entityRange(args, 'account', `${ENTITY}*`, 0, 10)) out.push(chunk);
    expect(ranges).toEqual([`${ENTITY}*`]);
  });

  test('memory stops guessing for types with many event types, and stays bounded', () => {
    const memory = new EventTypeMemory();
    memory.learn('a', ['X', 'Y']);
    expect(memory.likely('a')).toEqual(['X', 'Y']);
    memory.learn(
      'b',
      Array.from({ length: 40 }, (_, i) => `T${i}`),
    );
    expect(memory.likely('b')).toEqual([]);
    for (let i = 0; i < 300; i++) memory.learn(`type${i}`, ['E']);
    expect(memory.likely('type299')).toEqual(['E']);
    expect(memory.likely('a')).toEqual([]);
  });
});
