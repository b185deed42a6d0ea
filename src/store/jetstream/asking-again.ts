import { delay } from '@nats-io/nats-core';

/**
 * How long to wait, in turn, for a replica that answered from behind this store's own
 * appends (ms). On a replicated stream any replica answers direct gets, and a follower
 * applies an append a moment after the leader has acknowledged it.
 */
export const CATCH_UP_WAITS: readonly number[] = [5, 25, 100, 400, 1000];

/**
 * How long to wait, in turn, while nothing answers a stream that exists (ms): between two
 * leaders nobody takes an append, and a server shutting down stops JetStream before it
 * closes its connections. Handed to nats.js's `backoff`, which only reads it.
 */
export const NOBODY_ANSWERING_WAITS: readonly number[] = [50, 100, 250, 500, 1000];

/**
 * Asks until the answer will do, waiting `waits` (ms) in turn between asks, and returns
 * the last answer, settled or not: the caller says what an unsettled one means.
 */
export async function askUntil<T>(
  ask: () => Promise<T>,
  settled: (answer: T) => boolean,
  waits: readonly number[] = CATCH_UP_WAITS,
): Promise<T> {
  let answer = await ask();
  for (const wait of waits) {
    if (settled(answer)) break;
    await delay(wait);
    answer = await ask();
  }
  return answer;
}
