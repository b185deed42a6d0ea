import { backoff, delay } from '@nats-io/nats-core';
import type { KV } from '@nats-io/kv';
import { PayloadTooLargeError, UnavailableError } from '../errors.js';
import { encodeViewValue } from './codec.js';
import type { StoredViewValue, ViewKeys } from './define-view.js';

/** Where a version's projection has got to, written after the values it covers. */
export interface Checkpoint {
  readonly sequence: number;
  /**
   * The version's dead letters say whether a value records them (`DeadLetter.keyless`).
   * Absent in checkpoints written before they did: their letters are marked keyless first.
   */
  readonly lettersMarked?: true;
}

/** A stored value, with the KV revision to compare-and-set against (0: the key does not exist). */
export interface Entry<S> extends StoredViewValue<S> {
  revision: number;
}

/**
 * Whether a dead-lettered event still has to be folded into its key's value. Pure. A
 * value records its key's letters, and `replayed` every letter's event folded since; any
 * other event the value has passed is in it. A value not yet past the event has not had
 * it (the instance that dead-lettered it has not written it), and a keyless letter is
 * recorded by no value.
 */
export function letterIsOpen(
  value: StoredViewValue<unknown>,
  letter: { readonly sequence: number; readonly keyless?: boolean },
): boolean {
  const { sequence } = letter;
  if (value.replayed?.includes(sequence)) return false;
  // A letter that does not say (written before letters did) may have no value recording it.
  return (
    value.deadLettered?.includes(sequence) === true || sequence > value.sequence || letter.keyless !== false
  );
}

/** What the storage needs to know of the view it holds. */
interface StoredView<S> {
  readonly name: string;
  readonly version: number;
  readonly initial: S;
}

/** Waits between a version's compare-and-set tries to become the active one. */
const activateRetry = backoff([20, 40, 60, 80]);

/**
 * One view version in its KV bucket: values, the projector's checkpoint and the pointer
 * readers follow. Writes compare-and-set; it keeps no state of its own.
 */
export class ViewStorage<S> {
  constructor(
    private readonly kv: KV,
    private readonly keys: ViewKeys,
    private readonly view: StoredView<S>,
    /** The connection's max_payload, once known. */
    private readonly maxPayload: () => number,
  ) {}

  /** The stored value, or a fresh one from the view's initial state. */
  async load(kvKey: string): Promise<Entry<S>> {
    const found = await this.kv.get(kvKey);
    if (!found || found.operation !== 'PUT') {
      return {
        // A copy: an `evolve` that mutates its state must not change every new key's start.
        state: structuredClone(this.view.initial),
        sequence: 0,
        time: new Date(0).toISOString(),
        revision: found?.revision ?? 0,
      };
    }
    return { ...found.json<StoredViewValue<S>>(), revision: found.revision };
  }

  /** Compare-and-set on the entry's revision; returns the new revision. */
  async put(kvKey: string, entry: Entry<S>): Promise<number> {
    const data = encodeViewValue(entry);
    const limit = this.maxPayload();
    // Every later event of this key would fail the same way: stop with what to change.
    if (data.length + 256 > limit)
      throw new PayloadTooLargeError(
        `${kvKey} (view ${this.view.name} v${this.view.version}, after event #${entry.sequence})`,
        data.length,
        limit,
      );
    return entry.revision === 0
      ? await this.kv.create(kvKey, data)
      : await this.kv.update(kvKey, data, entry.revision);
  }

  async readCheckpoint(): Promise<Checkpoint> {
    const found = await this.kv.get(this.keys.checkpoint(this.view.version));
    return found && found.operation === 'PUT' ? found.json<Checkpoint>() : { sequence: 0 };
  }

  async writeCheckpoint(checkpoint: Checkpoint): Promise<void> {
    await this.kv.put(this.keys.checkpoint(this.view.version), JSON.stringify(checkpoint));
  }

  /**
   * Serves this version, unless a newer version already does. Compare-and-set, so two
   * versions catching up at once cannot leave the older one active.
   */
  async activate(): Promise<void> {
    const value = JSON.stringify({ version: this.view.version });
    for (let attempt = 1; ; attempt++) {
      const found = await this.kv.get(this.keys.active);
      const active = found && found.operation === 'PUT' ? found.json<{ version: number }>().version : 0;
      if (active >= this.view.version) return;
      try {
        await (found
          ? this.kv.update(this.keys.active, value, found.revision)
          : this.kv.create(this.keys.active, value));
        return;
      } catch (err) {
        // Another version switched readers in between, or the read came from a replica
        // behind: look again shortly. Still refused, start over from the checkpoint.
        if (attempt === 5)
          throw new UnavailableError(
            `could not switch readers of ${this.view.name} to v${this.view.version}`,
            {
              cause: err,
              remedy: 'The projector starts again from its checkpoint on its own',
            },
          );
        await delay(activateRetry.backoff(attempt));
      }
    }
  }
}
