import { UnavailableError } from '../errors.js';
import { isWriteConflict } from '../store/jetstream/api.js';
import { afterOverwrite } from './value-ledger.js';
import type { Checkpoint, Entry, StoredCheckpoint, ViewStorage } from './view-storage.js';

/** How long a flush waits for the server's answer. */
const FLUSH_TIMEOUT_MS = 5000;

/** Values kept between batches; the oldest go first. Bounds memory for views with many keys. */
const MAX_CACHED = 10_000;

/**
 * The values a projector folds events into: cached between flushes (with their KV
 * revisions), and written with the checkpoint all or nothing (see {@link ViewStorage.commit}).
 */
export class FoldedValues<S> {
  private readonly cache = new Map<string, Entry<S>>();
  /** Keys folded into since the last flush. */
  private readonly dirty = new Set<string>();
  /** The stored checkpoint as last read or written: what a flush compares-and-sets against. */
  private storedCheckpoint: StoredCheckpoint = { sequence: 0, revision: 0 };

  constructor(
    private readonly storage: ViewStorage<S>,
    /** `<view> v<version>`, for errors. */
    private readonly label: string,
  ) {}

  /** Reads the stored checkpoint, which the next flush compares-and-sets against. */
  async readCheckpoint(): Promise<StoredCheckpoint> {
    this.storedCheckpoint = await this.storage.readCheckpoint();
    return this.storedCheckpoint;
  }

  /** Drops every cached value, flushed or not: they may miss events another instance folded since. */
  forget(): void {
    this.dirty.clear();
    this.cache.clear();
  }

  /** Keys folded into since the last flush. */
  get unflushed(): number {
    return this.dirty.size;
  }

  cached(kvKey: string): Entry<S> | undefined {
    return this.cache.get(kvKey);
  }

  /**
   * The key's value: cached, or loaded and cached. `current` says whether the caller's run
   * still owns the cache once the value is loaded (a restart clears it).
   */
  async load(kvKey: string, current: () => boolean): Promise<Entry<S>> {
    const cached = this.cache.get(kvKey);
    if (cached) return cached;
    const stored = await this.storage.load(kvKey);
    if (!current()) return stored;
    // A replay cached a newer copy meanwhile: keep it.
    const now = this.cache.get(kvKey);
    if (now) return now;
    this.cache.set(kvKey, stored);
    return stored;
  }

  /** Records a fold into the key's value, to write at the next flush. */
  fold(kvKey: string, value: Entry<S>): void {
    this.cache.set(kvKey, value);
    this.dirty.add(kvKey);
  }

  /**
   * Caches a value written elsewhere (a dead-letter replay), unless the key was folded into
   * since its last flush: that copy's write then conflicts and its run starts again.
   */
  offer(kvKey: string, value: Entry<S>): void {
    if (!this.dirty.has(kvKey)) this.cache.set(kvKey, value);
  }

  /**
   * Writes the values folded since the last flush and the checkpoint, in one atomic batch.
   * With nothing folded, the checkpoint is written only when `moved` (events were read
   * that no value holds, such as dead-lettered ones). Says whether it wrote.
   */
  async flush(checkpoint: Checkpoint, moved: boolean): Promise<boolean> {
    // The checkpoint covers exactly what these writes hold, whatever is folded meanwhile.
    const keys = [...this.dirty];
    this.dirty.clear();
    const writes = keys.length > 0 || moved;
    if (writes)
      await this.commit(
        keys.map((k) => [k, this.cache.get(k)!] as const),
        checkpoint,
      );
    for (const key of this.cache.keys()) {
      if (this.cache.size <= MAX_CACHED) break;
      // A flush from before a restart runs beside the new run: never drop a value it folded.
      if (!this.dirty.has(key)) this.cache.delete(key);
    }
    return writes;
  }

  /**
   * Commits values and checkpoint; when another instance (or a replay) wrote one of them
   * first, settles each as below and commits the rest again. The checkpoint only moves
   * forward: one already past this flush's stays, since its run stored every value up to it.
   */
  private async commit(
    values: ReadonlyArray<readonly [string, Entry<S>]>,
    checkpoint: Checkpoint,
  ): Promise<void> {
    let pending = values;
    for (let attempt = 1; ; attempt++) {
      const stored = this.storedCheckpoint;
      const behind =
        stored.sequence < checkpoint.sequence ||
        (stored.sequence === checkpoint.sequence && !stored.lettersMarked);
      if (pending.length === 0 && !behind) return;
      try {
        const revision = await this.storage.commit(
          pending,
          behind ? { ...checkpoint, revision: stored.revision } : undefined,
          FLUSH_TIMEOUT_MS,
        );
        if (revision !== undefined) this.storedCheckpoint = { ...checkpoint, revision };
        return;
      } catch (err) {
        if (!isWriteConflict(err)) throw err;
        if (attempt === 5)
          throw new UnavailableError(`view ${this.label}: writes kept conflicting`, {
            cause: err,
            remedy: 'The projector starts again from its checkpoint on its own',
          });
        const [current, ...loaded] = await Promise.all([
          this.storage.readCheckpoint(),
          ...pending.map(([key]) => this.storage.load(key)),
        ]);
        this.storedCheckpoint = current;
        pending = pending.filter(([key, entry], i) => this.stillToWrite(key, entry, loaded[i]!, err));
      }
    }
  }

  /**
   * After a refused flush: whether the key's copy must still be written, against what is
   * stored now (see {@link afterOverwrite}). Throws, to start again from the checkpoint,
   * when a dead letter was replayed into it since.
   */
  private stillToWrite(kvKey: string, entry: Entry<S>, current: Entry<S>, refusal: unknown): boolean {
    if (current.revision === entry.revision) return true;
    switch (afterOverwrite(entry, current)) {
      case 'replayed-since':
        throw new UnavailableError(`View value ${kvKey} changed by a dead-letter replay`, {
          cause: refusal,
          remedy: 'The projector starts again from its checkpoint on its own',
        });
      case 'keep-theirs':
        // Only if nothing was folded into the key since (or a restart dropped this copy).
        if (this.cache.get(kvKey) === entry) this.cache.set(kvKey, current);
        return false;
      case 'write-mine':
        entry.revision = current.revision;
        return true;
    }
  }
}
