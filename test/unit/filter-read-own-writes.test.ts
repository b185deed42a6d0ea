import type { NatsConnection } from '@nats-io/nats-core';
import { describe, expect, test } from 'vitest';
import type { StoredMessage } from '../../src/codec/event-format.js';
import { UnavailableError } from '../../src/errors.js';
import { DirectReader, type DirectQuery } from '../../src/store/jetstream/direct.js';
import { OwnAppends } from '../../src/store/jetstream/own-appends.js';
import { reachingLast } from '../../src/store/jetstream/reaching.js';

const FILTER = 'es.t.account.*.*';
const subjectOf = (sequence: number) => `es.t.account.a${sequence}.Opened`;

/**
 * The direct gets of a replica that has the stream up to `has` (each get sees it as it
 * is then), and pages of a read from it: the part of a filter read that decides where
 * the read ends. No connection is used.
 */
class ReplicaBehind extends DirectReader {
  constructor(
    private readonly sequences: number[],
    public has: number,
    own: OwnAppends,
  ) {
    super({} as NatsConnection, 'EVENTS', 1000, undefined, '$JS.API', own);
  }
  private visible = () => this.sequences.filter((s) => s <= this.has);
  private message = (sequence: number) => ({ sequence, subject: subjectOf(sequence) }) as StoredMessage;
  override async get(query: DirectQuery): Promise<StoredMessage | null> {
    const next = this.visible().find((s) => s >= query.seq!);
    return next === undefined ? null : this.message(next);
  }
  override async last(): Promise<StoredMessage | null> {
    const last = this.visible().at(-1);
    return last === undefined ? null : this.message(last);
  }
  async *pagesOf(after: number, until: number): AsyncGenerator<Array<{ sequence: number }>> {
    yield this.visible()
      .filter((s) => s > after && s <= until)
      .map((sequence) => ({ sequence }));
  }
}

/** Reads (after, until] of FILTER from a replica at 3 that catches up after its second wait. */
async function readOwnWrites(after: number, until: number, own: number[]) {
  const appends = new OwnAppends();
  appends.record(own.map((sequence) => ({ sequence, subject: subjectOf(sequence) })));
  const replica = new ReplicaBehind([1, 2, 3, ...own], 3, appends);
  let waited = 0;
  const waits = [1, 1, 1, 1];
  const catchingUp = {
    ...replica.readEnd(FILTER),
    next: async (from: number) => {
      if (++waited === 3) replica.has = Infinity;
      return replica.readEnd(FILTER).next(from);
    },
  };
  const seen: number[] = [];
  const pages = reachingLast(
    replica.pagesOf(after, until),
    (from) => replica.pagesOf(from, until),
    catchingUp,
    FILTER,
    after,
    until,
    waits,
  );
  for await (const page of pages) seen.push(...page.map((m) => m.sequence));
  return seen;
}

describe("a filter read on a replica behind the store's own appends", () => {
  test('reads on until it has them', async () => {
    expect(await readOwnWrites(0, Number.MAX_SAFE_INTEGER, [4, 6])).toEqual([1, 2, 3, 4, 6]);
  });

  test('with `until` between two of them, still reads the one at or before it', async () => {
    expect(await readOwnWrites(0, 4, [4, 6])).toEqual([1, 2, 3, 4]);
    expect(await readOwnWrites(3, 5, [4, 6])).toEqual([4]);
    expect(await readOwnWrites(4, 5, [4, 6])).toEqual([]);
  });

  test('a replica that never catches up fails the read, saying the store appended what is missing', async () => {
    const appends = new OwnAppends();
    appends.record([{ sequence: 5, subject: subjectOf(5) }]);
    const replica = new ReplicaBehind([1, 2, 3, 5], 3, appends);
    const pages = reachingLast(
      replica.pagesOf(0, 10),
      (from) => replica.pagesOf(from, 10),
      replica.readEnd(FILTER),
      FILTER,
      0,
      10,
      [1, 1],
    );
    const err = await (async () => {
      for await (const page of pages) void page;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(
      /stopped at 3, though event 5 follows, which this store appended under 3 s ago \(a replica is behind, or the stream was deleted and made again since\)/,
    );
  });
});
