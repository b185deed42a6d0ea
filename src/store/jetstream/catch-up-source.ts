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
export class CatchUpSource implements WatchSource {
  private live?: WatchSource;
  private stopped = false;

  constructor(
    private readonly after: number,
    private readonly read: (after: number) => AsyncIterable<ReadonlyArray<PendingMessage>>,
    private readonly follow: (after: number) => WatchSource,
    private readonly handlers: SourceHandlers,
  ) {}

  async start(): Promise<void> {
    let cursor = this.after;
    try {
      for await (const chunk of this.read(cursor)) {
        for (const msg of chunk) {
          if (this.stopped) return;
          this.handlers.message(msg, msg.pending);
          cursor = msg.sequence;
        }
      }
    } catch {
      // Resumed below from the cursor by the live source, which reports what is fatal.
    }
    if (this.stopped) return;
    this.live = this.follow(cursor);
    await this.live.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.live?.stop();
  }
}
