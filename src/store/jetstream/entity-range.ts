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
 * read as slow as a scan of the stream. So one `multi_last` request first lists the
 * entity's subjects (one per event type it has) with their last sequence, then each is
 * read on its own literal subject, up to that sequence, and the reads are merged.
 */
export async function* entityRange(
  direct: DirectReader,
  /** The entity's wildcard subject, `<prefix>.<tenant>.<type>.<id>.*`. */
  filter: string,
  after: number,
  until: number,
  range: SubjectRange,
): AsyncGenerator<ReadonlyArray<PendingMessage>> {
  const upTo = until < Number.MAX_SAFE_INTEGER ? until : undefined;
  const lasts = await direct.lastPerSubject(filter, after + 1, upTo);
  // More event types than one answer lists: read through the wildcard after all.
  if (lasts === null) return yield* range(filter, after, until);
  if (lasts.length === 1) return yield* range(lasts[0]!.subject, after, lasts[0]!.sequence);
  yield* mergeBySequence(lasts.map((last) => range(last.subject, after, last.sequence)));
}
