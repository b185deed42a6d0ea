import type { NatsConnection } from '@nats-io/nats-core';
import { Kvm, type KV } from '@nats-io/kv';
import { adminStep } from '../connection/request-errors.js';
import { acrossDrops, followConnection, sentOnceUp } from '../connection/link.js';
import { StoreConfigError } from '../errors.js';
import { replicasOption } from '../options.js';
import { DirectReader, untilDirectGetsAnswer } from '../store/jetstream/direct.js';
import { assertBucketName, encodeToken } from '../subjects/tokens.js';

/** An event a processor or projector gave up on, kept until it is replayed or dismissed. */
export interface DeadLetter {
  /** Whose letter: a processor (`<stream>/<durable>`) or a view (`<stream>/<tenant>/<view>@v<version>`). */
  readonly processor: string;
  /** The event's stream sequence: what to replay or dismiss. */
  readonly sequence: number;
  /** The event's subject; a replay checks the event there is still the same. */
  readonly subject: string;
  readonly error: { readonly name: string; readonly message: string };
  /** Handler or fold attempts made before it was dead-lettered. */
  readonly attempts: number;
  /**
   * A view's letter that no view value records: the projector could not name the event's
   * key (a malformed event, a key function that threw), or the letter predates values
   * recording theirs. A replay folds it unless its value says it was folded since.
   */
  readonly keyless?: boolean;
  /** ISO time it was dead-lettered. */
  readonly at: string;
}

/** Options for {@link DeadLetters.open}. */
export interface DeadLettersOptions {
  /** KV bucket. Default `deadletters`. */
  bucket?: string;
  /** Replicas when the bucket is created. Default 1. */
  replicas?: number;
}

/**
 * Dead letters in a JetStream KV bucket, one key per `<processor>.<sequence>`, so they
 * survive restarts, can be listed per processor, and are removed once replayed.
 */
export class DeadLetters {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    private readonly bucket: string,
    /** Lists letters without a consumer (nats.js's `keys()` leaves one behind for 5 minutes). */
    private readonly direct: DirectReader,
  ) {}

  /**
   * Opens the dead-letter bucket, creating it when missing (history 1, direct get on:
   * letters are listed by direct get, which leaves no consumer behind). An existing bucket
   * whose letters expire (they take their events with them), without direct get, or with
   * more history is refused with StoreConfigError. Needs the service role.
   */
  static async open(nc: NatsConnection, options: DeadLettersOptions = {}): Promise<DeadLetters> {
    followConnection(nc);
    const bucket = assertBucketName(options.bucket ?? 'deadletters');
    const replicas = replicasOption(options.replicas);
    const kv = await adminStep(`opening dead letters (bucket ${bucket})`, () =>
      new Kvm(nc).create(bucket, { history: 1, allow_direct: true, replicas }),
    );
    // An existing bucket is opened as it is: one whose letters expire would lose events.
    const { ttl, streamInfo } = await adminStep(`checking dead letters (bucket ${bucket})`, () =>
      kv.status(),
    );
    const problems = [
      ...(ttl > 0 ? [`letters expire (TTL ${ttl / 1000} s), and with them the events they hold`] : []),
      ...(streamInfo.config.allow_direct ? [] : ['direct get is off, which listing letters needs']),
      ...(streamInfo.config.max_msgs_per_subject === 1 ? [] : ['it keeps more than one revision per letter']),
    ];
    if (problems.length > 0)
      throw new StoreConfigError(`KV_${bucket}`, problems, {
        remedy:
          'Use a dead-letter bucket without a TTL and with direct get on (DeadLetters.open creates one).',
      });
    await adminStep(`waiting for dead letters (bucket ${bucket})`, () =>
      untilDirectGetsAnswer(nc, streamInfo.config),
    );
    return new DeadLetters(nc, kv, bucket, new DirectReader(nc, `KV_${bucket}`, REQUEST_TIMEOUT_MS));
  }

  /** Stores a dead letter, stamped with the time now; one per processor and event. */
  async record(letter: Omit<DeadLetter, 'at'>): Promise<DeadLetter> {
    const stored: DeadLetter = { ...letter, at: new Date().toISOString() };
    await adminStep(`recording dead letter #${letter.sequence} of ${letter.processor}`, () =>
      this.acrossDrops(() => this.kv.put(keyOf(letter.processor, letter.sequence), JSON.stringify(stored))),
    );
    return stored;
  }

  /** Every dead letter of one processor, oldest event first; with `after`, only those of events after that sequence. */
  async list(processor: string, options: { after?: number } = {}): Promise<DeadLetter[]> {
    const after = options.after ?? 0;
    return adminStep(`listing the dead letters of ${processor}`, async () => {
      // History 1 (open checks it): each key's one message is its letter, or the marker of its removal.
      const filter = `$KV.${this.bucket}.${encodeToken('processor', processor)}.>`;
      const letters: DeadLetter[] = [];
      for await (const page of this.direct.range(filter, 0, Number.MAX_SAFE_INTEGER, LIST_PAGE, (m) => m)) {
        for (const m of page) {
          // The key ends in the event's sequence.
          const removed = m.header('KV-Operation') !== undefined;
          if (removed || Number(m.subject.slice(m.subject.lastIndexOf('.') + 1)) <= after) continue;
          letters.push(JSON.parse(decoder.decode(m.data)) as DeadLetter);
        }
      }
      return letters.sort((a, b) => a.sequence - b.sequence);
    });
  }

  /** One processor's dead letter of an event, or null when there is none. */
  async get(processor: string, sequence: number): Promise<DeadLetter | null> {
    const entry = await adminStep(`reading dead letter #${sequence} of ${processor}`, () =>
      this.acrossDrops(() => this.kv.get(keyOf(processor, sequence))),
    );
    return entry && entry.operation === 'PUT' ? entry.json<DeadLetter>() : null;
  }

  /**
   * @internal The name of a processor's consumer on the server, agreed once by every instance: the
   * first to ask stores `propose()`'s answer (a KV create, so racing starts agree) and all
   * later ones read it. The bucket is the service role's only, which keeps the name from
   * tenant users: one who knew it could aim its own consumer's deliveries at the
   * processor's pull or reset subject (see the README's Security section).
   */
  async consumerName(processor: string, propose: () => Promise<string>): Promise<string> {
    const key = consumerKeyOf(processor);
    const recorded = () =>
      adminStep(`reading ${processor}'s consumer name from the dead-letter bucket`, () =>
        this.acrossDrops(() => this.kv.get(key)),
      );
    const known = await recorded();
    if (known?.operation === 'PUT') return known.string();
    const proposed = await propose();
    try {
      await sentOnceUp(
        this.nc,
        () => this.kv.create(key, proposed),
        REQUEST_TIMEOUT_MS,
        `recording ${processor}'s consumer name`,
      );
      return proposed;
    } catch (err) {
      const raced = await recorded();
      if (raced?.operation === 'PUT') return raced.string();
      return adminStep(`recording ${processor}'s consumer name`, () => Promise.reject(err));
    }
  }

  /** Removes one processor's dead letter of an event (after a replay or a dismissal). */
  async remove(processor: string, sequence: number): Promise<void> {
    await adminStep(`removing dead letter #${sequence} of ${processor}`, () =>
      this.acrossDrops(() => this.kv.purge(keyOf(processor, sequence))),
    );
  }

  /** Sends an idempotent request, and again after the reconnect if the connection drops before its answer. */
  private acrossDrops<T>(send: () => Promise<T>): Promise<T> {
    return acrossDrops(this.nc, send, REQUEST_TIMEOUT_MS);
  }
}

const LIST_PAGE = 256;
/** How long a request waits for a dropped connection, and a direct get for its answer. */
const REQUEST_TIMEOUT_MS = 5000;
const decoder = new TextDecoder();

function keyOf(processor: string, sequence: number): string {
  return `${encodeToken('processor', processor)}.${sequence}`;
}

// "=consumer" is no encoded token (after "=" come two hex digits), so these keys never
// fall under a processor's "<processor>.>" dead letters.
const consumerKeyOf = (processor: string) => `=consumer.${encodeToken('processor', processor)}`;
