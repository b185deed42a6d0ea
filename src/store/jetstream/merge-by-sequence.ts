import type { PendingMessage } from './direct.js';

interface Cursor {
  readonly source: AsyncIterator<ReadonlyArray<PendingMessage>>;
  page: ReadonlyArray<PendingMessage>;
  index: number;
  /** Messages of this source not yet handed out: the head and what its count says follows. */
  remaining: number;
}

/**
 * Merges sources that are each in sequence order into one stream in sequence order,
 * in chunks. Each message's `pending` becomes what remains across all sources. One page
 * per source is held: a source is asked for its next page only once its current one is
 * used up, and the first pages are requested together.
 */
export async function* mergeBySequence(
  sources: ReadonlyArray<AsyncIterable<ReadonlyArray<PendingMessage>>>,
): AsyncGenerator<PendingMessage[]> {
  const iterators = sources.map((source) => source[Symbol.asyncIterator]());
  try {
    const started = await Promise.all(
      iterators.map(async (source) => nextPage({ source, page: [], index: 0, remaining: 0 })),
    );
    const cursors = started.filter((cursor): cursor is Cursor => cursor !== undefined);
    let remaining = cursors.reduce((sum, cursor) => sum + cursor.remaining, 0);
    while (cursors.length > 0) {
      const chunk: PendingMessage[] = [];
      let drained: Cursor | undefined;
      while (!drained) {
        let min = cursors[0]!;
        for (const cursor of cursors) if (head(cursor) < head(min)) min = cursor;
        const msg = min.page[min.index++]!;
        // The source's own count after this message replaces the estimate held for it.
        remaining += msg.pending - min.remaining;
        min.remaining = msg.pending;
        msg.pending = remaining;
        chunk.push(msg);
        if (min.index < min.page.length) {
          const next = min.page[min.index]!.pending + 1;
          remaining += next - min.remaining;
          min.remaining = next;
        } else drained = min;
      }
      yield chunk;
      const before = drained.remaining;
      if (await nextPage(drained)) remaining += drained.remaining - before;
      else {
        remaining -= before;
        cursors.splice(cursors.indexOf(drained), 1);
      }
    }
  } finally {
    await Promise.all(iterators.map((it) => it.return?.()));
  }
}

const head = (cursor: Cursor): number => cursor.page[cursor.index]!.sequence;

/** Moves the cursor to its source's next non-empty page; undefined once the source ends. */
async function nextPage(cursor: Cursor): Promise<Cursor | undefined> {
  for (;;) {
    const next = await cursor.source.next();
    if (next.done) return undefined;
    if (next.value.length === 0) continue;
    cursor.page = next.value;
    cursor.index = 0;
    cursor.remaining = next.value[0]!.pending + 1;
    return cursor;
  }
}
