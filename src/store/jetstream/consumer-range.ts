import type { NatsConnection } from '@nats-io/nats-core';
import type { StoredMessage } from '../../codec/event-format.js';
import { OrderedConsumer } from './ordered-consumer.js';

type Pending = StoredMessage & { pending: number };
/** A flow-control answer, queued in line with the messages the server sent before it. */
type Answer = () => void;
const CHUNK = 256;

/**
 * Streams (after, until] through an ordered consumer, for big reads, in chunks. Memory
 * stays bounded by the server's flow-control window: a flow-control request is answered
 * only when the reader has taken every message sent before it, exactly where it sits in
 * the queue, so a slow reader makes the server wait. Ends once caught up.
 */
export async function* consumerRange(
  nc: NatsConnection,
  stream: string,
  filter: string,
  after: number,
  until: number,
): AsyncGenerator<ReadonlyArray<Pending>> {
  let queue: Array<Pending | Answer> = [];
  let head = 0;
  let caughtUp = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const consumer = new OrderedConsumer(
    { nc, stream, filter, after },
    {
      message(msg, pending) {
        queue.push(Object.assign(msg, { pending }));
        wake?.();
      },
      flowControl(answer) {
        queue.push(answer);
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
        const chunk: Pending[] = [];
        let done = false;
        while (head < queue.length && chunk.length < CHUNK) {
          const item = queue[head++]!;
          // Everything before this answer has been handed over: let the server go on.
          if (typeof item === 'function') item();
          else if (item.sequence <= until) chunk.push(item);
          if (typeof item !== 'function' && item.sequence >= until) done = true;
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
        if (done) return;
        continue;
      }
      if (failure) throw failure;
      if (caughtUp) return;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    await consumer.stop();
  }
}
