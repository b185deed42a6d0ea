import type { NatsConnection } from '@nats-io/nats-core';
import type { StoredMessage } from '../../codec/event-format.js';
import { OrderedConsumer } from './ordered-consumer.js';

type Pending = StoredMessage & { pending: number };
const CHUNK = 256;

/**
 * Streams (after, until] through an ordered consumer, for big reads. Memory stays
 * bounded: past `highWater` buffered messages the consumer holds its flow-control
 * replies, which pauses the server, and resumes below half of it. Ends once caught up.
 */
export async function* consumerRange(
  nc: NatsConnection,
  stream: string,
  filter: string,
  after: number,
  until: number,
  highWater = 1024,
): AsyncGenerator<ReadonlyArray<Pending>> {
  let queue: Pending[] = [];
  let head = 0;
  let caughtUp = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const consumer = new OrderedConsumer(
    { nc, stream, filter, after },
    {
      message(msg, pending) {
        queue.push(Object.assign(msg, { pending }));
        if (queue.length - head >= highWater) consumer.pause();
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
        // Hand over what is buffered in chunks: one await per chunk, not per event.
        const chunk = queue.slice(head, head + CHUNK).filter((m) => m.sequence <= until);
        head += CHUNK;
        if (head >= queue.length) {
          queue = [];
          head = 0;
        }
        if (queue.length - head < highWater / 2) consumer.resume();
        if (chunk.length > 0) yield chunk;
        if (chunk.length === 0 || chunk[chunk.length - 1]!.sequence >= until) return;
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
