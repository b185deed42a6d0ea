import type { DirectReader, PendingMessage } from './direct.js';
import { mergeBySequence } from './merge-by-sequence.js';
import { endingAt, reachingLast } from './reaching.js';

/** Reads the messages of one subject with a sequence in (after, until], in pages. */
export type SubjectRange = (
  subject: string,
  after: number,
  until: number,
) => AsyncIterable<ReadonlyArray<PendingMessage>>;

type Pages = AsyncIterable<ReadonlyArray<PendingMessage>>;

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
 * With `guess`, the subjects other entities of the same type had are read while the
 * listing is in flight: when the guess is right, the read costs one round trip, not two.
 */
export async function* entityRange(
  direct: DirectReader,
  range: SubjectRange,
  /** The entity's wildcard subject, `<prefix>.<tenant>.<type>.<id>.*`. */
  filter: string,
  after: number,
  until: number,
  guess?: EventTypeGuess,
): AsyncGenerator<ReadonlyArray<PendingMessage>> {
  if (until <= after) return;
  const upTo = until < Number.MAX_SAFE_INTEGER ? until : undefined;
  const early = new Map((guess?.likely(filter) ?? []).map((s) => [s, started(range(s, after, until))]));
  // Guessed reads the listing does not claim are stopped, without waiting for them.
  const dropGuesses = () => early.forEach((pages) => void pages.close());
  let lasts: PendingMessage[] | null;
  try {
    lasts = await lastPerSubject(direct, filter, after, upTo);
  } catch (err) {
    dropGuesses();
    throw err;
  }
  // More event types (or bytes) than one answer lists: read through the wildcard after all.
  if (lasts === null) {
    dropGuesses();
    return yield* reachingLast(
      range(filter, after, until),
      (from) => range(filter, from, until),
      direct.readEnd(filter),
      filter,
      after,
      until,
    );
  }
  guess?.learn(filter, lasts);
  const sources = lasts.map(({ subject, sequence }) => {
    const guessed = early.get(subject);
    early.delete(subject);
    const pages = guessed
      ? upToLast(guessed, after, sequence, (from) => range(subject, from, sequence))
      : range(subject, after, sequence);
    const rest = (from: number) => range(subject, from, sequence);
    return reachingLast(pages, rest, endingAt(sequence), subject, after, sequence);
  });
  dropGuesses();
  yield* sources.length === 1 ? sources[0]! : mergeBySequence(sources);
}

/**
 * The last message of each subject matching `filter` in (after, upTo]. nats-server answers
 * nothing when `up_to_seq` lies past the stream's last sequence, which looks like an entity
 * without events; so an empty answer is checked by asking without the bound.
 */
async function lastPerSubject(
  direct: DirectReader,
  filter: string,
  after: number,
  upTo: number | undefined,
): Promise<PendingMessage[] | null> {
  const bounded = await direct.lastPerSubject(filter, after + 1, upTo);
  if (upTo === undefined || bounded === null || bounded.length > 0) return bounded;
  const unbounded = await direct.lastPerSubject(filter, after + 1);
  // Every last is within the bound: the stream ended before it. Otherwise the stream has
  // since grown past the bound, and the bounded question now has its real answer.
  if (unbounded === null || unbounded.every((m) => m.sequence <= upTo)) return unbounded;
  return direct.lastPerSubject(filter, after + 1, upTo);
}

/**
 * The event types the latest read of each entity type listed: the likely subjects of the
 * next entity of that type. Bounded in types and entries.
 */
export class EventTypeGuess {
  private readonly byType = new Map<string, string[]>();

  /** Literal subjects the entity behind `filter` (`….<type>.<id>.*`) probably has. */
  likely(filter: string): string[] {
    const stem = filter.slice(0, -1);
    return (this.byType.get(typeOf(stem)) ?? []).map((eventType) => stem + eventType);
  }

  /** Records what a listing found for the entity behind `filter`. */
  learn(filter: string, listed: ReadonlyArray<{ subject: string }>): void {
    const stem = filter.slice(0, -1);
    const key = typeOf(stem);
    // The latest entity's types only: a union over many entities would send most reads
    // requests for types their entity does not have.
    const seen = listed.map((m) => m.subject.slice(stem.length)).slice(0, 8);
    if (!this.byType.has(key) && this.byType.size >= 256) this.byType.clear();
    this.byType.set(key, seen);
  }
}

/** `<prefix>.<tenant>.<type>` of an entity stem `<prefix>.<tenant>.<type>.<id>.`. */
const typeOf = (stem: string) => stem.slice(0, stem.lastIndexOf('.', stem.length - 2));

/** Pages whose first one is requested now; iterating picks up that request. */
function started(pages: Pages): Pages & { close(): Promise<unknown> } {
  const it = pages[Symbol.asyncIterator]();
  let first: Promise<IteratorResult<ReadonlyArray<PendingMessage>>> | undefined = it.next();
  first.catch(() => undefined);
  let claimed = false;
  return {
    [Symbol.asyncIterator]() {
      claimed = true;
      return {
        next: () => {
          const next = first ?? it.next();
          first = undefined;
          return next;
        },
        return: async () => (await it.return?.()) ?? { done: true, value: undefined },
      };
    },
    close: () => (claimed ? Promise.resolve() : Promise.resolve(it.return?.()).catch(() => undefined)),
  };
}

/**
 * A guessed subject's pages, cut at the last sequence the listing gave. A guessed read was
 * sent before the listing: an event appended in between is listed but may not be in it,
 * so a read that ends short goes on from where it stopped.
 */
async function* upToLast(
  pages: Pages,
  after: number,
  last: number,
  rest: (after: number) => Pages,
): AsyncGenerator<ReadonlyArray<PendingMessage>> {
  let reached = after;
  for await (const page of pages) {
    if (page.length === 0) continue;
    const end = page[page.length - 1]!.sequence;
    yield end <= last ? page : page.filter((m) => m.sequence <= last);
    if (end >= last) return;
    reached = end;
  }
  yield* rest(reached);
}
