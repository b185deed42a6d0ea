import type { EventFormat, StoredMessage } from '../codec/event-format.js';
import { MalformedEventError } from '../errors.js';
import type { EventFilter } from '../subjects/subjects.js';
import type {
  EnvelopeOf,
  EventMap,
  EventReader,
  Evolver,
  Loaded,
  MalformedEvent,
  ReadOptions,
  ReadTarget,
} from './types.js';

/** Normalizes an entity reference or a filter to a filter. */
export function toFilter(target: ReadTarget): EventFilter {
  if ('type' in target && 'id' in target) return { entityType: target.type, entityId: target.id };
  return target as EventFilter;
}

/**
 * Decodes a stream of stored messages into an {@link EventReader}, applying the
 * malformed-event policy. Shared by every store, so they fail and report alike.
 */
export function readEvents<E extends EventMap>(
  format: EventFormat<E>,
  /** Chunks of messages in sequence order: one await per chunk keeps big replays cheap. */
  source: () => AsyncIterable<ReadonlyArray<StoredMessage & { readonly pending: number }>>,
  options: ReadOptions,
): EventReader<E> {
  const malformed: MalformedEvent[] = [];
  const report = options.onMalformed === 'report';
  return {
    malformed,
    // A hand-written iterator rather than an async generator: it hands out buffered
    // events with one resolved promise each, which is several times cheaper per event.
    [Symbol.asyncIterator]() {
      const chunks = source()[Symbol.asyncIterator]();
      let chunk: ReadonlyArray<StoredMessage & { readonly pending: number }> = [];
      let index = 0;
      let delivered = 0;
      return {
        async next(): Promise<IteratorResult<EnvelopeOf<E>>> {
          for (;;) {
            while (index < chunk.length) {
              const msg = chunk[index++]!;
              options.onProgress?.({ delivered: ++delivered, pending: msg.pending });
              try {
                const decoded = format.decode(msg);
                return { value: decoded instanceof Promise ? await decoded : decoded, done: false };
              } catch (err) {
                if (!report || !(err instanceof MalformedEventError)) throw err;
                malformed.push({ sequence: msg.sequence, subject: msg.subject, raw: msg.data, error: err });
              }
            }
            const more = await chunks.next();
            if (more.done) return { value: undefined, done: true };
            chunk = more.value;
            index = 0;
          }
        },
        async return(): Promise<IteratorResult<EnvelopeOf<E>>> {
          await chunks.return?.();
          return { value: undefined, done: true };
        },
      };
    },
  };
}

/** Folds events into state; the version is the last event's sequence (0 when none). */
export async function foldEvents<S, E extends EventMap>(
  events: AsyncIterable<EnvelopeOf<E>>,
  { initial, evolve }: Evolver<S, E>,
): Promise<Loaded<S>> {
  let state = initial;
  let version = 0;
  for await (const event of events) {
    state = evolve(state, event);
    version = event.sequence;
  }
  return { state, version };
}
