import { backoff, delay } from '@nats-io/nats-core';
import { UnavailableError } from '../../errors.js';
import type { SourceHandlers, WatchSource } from '../../watch/source.js';
import type { PendingMessage } from './direct.js';

/**
 * A watch source that catches up through reads and then follows live from the last
 * sequence it delivered. One entity's watch uses it: its history comes cheapest from
 * {@link entityRange}, and its ordered consumer then starts near the stream's end, where
 * the server's search for the entity's next event is short.
 *
 * If the catch-up read fails (a dropped connection, say), the live source simply starts
 * from the last sequence delivered: it resumes across reconnects and reports fatal
 * errors itself, so nothing is skipped, repeated or hidden.
 */
export function catchUpSource(
  after: number,
  read: (after: number) => AsyncIterable<ReadonlyArray<PendingMessage>>,
  follow: (after: number) => WatchSource,
  handlers: SourceHandlers,
): WatchSource {
  let live: WatchSource | undefined;
  let stopped = false;
  return {
    async start() {
      let cursor = after;
      try {
        for await (const chunk of read(cursor)) {
          for (const msg of chunk) {
            if (stopped) return;
            handlers.message(msg, msg.pending);
            cursor = msg.sequence;
          }
          // Async decodes still queued: read the next page only once they are done.
          await handlers.emitted?.();
        }
      } catch {
        // Resumed below from the cursor by the live source, which reports what is fatal.
      }
      if (stopped) return;
      live = follow(cursor);
      await live.start();
    },
    async stop() {
      stopped = true;
      await live?.stop();
    },
  };
}

/**
 * A watch source for `after: 'new'`: it finds the newest matching event first and follows
 * from there. A consumer asked for "new" has no position until its create reply arrives;
 * when a drop loses that reply, the consumer made again would start at the stream's end as
 * it is then, skipping what was appended in between. A sequence resumes exactly.
 *
 * The lookup rides drops and timeouts like a consumer create does; other errors (no
 * stream, no permission) end the watch.
 */
export function newestOnSource(
  newest: () => Promise<number>,
  follow: (after: number) => WatchSource,
  handlers: SourceHandlers,
): WatchSource {
  let live: WatchSource | undefined;
  let stopped = false;
  const waits = backoff([100, 250, 500, 1000, 2000]);
  return {
    async start() {
      let after: number | undefined;
      for (let attempt = 0; after === undefined; attempt++) {
        try {
          after = await newest();
        } catch (err) {
          if (!(err instanceof UnavailableError)) return stopped ? undefined : handlers.error(err as Error);
          await delay(waits.backoff(attempt));
        }
        if (stopped) return;
      }
      live = follow(after);
      await live.start();
    },
    async stop() {
      stopped = true;
      await live?.stop();
    },
  };
}
