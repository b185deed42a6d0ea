import { subjectMatcher } from '../../subjects/subjects.js';

/**
 * How long after an append a store's reads wait for a replica that has it (ms).
 * Followers lag by milliseconds; past this the append may have expired (`maxAgeMs`) or
 * the stream been made again, and waiting for it would never end.
 */
export const HORIZON_MS = 3_000;

/** How many of its latest appended events a store remembers for its filter reads. */
const EVENTS_KEPT = 1024;

/** An appended event: its sequence and subject. */
export interface OwnAppend {
  readonly sequence: number;
  readonly subject: string;
}

/**
 * A store's recent appends, which its reads must see (read your own writes): on a
 * replicated stream any replica answers direct gets, and a follower applies an append a
 * moment after the leader acknowledged it. An entity read waits for a replica with the
 * latest append (whose answers say how far they have got); a filter read reads on until
 * it has the newest of the latest appended events it matches. Pure.
 */
export class OwnAppends {
  private newest?: OwnAppend & { at: number };
  /** The latest appended events, a ring of EVENTS_KEPT: `next` is where the oldest is. */
  private readonly kept: Array<{ sequence: number; subject: string; at: number }> = [];
  private next = 0;
  private lastFilter?: { filter: string; matches: (subject: string) => boolean };

  constructor(private readonly now: () => number = Date.now) {}

  /** Records the events of one acknowledged append, in stream order. */
  record(appended: ReadonlyArray<OwnAppend>): void {
    const at = this.now();
    for (const { sequence, subject } of appended) {
      this.kept[this.next] = { sequence, subject, at };
      this.next = (this.next + 1) % EVENTS_KEPT;
    }
    const last = appended.at(-1);
    const current = this.newest;
    if (last && (!current || last.sequence > current.sequence || at - current.at > HORIZON_MS))
      this.newest = { sequence: last.sequence, subject: last.subject, at };
  }

  /** The latest append, while recent, when a read from sequence `from` on would include it. */
  mustSee(from: number): OwnAppend | undefined {
    const newest = this.newest;
    return newest && newest.sequence >= from && this.now() - newest.at <= HORIZON_MS ? newest : undefined;
  }

  /**
   * The lowest and highest sequence, from `from` on, of the recent appended events on
   * subjects `filter` matches: where a read of `filter` must go on to (the first is the
   * next event after `from` it must meet, the last where it must not end before).
   */
  matching(filter: string, from: number): { first: number; last: number } | undefined {
    let found: { first: number; last: number } | undefined;
    this.forEachRecent(filter, from, Number.MAX_SAFE_INTEGER, (sequence) => {
      if (!found) found = { first: sequence, last: sequence };
      else if (sequence < found.first) found.first = sequence;
      else if (sequence > found.last) found.last = sequence;
    });
    return found;
  }

  /**
   * The newest recent appended event in (after, upTo] on a subject `filter` matches, which
   * a watch of `filter` must deliver before it says caught-up, and until when (ms since
   * 1970) it is worth waiting for: 3 s after the last of those events was acknowledged
   * (appends in flight together may be acknowledged out of order).
   */
  awaited(filter: string, after: number, upTo: number): { sequence: number; until: number } | undefined {
    let found: { sequence: number; until: number } | undefined;
    this.forEachRecent(filter, after + 1, upTo, (sequence, at) => {
      found = {
        sequence: Math.max(sequence, found?.sequence ?? 0),
        until: Math.max(at + HORIZON_MS, found?.until ?? 0),
      };
    });
    return found;
  }

  /** Calls `visit` for each recent appended event in [from, upTo] on a subject `filter` matches. */
  private forEachRecent(
    filter: string,
    from: number,
    upTo: number,
    visit: (sequence: number, at: number) => void,
  ): void {
    const since = this.now() - HORIZON_MS;
    const matches = this.matcher(filter);
    // Newest first: the ring is in the order appends were acknowledged, so the first entry
    // past the horizon ends the search.
    for (let k = 1; k <= this.kept.length; k++) {
      const { sequence, subject, at } = this.kept[(this.next - k + EVENTS_KEPT) % EVENTS_KEPT]!;
      if (at < since) break;
      if (sequence >= from && sequence <= upTo && matches(subject)) visit(sequence, at);
    }
  }

  /** One read asks about one filter several times: its matcher is made once. */
  private matcher(filter: string): (subject: string) => boolean {
    if (this.lastFilter?.filter !== filter) this.lastFilter = { filter, matches: subjectMatcher(filter) };
    return this.lastFilter.matches;
  }
}
