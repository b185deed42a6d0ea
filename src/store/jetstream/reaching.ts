import { delay } from '@nats-io/nats-core';
import { UnavailableError } from '../../errors.js';
import { CATCH_UP_WAITS } from './asking-again.js';

type Pages<T> = AsyncIterable<ReadonlyArray<T>>;

/** Where a read stands against the stream: answers a read asks once its pages end. */
export interface ReadEnd {
  /** The sequence of the first stored event after `after`, or undefined when there is none. */
  next(after: number): Promise<number | undefined>;
  /** The sequence of the newest stored event (0 when none). */
  last(): Promise<number>;
  /** What to add to the error of a read that cannot reach the event at `sequence`. */
  missing?(sequence: number): string;
}

/** The end of a read whose last event is known (an entity subject's, from its listing). */
export function endingAt(sequence: number): ReadEnd {
  return {
    next: async (after) => (after < sequence ? sequence : undefined),
    last: async () => sequence,
  };
}

/**
 * Pages of one read in (after, until], which must not end while a matching event that
 * was stored when its pages ended, at or before `until`, is still unread. An entity
 * subject knows its last event from its listing; a filter asks the server once the pages
 * end (not alongside them: an answer is a whole message, and a big one must not pile up
 * behind a page). A read that ended short (a replica behind the one that listed, or a
 * server answer cut off early) is asked again from where it stopped, waiting longer
 * each time (`waits`, ms); still short after that, it fails rather than end as if
 * complete and leave a hole. Events appended after the pages ended are welcome, not
 * required.
 */
export async function* reachingLast<T extends { readonly sequence: number }>(
  first: Pages<T>,
  rest: (after: number) => Pages<T>,
  end: ReadEnd,
  subject: string,
  after: number,
  until: number,
  waits = CATCH_UP_WAITS,
): AsyncGenerator<ReadonlyArray<T>> {
  let reached = after;
  const read = async function* (pages: Pages<T>) {
    for await (const page of pages) {
      if (page.length > 0) reached = page[page.length - 1]!.sequence;
      yield page;
    }
  };
  yield* read(first);
  if (reached >= until) return;
  const [following, last] = await Promise.all([end.next(reached), end.last()]);
  const target = Math.min(until, last);
  if (following === undefined || following > target) return;
  for (let attempt = 0; ; attempt++) {
    yield* read(rest(reached));
    if (reached >= target) return;
    const still = await end.next(reached);
    if (still === undefined || still > target) return;
    if (attempt >= waits.length)
      throw new UnavailableError(
        `the read of ${subject} stopped at ${reached}, though event ${still} follows${end.missing?.(still) ?? ''}`,
      );
    await delay(waits[attempt]!);
  }
}
