import type { StoredMessage } from '../../codec/event-format.js';
import { OrderedConsumer, type OrderedConsumerOptions } from './ordered-consumer.js';

type Pending = StoredMessage & { pending: number };
/** A flow-control answer, queued in line with the messages the server sent before it. */
type Answer = { readonly answer: true } & (() => void);
const isAnswer = (item: unknown): item is Answer => typeof item === 'function' && 'answer' in item;
const CHUNK = 256;

/** Sets the count in place: a fresh object per message would only feed the collector. */
function withPending(msg: StoredMessage, pending: number): Pending {
  (msg as Pending).pending = pending;
  return msg as Pending;
}

/**
 * Streams (after, until] through an ordered consumer, for big reads, in chunks. Memory
 * stays bounded by the server's flow-control window: a flow-control request is answered
 * only when the reader has taken every message sent before it, exactly where it sits in
 * the queue, so a slow reader makes the server wait. Ends once caught up.
 */
export async function* consumerRange<T>(
  /** The stream, and how to reach it (see {@link OrderedConsumerOptions}). */
  source: Pick<OrderedConsumerOptions, 'nc' | 'stream' | 'apiPrefix'>,
  filter: string,
  after: number,
  until: number,
  /** Applied as each message arrives (e.g. decoding), so the wire objects die young. */
  map: (msg: Pending) => T,
): AsyncGenerator<ReadonlyArray<T>> {
  // Nothing to read: no consumer to create (and, for a tenant, to leave on the server).
  if (after >= until) return;
  let queue: Array<T | Answer> = [];
  let head = 0;
  let caughtUp = false;
  let reachedUntil = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const consumer = new OrderedConsumer(
    { ...source, filter, after },
    {
      message(msg, pending) {
        if (reachedUntil) return;
        if (msg.sequence <= until) queue.push(map(withPending(msg, pending)));
        reachedUntil = msg.sequence >= until;
        wake?.();
      },
      flowControl(answer) {
        queue.push(Object.assign(answer, { answer: true as const }));
        wake?.();
      },
      caughtUp() {
        caughtUp = true;
        wake?.();
      },
      error(err) {
        failure = err;
        wake?.();
      },
    },
  );
  try {
    await consumer.start();
    for (;;) {
      if (head < queue.length) {
        const chunk: T[] = [];
        while (head < queue.length && chunk.length < CHUNK) {
          const item = queue[head++]!;
          // Everything before this answer has been handed over: let the server go on.
          if (isAnswer(item)) item();
          else chunk.push(item);
        }
        // Drop what was handed over without copying the rest on every chunk.
        if (head === queue.length) {
          queue = [];
          head = 0;
        } else if (head > 4096 && head * 2 > queue.length) {
          queue = queue.slice(head);
          head = 0;
        }
        if (chunk.length > 0) yield chunk;
        continue;
      }
      if (failure) throw failure;
      if (caughtUp || reachedUntil) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    await consumer.stop();
  }
}
