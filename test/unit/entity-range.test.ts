import { describe, expect, test } from 'vitest';
import type { DirectReader, PendingMessage } from '../../src/store/jetstream/direct.js';
import { UnavailableError } from '../../src/errors.js';
import { entityRange, EventTypeGuess, type SubjectRange } from '../../src/store/jetstream/entity-range.js';
import type { ReadEnd } from '../../src/store/jetstream/reaching.js';

const ENTITY = 'es.t.account.a1.';

/**
 * Direct get over an in-memory stream, as nats-server answers it: pages by literal subject
 * from a sequence, and multi_last listings. `afterListing` stages appends right after a listing.
 */
class FakeDirect {
  readonly log: string[] = [];
  afterListing?: () => void;
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
    this.log.push('listing');
    const last = new Map<string, number>();
    for (const m of this.stored)
      if (m.subject.startsWith(filter.slice(0, -1)) && m.sequence >= from && m.sequence <= (upTo ?? Infinity))
        last.set(m.subject, m.sequence);
    const listed = [...last].map(
      ([subject, sequence]) => ({ subject, sequence, pending: 0 }) as PendingMessage,
    );
    this.afterListing?.();
    return listed;
  }

  /** What follows a read of `filter` in this stream, as DirectReader.readEnd answers it. */
  readEnd(filter: string): ReadEnd {
    const matching = () => this.stored.filter((m) => m.subject.startsWith(filter.slice(0, -1)));
    return {
      next: async (after) => matching().find((m) => m.sequence > after)?.sequence,
      last: async () => matching().at(-1)?.sequence ?? 0,
    };
  }

  /** The pages a real range makes, bounded by `until`. */
  range: SubjectRange = async function* (this: FakeDirect, subject: string, after: number, until: number) {
    let next = after + 1;
    for (;;) {
      const page = (await this.page(subject, next, 2)).filter((m) => m.sequence <= until);
      if (page.length === 0) return;
      yield page;
      // As DirectReader.range: nothing more was pending when the page was read.
      if (page.at(-1)!.pending === 0) return;
      next = page.at(-1)!.sequence + 1;
    }
  }.bind(this);
}

async function read(
  direct: FakeDirect,
  after = 0,
  until = Number.MAX_SAFE_INTEGER,
  guess?: EventTypeGuess,
  entity = ENTITY,
) {
  const out: string[] = [];
  for await (const chunk of entityRange(
    direct as unknown as DirectReader,
    direct.range,
    `${entity}*`,
    after,
    until,
    guess,
  ))
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
  test('lists the entity’s subjects, then reads each and merges them in sequence order', async () => {
    const direct = stream();
    expect(await read(direct)).toEqual(expected(direct));
    expect(direct.log[0]).toBe('listing');
    // Every page is on a literal subject, never the wildcard.
    expect(direct.log.filter((line) => line.startsWith('page')).every((line) => !line.includes('*'))).toBe(
      true,
    );
  });

  test('bounds are exact', async () => {
    const direct = stream();
    for (const [after, until] of [
      [0, 5],
      [3, 9],
      [4, 4],
      [13, 100],
    ] as const)
      expect(await read(direct, after, until), `(${after}, ${until}]`).toEqual(
        expected(direct, after, until),
      );
  });

  test('an event appended after the listing is left for the next read', async () => {
    const direct = stream();
    direct.afterListing = () => direct.append(`${ENTITY}Deposited`);
    expect(await read(direct)).toEqual(expected(direct, 0, 14));
  });

  test('an empty range asks the server nothing', async () => {
    const direct = stream();
    expect(await read(direct, 5, 5)).toEqual([]);
    expect(await read(direct, 0, 0)).toEqual([]);
    expect(direct.log).toEqual([]);
  });

  test('a subject read that stops short of its listed last sequence fails instead of leaving a hole', async () => {
    const direct = stream();
    // A replica behind the one that answered the listing: it does not have sequence 13 yet.
    const page = direct.page.bind(direct);
    direct.page = async (subject, seq, batch) =>
      (await page(subject, seq, batch)).filter((m) => m.sequence < 13);
    await expect(read(direct)).rejects.toThrow(UnavailableError);
  });

  test('a subject read cut short once is asked again from where it stopped', async () => {
    const direct = stream();
    const page = direct.page.bind(direct);
    let cut = true;
    direct.page = async (subject, seq, batch) => {
      const answer = await page(subject, seq, batch);
      if (!cut || !answer.some((m) => m.sequence === 13)) return answer;
      cut = false;
      // The server ends the answer early and says nothing is left.
      return answer.filter((m) => m.sequence < 13).map((m) => ({ ...m, pending: 0 }));
    };
    expect(await read(direct)).toEqual(await read(stream()));
  });

  test('more subjects than one listing holds: the wildcard is read after all', async () => {
    const direct = stream();
    direct.lastPerSubject = async () => null;
    const ranges: string[] = [];
    const range: SubjectRange = async function* (subject, after, until) {
      ranges.push(subject);
      yield direct.stored
        .filter((m) => m.subject.startsWith(ENTITY) && m.sequence > after && m.sequence <= until)
        .map((m) => ({ ...m, pending: 0 }) as PendingMessage);
    };
    const read: number[] = [];
    for await (const chunk of entityRange(direct as unknown as DirectReader, range, `${ENTITY}*`, 0, 10))
      read.push(...chunk.map((m) => m.sequence));
    expect(ranges).toEqual([`${ENTITY}*`]);
    expect(read).toEqual(
      direct.stored.filter((m) => m.subject.startsWith(ENTITY) && m.sequence <= 10).map((m) => m.sequence),
    );

    // Cut short by the server, the wildcard read is asked again too.
    ranges.length = 0;
    let cut = true;
    const shortOnce: SubjectRange = async function* (subject, after, until) {
      for await (const page of range(subject, after, until))
        yield cut ? ((cut = false), page.slice(0, 1)) : page;
    };
    const again: number[] = [];
    for await (const chunk of entityRange(direct as unknown as DirectReader, shortOnce, `${ENTITY}*`, 0, 10))
      again.push(...chunk.map((m) => m.sequence));
    expect(again).toEqual(read);
    expect(ranges).toEqual([`${ENTITY}*`, `${ENTITY}*`]);
  });

  describe('with the event types of earlier reads', () => {
    test('a read of another entity of the type starts on those subjects before its listing', async () => {
      const direct = stream();
      const guess = new EventTypeGuess();
      await read(direct, 0, Number.MAX_SAFE_INTEGER, guess);
      direct.log.length = 0;
      const other = 'es.t.account.a2.';
      const result = await read(direct, 0, Number.MAX_SAFE_INTEGER, guess, other);
      expect(result).toEqual(
        direct.stored
          .filter((m) => m.subject.startsWith(other))
          .map((m) => `${m.sequence} ${m.subject.slice(ENTITY.length)}`),
      );
      const listing = direct.log.indexOf('listing');
      expect(direct.log.slice(0, listing).sort()).toEqual(
        ['Deposited', 'Opened', 'Withdrawn'].map((t) => `page ${t} from 1`),
      );
    });

    test('events past the listing are cut from guessed reads, so the read stays a prefix', async () => {
      const direct = stream();
      const guess = new EventTypeGuess();
      await read(direct, 0, Number.MAX_SAFE_INTEGER, guess);
      const before = expected(direct);
      direct.afterListing = () => direct.append(`${ENTITY}Deposited`);
      expect(await read(direct, 0, Number.MAX_SAFE_INTEGER, guess)).toEqual(before);
    });

    test('wrong guesses change nothing, and the listing’s subjects are still all read', async () => {
      const direct = stream();
      const guess = new EventTypeGuess();
      guess.learn(`${ENTITY}*`, [{ subject: `${ENTITY}Closed` }, { subject: `${ENTITY}Frozen` }]);
      expect(await read(direct, 0, Number.MAX_SAFE_INTEGER, guess)).toEqual(expected(direct));
      expect(guess.likely(`${ENTITY}*`).map((s) => s.slice(ENTITY.length))).toEqual([
        'Opened',
        'Deposited',
        'Withdrawn',
      ]);
    });

    test('an event appended between a guessed read and the listing is read, not taken for a lag', async () => {
      const direct = stream();
      const guess = new EventTypeGuess();
      await read(direct, 0, Number.MAX_SAFE_INTEGER, guess);
      // The guessed page of Withdrawn is answered before this append; the listing after it.
      const lastPerSubject = direct.lastPerSubject.bind(direct);
      direct.lastPerSubject = async (filter, from, upTo) => {
        direct.append(`${ENTITY}Withdrawn`);
        return lastPerSubject(filter, from, upTo);
      };
      expect(await read(direct, 0, Number.MAX_SAFE_INTEGER, guess)).toEqual(expected(direct));
    });

    test("guesses the latest entity's types, at most 8, per entity type", () => {
      const guess = new EventTypeGuess();
      guess.learn(`${ENTITY}*`, [{ subject: `${ENTITY}T0` }]);
      guess.learn(
        `${ENTITY}*`,
        Array.from({ length: 12 }, (_, i) => ({ subject: `${ENTITY}U${i}` })),
      );
      expect(guess.likely('es.t.account.zz.*')).toEqual(
        [0, 1, 2, 3, 4, 5, 6, 7].map((i) => `es.t.account.zz.U${i}`),
      );
      expect(guess.likely('es.t.card.c1.*')).toEqual([]);
    });
  });
});
