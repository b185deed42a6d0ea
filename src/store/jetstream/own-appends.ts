/**
 * How long after an append a store's entity reads wait for a replica that has it (ms).
 * Followers lag by milliseconds; past this the append may have expired (`maxAgeMs`) or
 * the stream been made again, and waiting for it would never end.
 */
const HORIZON_MS = 3_000;

/** An append of this store: its last sequence and that event's subject. */
export interface OwnAppend {
  readonly sequence: number;
  readonly subject: string;
}

/**
 * A store's latest append, which its entity reads must see (read your own writes): on a
 * replicated stream any replica answers direct gets, and a follower applies an append a
 * moment after the leader acknowledged it. Pure.
 */
export class OwnAppends {
  private newest?: OwnAppend & { at: number };

  constructor(private readonly now: () => number = Date.now) {}

  record(sequence: number, subject: string): void {
    const at = this.now();
    const current = this.newest;
    if (!current || sequence > current.sequence || at - current.at > HORIZON_MS)
      this.newest = { sequence, subject, at };
  }

  /** The latest append, while recent, when a read from sequence `from` on would include it. */
  mustSee(from: number): OwnAppend | undefined {
    const newest = this.newest;
    return newest && newest.sequence >= from && this.now() - newest.at <= HORIZON_MS ? newest : undefined;
  }
}
