import { Empty, type Msg, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import type { StoredMessage } from '../../codec/event-format.js';
import { ServerError, StoreNotFoundError, UnavailableError } from '../../errors.js';
import { directMessage, fromRequestError } from './api.js';
import { inboxFor } from '../../connection/connect.js';

/**
 * Reads through the stream's direct-get API (`allow_direct`): no consumer is created,
 * nothing is left behind on the server, and a tenant user needs only
 * `$JS.API.DIRECT.GET.<stream>.>` in its own account.
 */
export class DirectReader {
  constructor(
    private readonly nc: NatsConnection,
    private readonly stream: string,
    private readonly timeoutMs: number,
    /** What to tell the user when the stream is missing (views are not created by ensureStore). */
    private readonly remedy?: string,
  ) {}

  /** The last message on a subject (wildcards allowed), or null when there is none. */
  async last(subject: string): Promise<StoredMessage | null> {
    const api = `$JS.API.DIRECT.GET.${this.stream}.${subject}`;
    let reply: Msg;
    try {
      reply = await this.nc.request(api, Empty, { timeout: this.timeoutMs });
    } catch (err) {
      const mapped = fromRequestError(err, this.stream, api);
      throw mapped instanceof StoreNotFoundError ? this.missing(err) : mapped;
    }
    const status = statusOf(reply);
    if (status === 404) return null;
    if (status !== 0) throw this.statusError(reply, status);
    return directMessage(reply);
  }

  /**
   * Streams every message matching `filter` with a sequence in (after, until], page by
   * page. At most one page is buffered, so memory stays bounded however long the range.
   * When more than `handOffAbove` messages remain after a page, the rest is handed to
   * `bulk` (an ordered consumer streams several times faster than direct get pages).
   */
  async *range(
    filter: string,
    after: number,
    until: number,
    pageSize: number,
    bulk?: {
      handOffAbove: number;
      read: (after: number) => AsyncIterable<StoredMessage & { pending: number }>;
    },
  ): AsyncGenerator<StoredMessage & { pending: number }> {
    let next = after + 1;
    while (next <= until) {
      let delivered = 0;
      let pending = 0;
      for await (const msg of this.page(filter, next, Math.min(pageSize, until - next + 1))) {
        if (msg.sequence > until) return;
        delivered++;
        next = msg.sequence + 1;
        pending = msg.pending;
        yield msg;
      }
      if (delivered === 0 || pending === 0) return;
      if (bulk && pending > bulk.handOffAbove) return yield* bulk.read(next - 1);
    }
  }

  page(filter: string, seq: number, batch: number): AsyncIterable<StoredMessage & { pending: number }> {
    const api = `$JS.API.DIRECT.GET.${this.stream}`;
    const body = JSON.stringify({ seq, next_by_subj: filter, batch });
    return pageIterator(this.nc, api, body, this.timeoutMs, (reply, status) => {
      if (status !== 0) return this.statusError(reply, status);
      return undefined;
    });
  }

  private missing(cause?: unknown): StoreNotFoundError {
    return new StoreNotFoundError(this.stream, { cause, remedy: this.remedy });
  }

  private statusError(reply: Msg, status: number): Error {
    const description = reply.headers?.description ?? '';
    if (status === 503) return this.missing();
    if (status === 408)
      return new UnavailableError(`direct get on ${this.stream} timed out (${description})`);
    return new ServerError(status, `direct get on ${this.stream}: ${description}`);
  }
}

/** Status code of a header-only reply: 0 for a message, else 404 / 204 / 503 … */
function statusOf(msg: Msg): number {
  return msg.headers && msg.data.length === 0 ? msg.headers.code : 0;
}

/**
 * One direct-get batch as an async iterable. A watchdog fails it when the server goes
 * quiet mid-page (a dropped connection would otherwise hang the read forever), and
 * `return()` unsubscribes at once.
 */
function pageIterator(
  nc: NatsConnection,
  api: string,
  body: string,
  timeoutMs: number,
  checkStatus: (reply: Msg, status: number) => Error | undefined,
): AsyncIterable<StoredMessage & { pending: number }> {
  return {
    [Symbol.asyncIterator]() {
      const queue: Array<StoredMessage & { pending: number }> = [];
      let done = false;
      let failure: unknown;
      let wake: (() => void) | undefined;
      let lastActivity = Date.now();
      const finish = (err?: unknown) => {
        if (done) return;
        done = true;
        failure = err;
        sub.unsubscribe();
        clearInterval(watchdog);
        wake?.();
      };
      const inbox = inboxFor(nc);
      let sub: Subscription;
      try {
        sub = nc.subscribe(inbox, {
          callback: (err, reply) => {
            lastActivity = Date.now();
            if (err) return finish(fromRequestError(err, '', api));
            const status = statusOf(reply);
            // 404: nothing matches; 204: end of batch.
            if (status === 404 || status === 204) return finish();
            const error = checkStatus(reply, status);
            if (error) return finish(error);
            const msg = directMessage(reply);
            queue.push({ ...msg, pending: Number(reply.headers?.get('Nats-Num-Pending') || 0) });
            wake?.();
          },
        });
        nc.publish(api, body, { reply: inbox });
      } catch (err) {
        throw fromRequestError(err, '', api);
      }
      const watchdog = setInterval(
        () => {
          if (Date.now() - lastActivity > timeoutMs)
            finish(new UnavailableError(`no answer from the server on ${api}`));
        },
        Math.max(50, timeoutMs / 4),
      );
      return {
        async next() {
          while (queue.length === 0 && !done) await new Promise<void>((r) => (wake = r));
          wake = undefined;
          if (queue.length > 0) return { value: queue.shift()!, done: false };
          if (failure) throw failure;
          return { value: undefined, done: true };
        },
        async return() {
          finish();
          queue.length = 0;
          return { value: undefined, done: true };
        },
      };
    },
  };
}
