import { UnavailableError } from '../../errors.js';
import type { DirectReader, PendingMessage } from './direct.js';
import { mergeBySequence } from './merge-by-sequence.js';

/** Reads the messages of one subject with a sequence in (after, until], in pages. */
export type SubjectRange = (
  subject: string,
  after: number,
  until: number,
) => AsyncIterable<ReadonlyArray<PendingMessage>>;

/** How entity reads are made: where to read, and which event types to read early. */
export interface EntityRead {
  direct: DirectReader;
  range: SubjectRange;
  /** First page size for subjects read before the listing answers. */
  pageSize: number;
  /** The event types each entity type has had so far; learnt from each listing. */
  eventTypes: EventTypeMemory;
}

/**
 * One entity's messages in (after, until], in sequence order, read per event type.
 *
 * nats-server finds the next message on a literal subject through its per-block subject
 * index, but for a wildcard filter on a stream with many subjects it walks the messages
 * in between: on a big stream where entities' events interleave, that made one entity's
 * read as slow as a scan of the stream. So one `multi_last` request lists the entity's
 * subjects (one per event type it has) with their last sequence, each is read on its own
 * literal subject up to that sequence, and the reads are merged.
 *
 * The event types entities of this type usually have are read at the same time as the
 * listing, so a read takes one round trip rather than two; the listing still decides what
 * belongs to the read, and a subject the guess missed is read once it is known.
 */
export async function* entityRange(
  read: EntityRead,
  entityType: string,
  /** The entity's wildcard subject, `<prefix>.<tenant>.<type>.<id>.*`. */
  filter: string,
  after: number,
  until: number,
): AsyncGenerator<ReadonlyArray<PendingMessage>> {
  if (until <= after) return;
  const { direct, range, eventTypes } = read;
  const prefix = filter.slice(0, -1);
  const early = new Map(
    eventTypes.likely(entityType).map((token) => {
      const page = direct.page(prefix + token, after + 1, read.pageSize);
      page.catch(() => undefined); // Left unread if the listing leaves it out; failures surface when read.
      return [prefix + token, page] as const;
    }),
  );
  const lasts = await direct.lastPerSubject(
    filter,
    after + 1,
    until < Number.MAX_SAFE_INTEGER ? until : undefined,
  );
  // More event types than one answer lists: read through the wildcard after all.
  if (lasts === null) return yield* range(filter, after, until);
  eventTypes.learn(
    entityType,
    lasts.map((last) => last.subject.slice(prefix.length)),
  );
  const sources = lasts.map(({ subject, sequence }) => {
    const first = early.get(subject);
    const source = first
      ? continued(first, subject, after, sequence, range)
      : range(subject, after, sequence);
    return reaching(source, subject, sequence);
  });
  yield* sources.length === 1 ? sources[0]! : mergeBySequence(sources);
}

/** A subject's early first page, cut at its last sequence, and the rest of it if there is more. */
async function* continued(
  first: Promise<PendingMessage[]>,
  subject: string,
  after: number,
  last: number,
  range: SubjectRange,
): AsyncGenerator<ReadonlyArray<PendingMessage>> {
  const page = (await first).filter((msg) => msg.sequence <= last);
  if (page.length > 0) yield page;
  const reached = page.at(-1)?.sequence ?? after;
  if (reached < last) yield* range(subject, reached, last);
}

/**
 * A subject's pages, which must reach the last sequence the listing gave it. Falling short
 * means a replica behind the one that listed answered the reads: ending quietly there would
 * leave a hole in the merged read (and a watch would resume past it), so it is an error.
 */
async function* reaching(
  source: AsyncIterable<ReadonlyArray<PendingMessage>>,
  subject: string,
  last: number,
): AsyncGenerator<ReadonlyArray<PendingMessage>> {
  let reached = 0;
  for await (const page of source) {
    reached = page.at(-1)?.sequence ?? reached;
    yield page;
  }
  if (reached < last) {
    throw new UnavailableError(
      `${subject} was read up to sequence ${reached}, short of ${last}: a replica is behind; retry`,
    );
  }
}

/**
 * The event-type tokens seen per entity type, to guess which subjects an entity has.
 * Bounded: an entity type with many event types is not guessed for (every wrong guess
 * is a request), and the memory is cleared when too many entity types pass through it.
 */
export class EventTypeMemory {
  private readonly seen = new Map<string, Set<string>>();

  likely(entityType: string): string[] {
    const tokens = this.seen.get(entityType);
    return tokens && tokens.size <= MAX_GUESSES ? [...tokens] : [];
  }

  learn(entityType: string, tokens: readonly string[]): void {
    if (!this.seen.has(entityType) && this.seen.size >= MAX_ENTITY_TYPES) this.seen.clear();
    const known = this.seen.get(entityType) ?? new Set();
    for (const token of tokens) if (known.size <= MAX_GUESSES) known.add(token);
    this.seen.set(entityType, known);
  }
}

const MAX_GUESSES = 16;
const MAX_ENTITY_TYPES = 256;
