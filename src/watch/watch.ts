import { backoff } from '@nats-io/nats-core';
import { Observable } from 'rxjs';
import type { EventFormat, StoredMessage } from '../codec/event-format.js';
import {
  InvalidArgumentError,
  MalformedEventError,
  StoreNotFoundError,
  UnavailableError,
  withOrigin,
} from '../errors.js';
import type { EnvelopeOf } from '../store/types.js';
import type { OpenSource } from './source.js';
import { checkBound } from '../store/reading.js';
import type { WatchMessage, WatchOptions, WatchProgress } from './types.js';

/** What a watch with `until` asks the store before it may complete. */
export interface StoredBounds {
  /** Whether the stream holds a message at or past `sequence`: nothing at or before it can still be stored. */
  reached(sequence: number): Promise<boolean>;
  /** Sequence of the first stored event on the watch's filter at or after `from`, if any. */
  firstFrom(from: number): Promise<number | undefined>;
}

/** Waits between looks at a stream that has not reached `until` yet. */
const UNTIL_POLL = backoff([100, 250, 500, 1000, 2000, 5000]);

/**
 * The one place a watch Observable is built. Cold: each subscription opens its own
 * source (an ordered consumer on JetStream) and its teardown stops it, even when the
 * unsubscribe lands before the source has finished starting.
 */
export function watchEvents<E extends object>(
  format: EventFormat<E>,
  open: OpenSource,
  options: WatchOptions = {},
  stored?: StoredBounds,
): Observable<WatchMessage<E>> {
  // Where the watch was made, for its errors' stacks (see withOrigin); formatted only on one.
  const origin = new Error();
  return new Observable<WatchMessage<E>>((subscriber) => {
    const fail = (err: unknown) => subscriber.error(withOrigin(err, 'watch made', origin));
    if (options.after !== 'new') checkBound('after', options.after);
    checkBound('until', options.until);
    checkHeartbeat(options.heartbeatMs);
    const until = options.until ?? Infinity;
    let delivered = 0;
    let pending = 0;
    let caughtUp = false;
    /** Every matching event up to here has been emitted. */
    let cursor = typeof options.after === 'number' ? options.after : 0;
    // Async validators must not reorder events: once one decode is async, later ones queue behind it.
    let tail: Promise<void> | undefined;
    const progress = (): WatchProgress => ({ delivered, pending, caughtUp });

    const inOrder = (step: () => void | Promise<void>) => {
      if (tail) {
        tail = tail.then(step).catch(fail);
        return;
      }
      try {
        const result = step();
        if (result instanceof Promise) tail = result.catch(fail);
      } catch (err) {
        fail(err);
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

    // Live, before `until`: the watch may end once the stream holds `until` (so nothing at
    // or before it can still be stored) and no event of the filter in (cursor, until] is
    // still on its way. Other subjects may take the stream there unseen, and an event on its
    // way may be deleted before it arrives: so look again after each event, and on a timer.
    let reachedUntil = false;
    let looking = false;
    let lookAgain = false;
    let polls = 0;
    let poll: ReturnType<typeof setTimeout> | undefined;
    const endIfSettled = (): void => {
      if (!stored || until === Infinity || subscriber.closed) return;
      if (looking) return void (lookAgain = true);
      looking = true;
      lookAgain = false;
      clearTimeout(poll);
      const later = () => {
        looking = false;
        if (subscriber.closed) return;
        if (lookAgain) return endIfSettled();
        poll = setTimeout(endIfSettled, UNTIL_POLL.backoff(polls++));
      };
      settled(stored).then(
        (done) => (done ? subscriber.complete() : later()),
        (err) =>
          // A server restarting or slow to answer: the source rides that out, so look later.
          err instanceof UnavailableError || err instanceof StoreNotFoundError ? later() : fail(err),
      );
    };
    // The order matters: only once `until` is stored is "nothing matching up to it" final.
    const settled = async (bounds: StoredBounds): Promise<boolean> => {
      reachedUntil ||= await bounds.reached(until);
      if (!reachedUntil) return false;
      const next = await bounds.firstFrom(cursor + 1);
      return next === undefined || next > until;
    };

    const emitEvent = (msg: StoredMessage, event: EnvelopeOf<E> | MalformedEventError) => {
      if (subscriber.closed) return;
      if (msg.sequence > until) return finish(until);
      delivered++;
      if (event instanceof MalformedEventError) {
        if (options.onMalformed !== 'report') return fail(event);
        subscriber.next({
          kind: 'malformed',
          malformed: { sequence: msg.sequence, subject: msg.subject, raw: msg.data, error: event },
          progress: progress(),
        });
      } else {
        subscriber.next({ kind: 'event', event, progress: progress() });
      }
      cursor = msg.sequence;
      if (msg.sequence >= until) finish(msg.sequence);
      else if (caughtUp) {
        polls = 0; // the stream moves: look again soon
        endIfSettled();
      }
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
            if (result) tail = result.catch(fail);
          } catch (err) {
            fail(err);
          }
          return;
        }
        inOrder(() => onMessage(msg, left));
      },
      caughtUp(sequence) {
        inOrder(() => {
          if (subscriber.closed) return;
          cursor = Math.max(cursor, sequence);
          emitCaughtUp(Math.min(sequence, until));
          if (options.noWait || sequence >= until) return subscriber.complete();
          endIfSettled();
        });
      },
      error(err) {
        inOrder(() => fail(err));
      },
      // Held while async decodes queue: the server then sends no more than its window.
      flowControl(answer) {
        if (tail) inOrder(answer);
        else answer();
      },
      emitted: () => tail ?? Promise.resolve(),
    });
    source.start().catch(fail);
    return () => {
      clearTimeout(poll);
      void source.stop();
    };
  });
}

function asMalformed(err: unknown): MalformedEventError {
  if (err instanceof MalformedEventError) return err;
  throw err;
}

/**
 * nats-server refuses idle heartbeats under 100 ms, with an error that names no option.
 * A watch's consumer asks to stay 5 heartbeats unused, which must fit the 5-minute cap
 * ensureStore puts on consumers by default, or every watch is refused at runtime.
 */
function checkHeartbeat(ms: number | undefined): void {
  if (ms !== undefined && !(Number.isFinite(ms) && ms >= 100 && ms <= 60_000))
    throw new InvalidArgumentError('heartbeatMs', ms, 'use a number of milliseconds from 100 to 60000');
}
