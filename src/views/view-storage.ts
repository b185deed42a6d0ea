import { backoff, delay, headers, type NatsConnection } from '@nats-io/nats-core';
import type { KV } from '@nats-io/kv';
import {
  InvalidArgumentError,
  PayloadTooLargeError,
  ServerError,
  StoreConfigError,
  UnavailableError,
} from '../errors.js';
import { ApiErrorCode, isTransient, parseReply, type ApiReply } from '../store/jetstream/api.js';
import { sendAtomicBatch, type BatchMessage } from '../store/jetstream/atomic-batch.js';
import { acrossDrops, sentOnceUp } from '../connection/link.js';
import { repliesOf } from '../connection/replies.js';
import { encodeViewValue } from './codec.js';
import type { StoredViewValue, ViewKeys } from './define-view.js';

/** Where a version's projection has got to, written in the same atomic batch as the values it covers (see `commit`). */
export interface Checkpoint {
  readonly sequence: number;
  /**
   * The version's dead letters say whether a value records them (`DeadLetter.keyless`).
   * Absent in checkpoints written before they did: their letters are marked keyless first.
   */
  readonly lettersMarked?: true;
}

/** The stored checkpoint, with its KV revision (0: none yet). */
export interface StoredCheckpoint extends Checkpoint {
  readonly revision: number;
}

/** A stored value, with the KV revision to compare-and-set against (0: the key does not exist). */
export interface Entry<S> extends StoredViewValue<S> {
  revision: number;
}

/** What the storage needs to know of the view it holds. */
interface StoredView<S> {
  readonly name: string;
  readonly version: number;
  readonly initial: S;
}

/** How long a KV request waits for a dropped connection to come back (nats.js's own timeout for its answer is 2 s). */
const KV_TIMEOUT_MS = 5_000;

/** Waits between a version's compare-and-set tries to become the active one. */
const activateRetry = backoff([20, 40, 60, 80]);

/**
 * One view version in its KV bucket: values, the projector's checkpoint and the pointer
 * readers follow. Writes compare-and-set; it keeps no state of its own.
 */
export class ViewStorage<S> {
  constructor(
    private readonly kv: KV,
    private readonly bucket: { readonly name: string; readonly connection: NatsConnection },
    private readonly keys: ViewKeys,
    private readonly view: StoredView<S>,
  ) {}

  /** The stored value, or a fresh one from the view's initial state. */
  async load(kvKey: string): Promise<Entry<S>> {
    const found = await this.get(kvKey);
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
    const data = this.encode(kvKey, entry);
    return this.sent(
      () =>
        entry.revision === 0 ? this.kv.create(kvKey, data) : this.kv.update(kvKey, data, entry.revision),
      `a write of ${kvKey}`,
    );
  }

  async readCheckpoint(): Promise<StoredCheckpoint> {
    const found = await this.get(this.keys.checkpoint(this.view.version));
    const revision = found?.revision ?? 0;
    return found && found.operation === 'PUT'
      ? { ...found.json<Checkpoint>(), revision }
      : { sequence: 0, revision };
  }

  /**
   * One flush, all or nothing: the values, each compare-and-set on its revision, and the
   * checkpoint, compare-and-set too (when given), in one atomic batch. So a stored value
   * is never ahead of the checkpoint: a restart never meets an event a value already
   * holds and a change of code could decide again (dead-letter it as keyless, say). On an
   * R1 file stream nats-server stages each batch in a temporary file store, a few ms.
   * Sets each value's new revision and returns the checkpoint's. A revision that moved
   * refuses the whole batch (ServerError 10071 or 10164, see `isWriteConflict`).
   */
  async commit(
    values: ReadonlyArray<readonly [string, Entry<S>]>,
    checkpoint: StoredCheckpoint | undefined,
    timeoutMs: number,
  ): Promise<number | undefined> {
    const messages = values.map(([key, entry]) => this.message(key, this.encode(key, entry), entry.revision));
    if (checkpoint) messages.push(this.checkpointMessage(checkpoint));
    // A drop loses the answer: fail now, for the projector to go on from its checkpoint.
    const ack = await this.sent(
      () => this.send(messages, timeoutMs),
      `a flush of ${messages.length} message(s) to ${this.bucket.name}`,
      timeoutMs,
    );
    if (ack.error) throw this.refusal(ack.error, messages.length);
    // The batch's messages got contiguous sequences, which are the keys' revisions.
    values.forEach(([, entry], i) => (entry.revision = ack.seq! - messages.length + 1 + i));
    return checkpoint ? ack.seq : undefined;
  }

  /** A key's entry, read again after the reconnect when the connection drops meanwhile. */
  private get(kvKey: string) {
    return acrossDrops(this.bucket.connection, () => this.kv.get(kvKey), KV_TIMEOUT_MS);
  }

  /** A write sent once the connection is up, failing at once when a drop loses its answer. */
  private sent<T>(send: () => Promise<T>, what: string, timeoutMs = KV_TIMEOUT_MS): Promise<T> {
    return sentOnceUp(this.bucket.connection, send, timeoutMs, what);
  }

  /** Sends the messages, one as a plain publish, more as an atomic batch; returns the server's answer. */
  private async send(messages: ReadonlyArray<BatchMessage>, timeoutMs: number): Promise<ApiReply> {
    const { connection } = this.bucket;
    if (messages.length === 1) {
      const [m] = messages as [BatchMessage];
      return parseReply(
        await repliesOf(connection).one(m.subject, m.data, { headers: m.headers, timeoutMs }),
      );
    }
    const replies = await sendAtomicBatch(connection, messages, timeoutMs);
    return replies.first.error ? replies.first : replies.commit();
  }

  private checkpointMessage({ revision, ...stored }: StoredCheckpoint): BatchMessage {
    return this.message(this.keys.checkpoint(this.view.version), JSON.stringify(stored), revision);
  }

  private message(key: string, data: Uint8Array | string, revision: number): BatchMessage {
    const h = headers();
    h.set('Nats-Expected-Last-Subject-Sequence', String(revision));
    return { subject: `$KV.${this.bucket.name}.${key}`, data, headers: h };
  }

  private encode(kvKey: string, entry: Entry<S>): Uint8Array {
    const data = encodeViewValue(entry);
    const limit = this.bucket.connection.info?.max_payload ?? Infinity;
    // Every later event of this key would fail the same way: stop with what to change.
    if (data.length + 256 > limit)
      throw new PayloadTooLargeError(
        `${kvKey} (view ${this.view.name} v${this.view.version}, after event #${entry.sequence})`,
        data.length,
        limit,
      );
    return data;
  }

  private refusal(error: NonNullable<ApiReply['error']>, count: number): Error {
    const refused = new ServerError(error.err_code, error.description);
    const what = `view ${this.view.name} v${this.view.version}`;
    switch (error.err_code) {
      case ApiErrorCode.AtomicDisabled:
        return new StoreConfigError(
          `KV_${this.bucket.name}`,
          ['allow_atomic is off, so a flush cannot be atomic'],
          {
            cause: refused,
            remedy: 'Run ensureViews() on the bucket (startProjector does): it switches atomic batches on.',
          },
        );
      case ApiErrorCode.BatchTooLarge:
        return new InvalidArgumentError(
          'batchSize',
          undefined,
          `lower it: a flush of ${what} (${count - 1} values and the checkpoint) is one atomic batch, over this server's limit (${error.description})`,
          { cause: refused },
        );
      default:
        return isTransient(refused)
          ? new UnavailableError(`the server could not take a flush of ${what} yet`, {
              cause: refused,
              remedy: 'The projector starts again from its checkpoint on its own',
            })
          : refused;
    }
  }

  /**
   * Serves this version, unless a newer version already does. Compare-and-set, so two
   * versions catching up at once cannot leave the older one active.
   */
  async activate(): Promise<void> {
    const value = JSON.stringify({ version: this.view.version });
    for (let attempt = 1; ; attempt++) {
      const found = await this.get(this.keys.active);
      const active = found && found.operation === 'PUT' ? found.json<{ version: number }>().version : 0;
      if (active >= this.view.version) return;
      try {
        await this.sent(
          () =>
            found
              ? this.kv.update(this.keys.active, value, found.revision)
              : this.kv.create(this.keys.active, value),
          `switching readers to v${this.view.version}`,
        );
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
