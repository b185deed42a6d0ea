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
    async *[Symbol.asyncIterator]() {
      let delivered = 0;
      for await (const chunk of source()) {
        for (const msg of chunk) {
          options.onProgress?.({ delivered: ++delivered, pending: msg.pending });
          try {
            const decoded = format.decode(msg);
            // Await only async validators: a microtask per event is measurable on big replays.
            yield decoded instanceof Promise ? await decoded : decoded;
          } catch (err) {
            if (!report || !(err instanceof MalformedEventError)) throw err;
            malformed.push({ sequence: msg.sequence, subject: msg.subject, raw: msg.data, error: err });
          }
        }
      }
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
