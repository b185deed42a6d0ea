import { UnavailableError } from '../../errors.js';
import type { DirectReader, PendingMessage } from './direct.js';
import { mergeBySequence } from './merge-by-sequence.js';

/** Reads the messages of one subject with a sequence in (after, until], in pages. */
export type SubjectRange = (
  subject: string,
  after: number,
  until: number,
) => AsyncIterable<ReadonlyArray<PendingMessage>>;

/**
 * One entity's messages in (after, until], in sequence order, read per event type.
 *
 * nats-server finds the next message on a literal subject through its per-block subject
 * index, but for a wildcard filter on a stream with many subjects it walks the messages
 * in between: on a big stream where entities' events interleave, that made one entity's
 * read as slow as a scan of the stream. So one `multi_last` request lists the entity's
 * subjects (one per event type it has) with their last sequence, each is read on its own
 * literal subject up to that sequence, and the reads are merged.
 */
export async function* entityRange(
  direct: DirectReader,
  range: SubjectRange,
  /** The entity's wildcard subject, `<prefix>.<tenant>.<type>.<id>.*`. */
  filter: string,
  after: number,
  until: number,
): AsyncGenerator<ReadonlyArray<PendingMessage>> {
  if (until <= after) return;
  const upTo = until < Number.MAX_SAFE_INTEGER ? until : undefined;
  const lasts = await direct.lastPerSubject(filter, after + 1, upTo);
  // More event types (or bytes) than one answer lists: read through the wildcard after all.
  if (lasts === null) return yield* range(filter, after, until);
  const sources = lasts.map(({ subject, sequence }) =>
    reaching(range(subject, after, sequence), subject, sequence),
  );
  yield* sources.length === 1 ? sources[0]! : mergeBySequence(sources);
}

/**
 * A subject's pages, which must reach the last sequence the listing gave it. Falling short
 * means a replica behind the one that listed answered the reads: ending quietly there would
 * leave a hole in the merged read (and a watch would resume past it), so it is an error.
 */
async function* reaching(
  pages: AsyncIterable<ReadonlyArray<PendingMessage>>,
  subject: string,
  last: number,
): AsyncGenerator<ReadonlyArray<PendingMessage>> {
  let reached = 0;
  for await (const page of pages) {
    reached = page.at(-1)?.sequence ?? reached;
    yield page;
  }
  if (reached < last)
    throw new UnavailableError(`${subject} ended at ${reached}, short of ${last}: a replica lags`);
}
