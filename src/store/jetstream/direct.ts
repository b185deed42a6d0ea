import { backoff, delay, Empty, errors, type Msg, type NatsConnection } from '@nats-io/nats-core';
import type { StoredMessage } from '../../codec/event-format.js';
import { isJetsourceError, ServerError, StoreNotFoundError, UnavailableError } from '../../errors.js';
import { fromRequestError } from '../../connection/request-errors.js';
import { directMessage } from './api.js';
import { jetStreamApi } from '../../connection/connect.js';
import { acrossDrops } from '../../connection/link.js';
import { MORE, repliesOf } from '../../connection/replies.js';
import type { ReadEnd } from './reaching.js';
import { askUntil, CATCH_UP_WAITS, NOBODY_ANSWERING_WAITS } from './asking-again.js';
import { entityPartEnd, sameBatch } from './atomic-batch.js';
import { HORIZON_MS, type OwnAppend, type OwnAppends } from './own-appends.js';

/**
 * A direct get of one message: by `seq`, or the first on `next_by_subj` from `seq` (or
 * from `start_time`, an RFC 3339 time) on.
 */
export interface DirectQuery {
  seq?: number;
  start_time?: string;
  next_by_subj?: string;
}

/**
 * The most a direct-get batch answer carries (the server sends whole messages until it
 * reaches this, so one maximal message more at most). Unbounded, an answer can be as big
 * as the server's per-client `max_pending` (64 MiB by default): the server queues it all
 * at once and cuts a client that drains it slowly (a browser on a slow link, or a server
 * with a lower `max_pending`) as a slow consumer. Readers page on instead.
 */
const ANSWER_BYTES = 1 << 20;

/**
 * How many asks of a listing wait for the end of an atomic append that a get does not
 * find yet: the replica may still be storing it, or the header naming it may be wrong.
 */
const UNSEEN_PART_END_ASKS = 2;

/**
 * The newest of `messages`, with the end of its entity's part of the atomic append it is
 * in (see entityPartEnd); undefined when there is none, or it ends its entity's part.
 */
function newestPart<M extends StoredMessage>(
  messages: ReadonlyArray<M>,
): { last: M; end: number } | undefined {
  const last = newest(messages);
  const end = last && entityPartEnd(last);
  return last && end ? { last, end } : undefined;
}

/** The message with the highest sequence, if any. */
function newest<M extends StoredMessage>(messages: ReadonlyArray<M>): M | undefined {
  let found: M | undefined;
  for (const m of messages) if (!found || m.sequence > found.sequence) found = m;
  return found;
}

/** A stored message and how many matching messages follow it. */
export type PendingMessage = StoredMessage & { pending: number };

/** A direct-get batch's messages and its end (see `DirectReader.batch`). */
interface BatchAnswer {
  messages: PendingMessage[];
  unsent: number;
  upTo?: number;
}

/**
 * Reads through the stream's direct-get API (`allow_direct`): no consumer is created,
 * nothing is left behind on the server, and a tenant user needs only
 * `$JS.API.DIRECT.GET.<stream>.>` (or its account's API prefix).
 */
export class DirectReader {
  /** `<api>.DIRECT.GET.<stream>`: the batch and query form; a subject follows for the last message on it. */
  private readonly api: string;
  /** Whether the stream has answered: then nobody answering means its server is going away. */
  private answered = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly stream: string,
    private readonly timeoutMs: number,
    /** What to tell the user when the stream is missing (views are not created by ensureStore). */
    private readonly remedy?: string,
    /** Where the account has the JetStream API. Default: the connection's (see `connect`). */
    apiPrefix = jetStreamApi(nc),
    /** A store's own appends, which its entity listings wait for (see {@link lastPerSubject}). */
    private readonly own?: OwnAppends,
  ) {
    this.api = `${apiPrefix}.DIRECT.GET.${stream}`;
  }

  /** The last message on a subject (wildcards allowed), or null when there is none. */
  last(subject: string): Promise<StoredMessage | null> {
    return this.one(`${this.api}.${subject}`, Empty);
  }

  /** The one message a query names (see {@link DirectQuery}), or null. */
  get(query: DirectQuery): Promise<StoredMessage | null> {
    return this.one(this.api, JSON.stringify(query));
  }

  /** The message at a sequence the leader reported stored, once a replica that has it answers; null if none does in time. */
  stored(sequence: number): Promise<StoredMessage | null> {
    return askUntil(
      () => this.get({ seq: sequence }),
      (found) => found !== null,
    );
  }

  /**
   * The sequence of the newest message on `filter`, 0 when none; never below this store's
   * own recent appends `filter` matches, which the replica answering may not have yet.
   */
  async lastSequence(filter: string): Promise<number> {
    const last = (await this.last(filter))?.sequence ?? 0;
    return Math.max(last, this.own?.matching(filter, last + 1)?.last ?? 0);
  }

  /**
   * An entity's version: the sequence of its newest event (0 when none), from a listing,
   * so that it waits as an entity read does (see {@link lastPerSubject}), for `waits`. An
   * entity past one listing's cap gets its wildcard's last message, without waiting.
   */
  async version(entitySubject: string, waits = CATCH_UP_WAITS): Promise<number> {
    const lasts = await this.settledListing(entitySubject, 1, this.own?.mustSee(1), waits);
    if (lasts === null) return (await this.last(entitySubject))?.sequence ?? 0;
    return newest(lasts)?.sequence ?? 0;
  }

  /**
   * What follows a read of `filter` (the event after a sequence), and its newest event:
   * with this store's own recent appends, so that a read from a replica behind them goes
   * on until it has them (read your own writes).
   */
  readEnd(filter: string): ReadEnd {
    return {
      next: async (after) =>
        (await this.get({ seq: after + 1, next_by_subj: filter }))?.sequence ??
        this.own?.matching(filter, after + 1)?.first,
      last: () => this.lastSequence(filter),
      missing: (sequence) =>
        this.own?.matching(filter, sequence)?.first === sequence
          ? `, which this store appended under ${HORIZON_MS / 1000} s ago (a replica is behind, or the stream was deleted and made again since)`
          : '',
    };
  }

  /** Up to `count` messages stored from sequence `from` on, whatever their subjects (fewer past one answer's bytes). */
  async run(from: number, count: number): Promise<PendingMessage[]> {
    return (await this.batch({ seq: from, batch: count }))?.messages ?? [];
  }

  private one(api: string, body: string | Uint8Array): Promise<StoredMessage | null> {
    return this.ask(async () => {
      let reply: Msg;
      try {
        reply = await repliesOf(this.nc).one(api, body, { timeoutMs: this.timeoutMs });
      } catch (err) {
        throw this.mapped(err, api);
      }
      const status = statusOf(reply);
      if (status === 404) return null;
      if (status !== 0) throw this.statusError(reply, status);
      return directMessage(reply);
    });
  }

  /**
   * Streams every message matching `filter` with a sequence in (after, until], as one
   * chunk per page: at most one page is buffered, so memory stays bounded however long
   * the range. When more than `handOffAbove` messages remain before `until` after a page,
   * the rest is handed to `bulk` (an ordered consumer streams several times faster than
   * pages).
   */
  async *range<T>(
    filter: string,
    after: number,
    until: number,
    pageSize: number,
    map: (msg: PendingMessage) => T,
    bulk?: { handOffAbove: number; read: (after: number) => AsyncIterable<ReadonlyArray<T>> },
  ): AsyncGenerator<ReadonlyArray<T>> {
    let next = after + 1;
    while (next <= until) {
      const page = (await this.page(filter, next, Math.min(pageSize, until - next + 1))).filter(
        (m) => m.sequence <= until,
      );
      if (page.length === 0) return;
      yield page.map(map);
      const last = page[page.length - 1]!;
      next = last.sequence + 1;
      if (last.pending === 0 || last.sequence >= until) return;
      // `pending` counts to the end of the stream: only what lies before `until` is left to read.
      const left = Math.min(last.pending, until - last.sequence);
      if (bulk && left > bulk.handOffAbove) return yield* bulk.read(last.sequence);
    }
  }

  /**
   * The last message of each subject of an entity (`filter`, `….<id>.*`, via `multi_last`),
   * among those with a sequence in [from, upTo]: one request however many messages the
   * subjects hold. Null when they do not fit one answer (over 1024 subjects, or over 1 MiB
   * of last messages).
   *
   * The answer comes from a replica that has the store's latest append, when recent, and
   * all of the entity's events in the atomic append of its newest one: a replica stores
   * an append message by message, and nats-server 2.15 lets a direct get see one
   * part-way. The end of an answer says how far its replica has got, and one short is
   * asked again after a wait (see {@link settledListing}).
   */
  async lastPerSubject(filter: string, from: number, upTo?: number): Promise<PendingMessage[] | null> {
    const own = this.own?.mustSee(from);
    if (upTo === undefined) return this.settledListing(filter, from, own);
    // A bounded answer ends at the bound, not where its replica has got: first wait
    // unbounded for a replica with the store's append, when the bound covers it.
    if (own && own.sequence <= upTo && (await this.settledListing(filter, from, own)) === null) return null;
    const bounded = await this.multiLast([filter], from, upTo);
    const part = bounded && newestPart(bounded.messages);
    // Likewise for more of the entity's events, within the bound, in the atomic append
    // of the newest one listed.
    if (!part || part.last.sequence >= upTo) return bounded?.messages ?? null;
    if ((await this.settledListing(filter, from)) === null) return null;
    return (await this.multiLast([filter], from, upTo))?.messages ?? null;
  }

  /**
   * An unbounded listing (see {@link lastPerSubject}) from a replica that has `own` (this
   * store's latest append the read must see) and the entity's part of the atomic append
   * of its newest event, asked again after each of `waits` (ms) while its replica has
   * not. An empty answer has no end, so it is asked again with the own append's subject.
   * Fails when the replica answering has neither after the waits.
   */
  private async settledListing(
    filter: string,
    from: number,
    own?: OwnAppend,
    waits = CATCH_UP_WAITS,
  ): Promise<PendingMessage[] | null> {
    let asked = 0;
    const settled = await askUntil(
      async () => {
        let answer = await this.multiLast([filter], from);
        if (own && answer?.messages.length === 0 && !inEntity(filter, own.subject))
          answer = await this.multiLast([filter, own.subject], from);
        if (!answer) return null;
        const listed = answer.messages.filter((m) => inEntity(filter, m.subject));
        return {
          upTo: answer.upTo ?? 0,
          listed,
          partEnd: await this.unreachedPartEnd(listed, answer.upTo, asked++),
        };
      },
      (listing) => listing === null || listing.upTo >= Math.max(own?.sequence ?? 0, listing.partEnd),
      waits,
    );
    if (!settled) return null;
    const { upTo, listed, partEnd } = settled;
    const where = `the replica answering direct gets on ${this.stream} is at ${upTo || 'an unknown sequence'}`;
    if (own && upTo < own.sequence)
      throw new UnavailableError(`${where}, behind this store's own append at ${own.sequence}`);
    if (upTo < partEnd)
      throw new UnavailableError(
        `${where}, part-way through an atomic append whose events on ${filter} end at ${partEnd}`,
      );
    return listed;
  }

  /**
   * Where the entity's part of the atomic append of its newest listed event ends, when the
   * listing's replica has not got there; 0 otherwise. Any writer of the tenant can set
   * the header that says so, so the end counts only once a get finds the same append
   * there; while the get finds nothing there, the first asks take the replica to be
   * storing it still.
   */
  private async unreachedPartEnd(
    listed: ReadonlyArray<PendingMessage>,
    upTo: number | undefined,
    asked: number,
  ): Promise<number> {
    const part = newestPart(listed);
    if (!part || part.end <= (upTo ?? 0)) return 0;
    const there = await this.get({ seq: part.end });
    if (there) return sameBatch(there, part.last) ? part.end : 0;
    return asked < UNSEEN_PART_END_ASKS ? part.end : 0;
  }

  /** A `multi_last` answer on `subjects` from `from`, up to `bound` (default: the stream's end); null past one answer's cap. */
  private async multiLast(subjects: string[], from: number, bound?: number): Promise<BatchAnswer | null> {
    // An absent up_to_seq means the stream's last sequence (JSON drops undefined). Each
    // subject comes with its whole last message, so past the answer's cap the caller
    // reads another way.
    const answer = await this.batch({ multi_last: subjects, seq: from, up_to_seq: bound });
    return answer && answer.unsent === 0 ? answer : null;
  }

  /** One page: up to `batch` messages matching `filter` from sequence `seq` on. */
  async page(filter: string, seq: number, batch: number): Promise<PendingMessage[]> {
    return (await this.batch({ seq, next_by_subj: filter, batch }))?.messages ?? [];
  }

  /**
   * One direct-get batch. It rides the connection's reply mux (`repliesOf`: one inbox
   * subscription per connection, none per read) and must end in the server's end-of-batch
   * status: a batch that stops short (timeout, a message it failed to load) fails rather
   * than silently truncating the read, and one the connection dropped in the middle of is
   * asked again. `unsent` is the
   * end-of-batch count of what still matches; `upTo`, for `multi_last`, the answering
   * replica's last sequence (or the bound asked for). Null when the server refuses it for
   * matching too many subjects (413).
   */
  private batch(body: object): Promise<BatchAnswer | null> {
    return this.ask(() => this.batchOnce(body));
  }

  /**
   * Asks again after the reconnect when the connection drops before the answer, and for
   * `timeoutMs` while nobody answers a stream that has: a server shutting down stops its
   * JetStream before it closes its connections.
   */
  private async ask<T>(send: () => Promise<T>): Promise<T> {
    const since = Date.now();
    const waits = backoff(NOBODY_ANSWERING_WAITS as number[]);
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = await acrossDrops(this.nc, send, this.timeoutMs);
        this.answered = true;
        return answer;
      } catch (err) {
        const left = this.timeoutMs - (Date.now() - since);
        if (!(err instanceof StoreNotFoundError && this.answered && left > 0)) throw err;
        await delay(Math.min(waits.backoff(attempt), left));
      }
    }
  }

  private async batchOnce(body: object): Promise<BatchAnswer | null> {
    const api = this.api;
    const messages: PendingMessage[] = [];
    try {
      return await repliesOf(this.nc).many(
        api,
        JSON.stringify({ ...body, max_bytes: ANSWER_BYTES }),
        { timeoutMs: this.timeoutMs },
        (reply): BatchAnswer | null | typeof MORE => {
          const status = statusOf(reply);
          // 204: end of batch; 404 first: nothing matches; 413: too many subjects.
          if (status === 204) {
            const upTo = reply.headers?.get('Nats-UpTo-Sequence');
            const unsent = Number(reply.headers?.get('Nats-Num-Pending') || 0);
            return { messages, unsent, upTo: upTo ? Number(upTo) : undefined };
          }
          if (status === 404 && messages.length === 0) return { messages, unsent: 0 };
          if (status === 413) return null;
          if (status !== 0) throw this.statusError(reply, status);
          messages.push(directMessage(reply));
          return MORE;
        },
      );
    } catch (err) {
      if (err instanceof errors.TimeoutError)
        throw new UnavailableError(
          `the server did not finish a direct get on ${api} within ${this.timeoutMs} ms`,
          { cause: err },
        );
      throw this.mapped(err, api);
    }
  }

  private mapped(err: unknown, api: string): unknown {
    if (isJetsourceError(err)) return err;
    const mapped = fromRequestError(err, this.stream, api);
    return mapped instanceof StoreNotFoundError ? this.missing(err) : mapped;
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

/**
 * Resolves once `stream` answers direct gets, when it has replicas. They subscribe to
 * them a moment after the stream is created, and until then a read finds nobody
 * answering, as if the stream were missing: admin steps wait here, so a store is ready
 * to read once they resolve. One round trip for a stream that answers already.
 */
export async function untilDirectGetsAnswer(
  nc: NatsConnection,
  config: { name: string; num_replicas: number; allow_direct?: boolean },
  timeoutMs = 10_000,
): Promise<void> {
  if (config.num_replicas <= 1 || !config.allow_direct) return;
  const reader = new DirectReader(nc, config.name, Math.min(2_000, timeoutMs));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await reader.get({ seq: 1 });
      return;
    } catch (err) {
      if (!(err instanceof StoreNotFoundError) || Date.now() > deadline) throw err;
      await delay(50);
    }
  }
}

/** Status code of a header-only reply: 0 for a message, else 404 / 204 / 503 … */
function statusOf(msg: Msg): number {
  // Only a header-only reply can be a status; events always carry a payload.
  return msg.data.length === 0 && msg.headers ? msg.headers.code : 0;
}

/** Whether a literal subject is one of an entity's, `filter` being `….<id>.*` (or a literal subject). */
function inEntity(filter: string, subject: string): boolean {
  if (!filter.endsWith('.*')) return subject === filter;
  const stem = filter.slice(0, -1);
  return subject.startsWith(stem) && !subject.includes('.', stem.length);
}
