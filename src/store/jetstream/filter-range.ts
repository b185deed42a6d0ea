import { UnavailableError } from '../../errors.js';

/**
 * A filter's pages in (after, until], held to the filter's last stored sequence, asked for
 * once the pages end (not alongside them: its answer is a whole message, and big ones
 * must not pile up behind a page). A read the server ended early (an empty page, or a
 * pending count of 0, before that sequence) is asked again from where it stopped; if it
 * still falls short it fails rather than end as if complete. Entity reads get the same
 * guarantee from their listing (see entityRange).
 */
export async function* reachingLast<T extends { readonly sequence: number }>(
  pages: (after: number) => AsyncIterable<ReadonlyArray<T>>,
  /** The sequence of the filter's last stored message (0 when none). */
  last: () => Promise<number>,
  subject: string,
  after: number,
  until: number,
): AsyncGenerator<ReadonlyArray<T>> {
  let reached = after;
  for (let pass = 1; ; pass++) {
    for await (const page of pages(reached)) {
      if (page.length > 0) reached = page[page.length - 1]!.sequence;
      yield page;
    }
    const end = Math.min(until, await last());
    if (reached >= end) return;
    if (pass === 2)
      throw new UnavailableError(
        `the read of ${subject} stopped at ${reached}, short of its last event ${end}`,
      );
  }
}
