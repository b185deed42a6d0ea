import { describe, expect, test } from 'vitest';
import { UnavailableError } from '../../src/errors.js';
import { reachingLast } from '../../src/store/jetstream/reaching.js';

type Item = { sequence: number };

/** Pages of the stored sequences in (after, until], two at a time; `shortBy` drops the tail of the first pass. */
function source(stored: number[], until: number, shortBy = [0]) {
  const passes: number[] = [];
  const pages = async function* (after: number): AsyncGenerator<Item[]> {
    const cut = shortBy[passes.length] ?? 0;
    passes.push(after);
    const items = stored.filter((s) => s > after && s <= until).map((sequence) => ({ sequence }));
    const served = items.slice(0, items.length - cut);
    for (let i = 0; i < served.length; i += 2) yield served.slice(i, i + 2);
  };
  return { pages, passes };
}

async function read(stored: number[], options: { after?: number; until?: number; shortBy?: number[] } = {}) {
  const { after = 0, until = Number.MAX_SAFE_INTEGER, shortBy } = options;
  const waits = [1, 1, 1];
  const { pages, passes } = source(stored, until, shortBy);
  const seen: number[] = [];
  const end = {
    next: async (from: number) => stored.find((s) => s > from),
    last: async () => stored.at(-1) ?? 0,
  };
  for await (const page of reachingLast(pages(after), pages, end, 'es.t.*.*.*', after, until, waits))
    seen.push(...page.map((i) => i.sequence));
  return { seen, passes };
}

describe('reachingLast', () => {
  test('a read that reaches the last event takes one pass', async () => {
    expect(await read([2, 4, 5, 9])).toEqual({ seen: [2, 4, 5, 9], passes: [0] });
    expect(await read([])).toEqual({ seen: [], passes: [0] });
  });

  test('a read the server ends short is asked again from where it stopped', async () => {
    expect(await read([2, 4, 5, 9], { shortBy: [2] })).toEqual({ seen: [2, 4, 5, 9], passes: [0, 4] });
    // Ending at once (an empty first answer) is no different.
    expect(await read([3, 7], { shortBy: [2] })).toEqual({ seen: [3, 7], passes: [0, 0] });
  });

  test('a read short again (a replica still catching up) is asked again after each wait', async () => {
    expect(await read([2, 4, 5, 9], { shortBy: [2, 1, 1] })).toEqual({
      seen: [2, 4, 5, 9],
      passes: [0, 4, 5, 5],
    });
  });

  test('a read still short after every wait fails instead of ending as if complete', async () => {
    const err = await read([2, 4, 5, 9], { shortBy: [2, 1, 1, 1, 1] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as Error).message).toMatch(/stopped at 5, though event 9 follows/);
  });

  test('until bounds what must be reached, whether or not an event sits on it', async () => {
    expect(await read([2, 4, 5, 9], { until: 5 })).toEqual({ seen: [2, 4, 5], passes: [0] });
    expect(await read([2, 4, 9], { until: 7 })).toEqual({ seen: [2, 4], passes: [0] });
    expect(await read([2, 4, 6, 9], { until: 7, shortBy: [1] })).toEqual({ seen: [2, 4, 6], passes: [0, 4] });
    expect(await read([2, 4, 5, 9], { after: 4, until: 5, shortBy: [1] })).toEqual({
      seen: [5],
      passes: [4, 4],
    });
  });

  test('events appended while reading are welcome, not required', async () => {
    const stored = [1, 2, 3];
    const { pages } = source(stored, Number.MAX_SAFE_INTEGER);
    const end = {
      next: async (from: number) => stored.find((s) => s > from),
      last: async () => stored.at(-1) ?? 0,
    };
    const seen: number[] = [];
    for await (const page of reachingLast(pages(0), pages, end, 'es.t.*.*.*', 0, Number.MAX_SAFE_INTEGER)) {
      seen.push(...page.map((i) => i.sequence));
      // A writer keeps appending while the reader works through each page.
      stored.push(stored.at(-1)! + 1);
    }
    expect(seen.slice(0, 3)).toEqual([1, 2, 3]);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
  });
});
