import { describe, expect, test } from 'vitest';
import type { PendingMessage } from '../../src/store/jetstream/direct.js';
import { mergeBySequence } from '../../src/store/jetstream/merge-by-sequence.js';
import { int, prng } from '../support/random.js';

/** A paged source over these sequences, each message counting what follows it, as the server does. */
function source(sequences: number[], pageSize: number, log: string[] = [], name = '') {
  const messages = sequences.map((sequence, i) => ({ sequence, pending: sequences.length - 1 - i }));
  return {
    async *[Symbol.asyncIterator]() {
      try {
        for (let at = 0; at < messages.length; at += pageSize) {
          log.push(`${name} page ${at / pageSize}`);
          // Fresh objects per page, as a reader gets from the wire.
          yield messages.slice(at, at + pageSize).map((m) => ({ ...m }) as unknown as PendingMessage);
        }
      } finally {
        log.push(`${name} closed`);
      }
    },
  };
}

async function drain(chunks: AsyncIterable<PendingMessage[]>) {
  const out: { sequence: number; pending: number }[] = [];
  for await (const chunk of chunks)
    for (const m of chunk) out.push({ sequence: m.sequence, pending: m.pending });
  return out;
}

describe('mergeBySequence', () => {
  test('random partitions merge into one ascending run, pending counting down to zero', async () => {
    const rand = prng(21);
    for (let round = 0; round < 200; round++) {
      const total = int(rand, 1, 300);
      const parts: number[][] = Array.from({ length: int(rand, 1, 6) }, () => []);
      let sequence = 0;
      for (let i = 0; i < total; i++) {
        sequence += int(rand, 1, 5);
        parts[int(rand, 0, parts.length - 1)]!.push(sequence);
      }
      const merged = await drain(mergeBySequence(parts.map((p) => source(p, int(rand, 1, 40)))));
      const all = parts.flat().sort((a, b) => a - b);
      expect(merged.map((m) => m.sequence)).toEqual(all);
      expect(merged.map((m) => m.pending)).toEqual(all.map((_, i) => all.length - 1 - i));
    }
  });

  test('no sources, or only empty ones, give nothing', async () => {
    expect(await drain(mergeBySequence([]))).toEqual([]);
    expect(await drain(mergeBySequence([source([], 10), source([], 10)]))).toEqual([]);
  });

  test('first pages are asked for together, later ones only when a page is used up', async () => {
    const log: string[] = [];
    const merged = mergeBySequence([source([1, 3, 5, 7], 2, log, 'a'), source([2, 4], 2, log, 'b')]);
    const first = await merged.next();
    expect(first.value?.map((m: PendingMessage) => m.sequence)).toEqual([1, 2, 3]);
    expect(log).toEqual(['a page 0', 'b page 0']);
    await merged.next();
    expect(log).toEqual(['a page 0', 'b page 0', 'a page 1']);
  });

  test('stopping early closes every source', async () => {
    const log: string[] = [];
    for await (const _chunk of mergeBySequence([source([1, 3], 1, log, 'a'), source([2, 4], 1, log, 'b')]))
      break;
    expect(log.filter((line) => line.endsWith('closed')).sort()).toEqual(['a closed', 'b closed']);
  });
});
