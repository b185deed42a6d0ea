import { UnavailableError } from '../../errors.js';

type Pages<T> = AsyncIterable<ReadonlyArray<T>>;

/**
 * Pages of one read in (after, until], which must not end while a matching event at or
 * before `until` is still unread. Once the pages end, `next(reached)` says which stored
 * event follows the last one read: an entity subject knows from its listing, a filter asks
 * the server (once, not alongside the pages: the answer is a whole message, and a big one
 * must not pile up behind a page). A read that ended short (a replica behind the one that
 * listed, or a server answer cut off early) is asked again from where it stopped; still
 * short, it fails rather than end as if complete and leave a hole.
 */
export async function* reachingLast<T extends { readonly sequence: number }>(
  first: Pages<T>,
  rest: (after: number) => Pages<T>,
  /** The sequence of the first stored event after `after`, or undefined when there is none. */
  next: (after: number) => Promise<number | undefined>,
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
    if (reached >= until) return;
    const following = await next(reached);
    if (following === undefined || following > until) return;
    if (pass === 2)
      throw new UnavailableError(
        `the read of ${subject} stopped at ${reached}, though event ${following} follows`,
      );
    pages = rest(reached);
  }
}
