import { UnavailableError } from '../../errors.js';

type Pages<T> = AsyncIterable<ReadonlyArray<T>>;

/**
 * Pages of one read, held to the last sequence it must reach (`last()`, at most `until`):
 * an entity subject's last event from its listing, or a filter's last stored event, asked
 * for once the pages end (not alongside them: the answer is a whole message, and a big
 * one must not pile up behind a page). A read that ends short (a replica behind the one
 * that listed, or a server answer cut off early) is asked again from where it stopped;
 * still short, it fails rather than end as if complete and leave a hole.
 */
export async function* reachingLast<T extends { readonly sequence: number }>(
  first: Pages<T>,
  rest: (after: number) => Pages<T>,
  last: () => Promise<number>,
  subject: string,
  after: number,
  until: number,
): AsyncGenerator<ReadonlyArray<T>> {
  let reached = after;
  let pages = first;
  for (let pass = 1; ; pass++) {
    for await (const page of pages) {
      if (page.length > 0) reached = page[page.length - 1]!.sequence;
      yield page;
    }
    const end = Math.min(until, await last());
    if (reached >= end) return;
    if (pass === 2)
      throw new UnavailableError(
        `the read of ${subject} stopped at ${reached}, short of its last event ${end}`,
      );
    pages = rest(reached);
  }
}
