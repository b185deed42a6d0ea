import type { EventFormat, StoredMessage } from '../codec/event-format.js';
import { InvalidArgumentError, MalformedEventError, withOrigin } from '../errors.js';
import { assertEvolver, assertObject } from '../options.js';
import type { EntityRef, EventFilter } from '../subjects/subjects.js';
import type {
  EnvelopeOf,
  EventReader,
  Evolver,
  Loaded,
  MalformedEvent,
  ReadOptions,
  ReadTarget,
} from './types.js';

/** Refuses an `after` or `until` that is not a stream sequence, before any request. */
export function checkBound(name: 'after' | 'until', value: unknown): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && (value as number) >= 0))
    throw new InvalidArgumentError(name, value, 'use a sequence number >= 0');
}

const filterKeys = new Set(['entityType', 'entityId', 'eventType']);
const targetShapes = 'use an entity { type, id } or a filter { entityType?, entityId?, eventType? }';

/**
 * The filter a read or watch selects, once its options are known to be an object: plain
 * JavaScript may pass `'new'` where `{ after: 'new' }` belongs, which would be ignored.
 */
export function filterOf(target: ReadTarget, options: object, call: 'read' | 'watch'): EventFilter {
  assertObject(
    `${call} options`,
    options,
    call === 'read' ? '{ after, until, … }' : "{ after: number | 'new', … }",
  );
  return toFilter(target);
}

/**
 * Normalizes an entity reference or a filter to a filter. A target that is neither (a
 * mix of both, a misspelt key) is refused: read as a filter, it would silently match more.
 * `argument` names it in the error (a view's or processor's `filter`).
 */
export function toFilter(target: ReadTarget, argument = 'target'): EventFilter {
  if (typeof target !== 'object' || target === null)
    throw new InvalidArgumentError(argument, target, targetShapes);
  const value = (key: string) => (target as Record<string, unknown>)[key];
  // Keys set to undefined (a spread of optional fields) count as absent; `in` also sees
  // getters, as on a domain class.
  const has = (key: string) => key in target && value(key) !== undefined;
  if (has('type') || has('id')) {
    // An entity may be a richer domain object, so keys other than a filter's are let be.
    if ([...filterKeys].some(has))
      throw new InvalidArgumentError(argument, target, `${targetShapes}, not a mix`);
    if (!(has('type') && has('id')))
      throw new InvalidArgumentError(argument, target, 'an entity needs both type and id');
    const entity = target as EntityRef;
    return { entityType: entity.type, entityId: entity.id };
  }
  const unknown = Object.keys(target).filter((k) => value(k) !== undefined && !filterKeys.has(k));
  if (unknown.length > 0)
    throw new InvalidArgumentError(argument, target, `${targetShapes}; unknown: ${unknown.join(', ')}`);
  return target;
}

/** One message decoded as soon as it arrives: an envelope, a pending async validation, or the failure. */
export interface Decoded<E extends object> {
  readonly sequence: number;
  readonly pending: number;
  readonly result: EnvelopeOf<E> | Promise<EnvelopeOf<E>> | DecodeFailure;
}

/** A decode that threw; kept in line so the reader raises or reports it in order. */
export class DecodeFailure {
  constructor(readonly error: unknown) {}
}

/**
 * Decodes one message now. Stores call this where messages arrive, so the wire objects
 * die young and big replays keep little alive; only envelopes wait for the reader.
 */
export function decodeNow<E extends object>(
  format: EventFormat<E>,
  msg: StoredMessage & { readonly pending: number },
): Decoded<E> {
  try {
    const result = format.decode(msg);
    // The reader awaits it later, in order; until then a rejection is not "unhandled".
    if (result instanceof Promise) result.catch(() => undefined);
    return { sequence: msg.sequence, pending: msg.pending, result };
  } catch (error) {
    return { sequence: msg.sequence, pending: msg.pending, result: new DecodeFailure(error) };
  }
}

/** Applies `map` to every item of every chunk, as the chunks go by. */
export async function* mapChunks<T, U>(
  chunks: AsyncIterable<ReadonlyArray<T>>,
  map: (item: T) => U,
): AsyncGenerator<ReadonlyArray<U>> {
  for await (const chunk of chunks) yield chunk.map(map);
}

/**
 * Turns chunks of decoded messages into an {@link EventReader}, applying the
 * malformed-event policy. Shared by every store, so they fail and report alike.
 */
export function readEvents<E extends object>(
  /** Chunks in sequence order: one await per chunk keeps big replays cheap. */
  source: () => AsyncIterable<ReadonlyArray<Decoded<E>>>,
  options: ReadOptions,
): EventReader<E> {
  const malformed: MalformedEvent[] = [];
  const report = options.onMalformed === 'report';
  // A malformed event is reported when the policy says so; anything else is rethrown.
  const reject = (error: unknown): void => {
    if (!report || !(error instanceof MalformedEventError)) throw error;
    malformed.push({ sequence: error.sequence, subject: error.subject, raw: error.raw, error });
  };
  return {
    malformed,
    // A hand-written iterator rather than an async generator: it hands out buffered
    // events with one resolved promise each, which is cheaper per event.
    [Symbol.asyncIterator]() {
      // Checked here so that a bad bound fails the `for await`, like any read error.
      checkBound('after', options.after);
      checkBound('until', options.until);
      const chunks = source()[Symbol.asyncIterator]();
      let chunk: ReadonlyArray<Decoded<E>> = [];
      let index = 0;
      let delivered = 0;
      // Each pass reads the events again, so it reports their problems afresh.
      malformed.length = 0;
      return {
        async next(): Promise<IteratorResult<EnvelopeOf<E>>> {
          try {
            for (;;) {
              while (index < chunk.length) {
                const { pending, result } = chunk[index++]!;
                options.onProgress?.({ delivered: ++delivered, pending });
                if (result instanceof DecodeFailure) {
                  reject(result.error);
                  continue;
                }
                if (!(result instanceof Promise)) return { value: result, done: false };
                try {
                  return { value: await result, done: false };
                } catch (error) {
                  reject(error);
                }
              }
              const more = await chunks.next();
              if (more.done) return { value: undefined, done: true };
              chunk = more.value;
              index = 0;
            }
          } catch (error) {
            // `for await` does not call return() when next() throws: stop the source here,
            // or a bulk read's consumer would go on filling its window.
            await chunks.return?.().catch(() => undefined);
            // Made here, in the next() the reader's loop awaits: its stack names that loop.
            throw withOrigin(error, 'read by', new Error());
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

/**
 * Folds events into state; the version is the last event's sequence (0 when none),
 * counting the malformed events the reader reported and skipped.
 */
export async function foldEvents<S, E extends object>(
  events: EventReader<E>,
  evolver: Evolver<S, E>,
): Promise<Loaded<S>> {
  // Before the first event is read: a load without a fold has nothing to do.
  assertEvolver(evolver);
  let state = evolver.initial;
  let version = 0;
  for await (const event of events) {
    // Called on the evolver, so one written as a class keeps its `this`.
    state = evolver.evolve(state, event);
    version = event.sequence;
  }
  const malformed = [...events.malformed];
  for (const m of malformed) version = Math.max(version, m.sequence);
  return { state, version, malformed };
}
