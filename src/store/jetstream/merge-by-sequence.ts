import type { PendingMessage } from './direct.js';

interface Cursor {
  readonly source: AsyncIterator<ReadonlyArray<PendingMessage>>;
  page: ReadonlyArray<PendingMessage>;
  index: number;
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
    const cursors = (
      await Promise.all(iterators.map((source) => nextPage({ source, page: [], index: 0 })))
    ).filter((cursor) => cursor !== undefined);
    while (cursors.length > 0) {
      const chunk: PendingMessage[] = [];
      let min: Cursor;
      // Every cursor holds a message until one runs out: then its next page is awaited.
      do {
        min = cursors[0]!;
        for (const cursor of cursors) if (head(cursor).sequence < head(min).sequence) min = cursor;
        const msg = head(min);
        min.index++;
        // What follows it in its own source, plus each other source's head and what follows that.
        for (const cursor of cursors) if (cursor !== min) msg.pending += head(cursor).pending + 1;
        chunk.push(msg);
      } while (min.index < min.page.length);
      yield chunk;
      if (!(await nextPage(min))) cursors.splice(cursors.indexOf(min), 1);
    }
  } finally {
    await Promise.all(iterators.map((it) => it.return?.()));
  }
}

const head = (cursor: Cursor): PendingMessage => cursor.page[cursor.index]!;

/** Moves the cursor to its source's next non-empty page; undefined once the source ends. */
async function nextPage(cursor: Cursor): Promise<Cursor | undefined> {
  for (;;) {
    const next = await cursor.source.next();
    if (next.done) return undefined;
    if (next.value.length === 0) continue;
    cursor.page = next.value;
    cursor.index = 0;
    return cursor;
  }
}
