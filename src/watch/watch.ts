import { Observable } from 'rxjs';
import type { EventFormat, StoredMessage } from '../codec/event-format.js';
import { MalformedEventError } from '../errors.js';
import type { EnvelopeOf, EventMap } from '../store/types.js';
import type { OpenSource } from './source.js';
import { checkBound } from '../store/reading.js';
import type { WatchMessage, WatchOptions, WatchProgress } from './types.js';

/**
 * The one place a watch Observable is built. Cold: each subscription opens its own
 * source (an ordered consumer on JetStream) and its teardown stops it, even when the
 * unsubscribe lands before the source has finished starting.
 */
export function watchEvents<E extends EventMap>(
  format: EventFormat<E>,
  open: OpenSource,
  options: WatchOptions = {},
  /** Whether the stream holds anything at or past a sequence: then nothing before it can still arrive. */
  reached: (sequence: number) => Promise<boolean> = async () => false,
): Observable<WatchMessage<E>> {
  return new Observable<WatchMessage<E>>((subscriber) => {
    if (options.after !== 'new') checkBound('after', options.after);
    checkBound('until', options.until);
    const until = options.until ?? Infinity;
    let delivered = 0;
    let pending = 0;
    let caughtUp = false;
    // Async validators must not reorder events: once one decode is async, later ones queue behind it.
    let tail: Promise<void> | undefined;
    const progress = (): WatchProgress => ({ delivered, pending, caughtUp });

    const inOrder = (step: () => void | Promise<void>) => {
      if (tail) {
        tail = tail.then(step).catch((err) => subscriber.error(err));
        return;
      }
      try {
        const result = step();
        if (result instanceof Promise) tail = result.catch((err) => subscriber.error(err));
      } catch (err) {
        subscriber.error(err);
      }
    };

    // Every event up to `until` is out: say caught-up (once) and complete.
    const finish = (sequence: number) => {
      if (!caughtUp) emitCaughtUp(sequence);
      subscriber.complete();
    };
    const emitCaughtUp = (sequence: number) => {
      caughtUp = true;
      pending = 0;
      subscriber.next({ kind: 'caught-up', sequence, progress: progress() });
    };

    const emitEvent = (msg: StoredMessage, event: EnvelopeOf<E> | MalformedEventError) => {
      if (subscriber.closed) return;
      if (msg.sequence > until) return finish(until);
      delivered++;
      if (event instanceof MalformedEventError) {
        if (options.onMalformed !== 'report') return subscriber.error(event);
        subscriber.next({
          kind: 'malformed',
          malformed: { sequence: msg.sequence, subject: msg.subject, raw: msg.data, error: event },
          progress: progress(),
        });
      } else {
        subscriber.next({ kind: 'event', event, progress: progress() });
      }
      if (msg.sequence >= until) finish(msg.sequence);
    };

    const decode = (
      msg: StoredMessage,
    ): EnvelopeOf<E> | MalformedEventError | Promise<EnvelopeOf<E> | MalformedEventError> => {
      try {
        const decoded = format.decode(msg);
        return decoded instanceof Promise ? decoded.catch(asMalformed) : decoded;
      } catch (err) {
        return asMalformed(err);
      }
    };

    const onMessage = (msg: StoredMessage, left: number): void | Promise<void> => {
      pending = caughtUp ? 0 : left;
      const decoded = decode(msg);
      if (decoded instanceof Promise) return decoded.then((d) => emitEvent(msg, d));
      emitEvent(msg, decoded);
    };

    if (typeof options.after === 'number' && options.after >= until) {
      finish(until);
      return;
    }
    const source = open({
      message(msg, left) {
        // The hot path: no closure per event unless an async validator forces a queue.
        if (!tail) {
          try {
            const result = onMessage(msg, left);
            if (result) tail = result.catch((err) => subscriber.error(err));
          } catch (err) {
            subscriber.error(err);
          }
          return;
        }
        inOrder(() => onMessage(msg, left));
      },
      caughtUp(sequence) {
        inOrder(() => {
          if (subscriber.closed) return;
          emitCaughtUp(Math.min(sequence, until));
          if (options.noWait || sequence >= until) return subscriber.complete();
          // The filter's last event is before `until`, and later events may never match it.
          if (until < Infinity)
            return reached(until).then((done) => {
              if (done) subscriber.complete();
            });
        });
      },
      error(err) {
        inOrder(() => subscriber.error(err));
      },
    });
    source.start().catch((err) => subscriber.error(err));
    return () => void source.stop();
  });
}

function asMalformed(err: unknown): MalformedEventError {
  if (err instanceof MalformedEventError) return err;
  throw err;
}
