import { backoff, delay, headers, nuid, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import type { PreparedEvent, PreparedWrite } from '../../codec/event-format.js';
import { eventIdHeader, eventIdTaken } from '../../codec/event-format.js';
import {
  ConcurrencyError,
  PayloadTooLargeError,
  ServerError,
  StoreConfigError,
  UnavailableError,
  UnsupportedServerError,
} from '../../errors.js';
import { assertSupportedServer } from '../../connection/server-version.js';
import { describeEntity } from '../../subjects/subjects.js';
import type { AppendResult } from '../types.js';
import { fromRequestError, inboxRemedy } from '../../connection/request-errors.js';
import { ApiErrorCode, isTransient, parseReply, type ApiReply } from './api.js';
import type { DirectReader } from './direct.js';

/** What the append protocol needs from its store. */
export interface PublishContext {
  readonly nc: NatsConnection;
  readonly stream: string;
  readonly timeoutMs: number;
  /** Extra attempts after a timeout or transient server error; event ids make them idempotent. */
  readonly retries: number;
  /** Looks up what is stored when the server refuses an append or calls it a duplicate. */
  readonly direct: Pick<DirectReader, 'last' | 'get' | 'lastPerSubject'>;
}

/** How far back an append without expectations is looked for among its entity's events. */
const LOOK_BACK = 32;

interface WireMessage {
  readonly event: PreparedEvent;
  readonly headers: MsgHdrs;
}

/**
 * Writes prepared events: one event as a plain publish, more as an ADR-50 atomic batch
 * (owned here because nats.js 3.4's batch drops expectations and hides server errors).
 * Each entity's first message carries `Nats-Expected-Last-Subject-Sequence` over the
 * entity's wildcard subject, so the server enforces every expectation at commit.
 */
export async function publishWrites(
  ctx: PublishContext,
  writes: ReadonlyArray<PreparedWrite>,
): Promise<AppendResult[]> {
  assertSupportedServer(ctx.nc);
  const wire = toWire(writes, ctx.nc.info?.max_payload);
  const retry = backoff([50, 250, 1000]);
  for (let attempt = 0; ; attempt++) {
    try {
      const last = wire.length === 1 ? await publishOne(ctx, wire[0]!) : await publishBatch(ctx, wire);
      return splitSequences(writes, last);
    } catch (err) {
      if (isConflict(err) || isDuplicateInBatch(err)) return settleRefusal(ctx, writes, err as ServerError);
      if (err instanceof ServerError && err.errCode === ApiErrorCode.AtomicDisabled) {
        throw new StoreConfigError(ctx.stream, [
          'allow_atomic is off, so multi-event appends cannot be atomic',
        ]);
      }
      if (!isTransient(err) || attempt >= ctx.retries) {
        const mapped = fromRequestError(err, ctx.stream, wire[0]!.event.subject, {
          inbox: `${inboxRemedy} ${sentUnanswered}`,
        });
        if (!(mapped instanceof UnavailableError) || !isTransient(err)) throw mapped;
        // Unlike a read, an unanswered append may have been stored: say how to retry safely.
        throw new UnavailableError(
          `no answer to an append of ${wire.length} event(s) on ${wire[0]!.event.subject} after ${attempt + 1} attempt(s); it may have been stored`,
          {
            cause: err,
            remedy: 'Retry with the same event ids (set `id` on each event): it is then stored once.',
          },
        );
      }
      await delay(retry.backoff(attempt));
    }
  }
}

/** An append whose reply could not arrive may be stored all the same. */
const sentUnanswered =
  'The append was sent before its reply was refused, so it may be stored: retry it with the same event ids.';

function toWire(writes: ReadonlyArray<PreparedWrite>, maxPayload = Infinity): WireMessage[] {
  const wire: WireMessage[] = [];
  for (const write of writes) {
    write.events.forEach((event, i) => {
      const pairs: Array<readonly [string, string]> = [...event.headers];
      if (i === 0 && write.expect !== 'any') {
        pairs.push([
          'Nats-Expected-Last-Subject-Sequence',
          String(write.expect === 'new' ? 0 : write.expect),
        ]);
        pairs.push(['Nats-Expected-Last-Subject-Sequence-Subject', write.entitySubject]);
      }
      const size = wireSize(event.data, pairs, maxPayload);
      if (size > maxPayload) throw new PayloadTooLargeError(event.subject, size, maxPayload);
      const h = headers();
      for (const [k, v] of pairs) h.append(k, v);
      wire.push({ event, headers: h });
    });
  }
  return wire;
}

/** Batch headers added later (id, sequence, commit) and the header block's framing. */
const BATCH_HEADER_BYTES = 120;

/**
 * The message's size on the wire, as the server counts it against max_payload. Exact
 * (UTF-8) only when a cheap upper bound comes near the limit: most events are far below.
 */
function wireSize(
  data: Uint8Array,
  pairs: ReadonlyArray<readonly [string, string]>,
  maxPayload: number,
): number {
  let chars = 0;
  for (const [k, v] of pairs) chars += k.length + v.length + 4;
  const base = BATCH_HEADER_BYTES + data.length;
  if (base + chars * 3 <= maxPayload) return base + chars;
  const utf8 = new TextEncoder();
  return pairs.reduce((n, [k, v]) => n + utf8.encode(`${k}: ${v}\r\n`).length, base);
}

async function publishOne(ctx: PublishContext, msg: WireMessage): Promise<number> {
  const reply = await ctx.nc.request(msg.event.subject, msg.event.data, {
    headers: msg.headers,
    timeout: ctx.timeoutMs,
  });
  const ack = parseReply(reply);
  const sequence = ackedSequence(ack);
  // Nats-Msg-Id deduplicates across the whole stream: the stored message is an earlier
  // attempt of this append only if it is on this event's subject.
  if (ack.duplicate) {
    const stored = await ctx.direct.get({ seq: sequence });
    if (stored?.subject !== msg.event.subject)
      throw eventIdTaken(msg.event, { sequence, subject: stored?.subject });
  }
  return sequence;
}

async function publishBatch(ctx: PublishContext, wire: WireMessage[]): Promise<number> {
  const batchId = nuid.next();
  wire.forEach((m, i) => {
    m.headers.set('Nats-Batch-Id', batchId);
    m.headers.set('Nats-Batch-Sequence', String(i + 1));
  });
  const lastMsg = wire[wire.length - 1]!;
  lastMsg.headers.set('Nats-Batch-Commit', '1');
  const send = (m: WireMessage) =>
    ctx.nc.request(m.event.subject, m.event.data, { headers: m.headers, timeout: ctx.timeoutMs });
  // Pipelined: the first message is acked on its own (a refusal there ends the batch
  // early), the middle ones need no reply, and the commit carries the batch's outcome.
  const first = send(wire[0]!);
  first.catch(() => undefined);
  for (const m of wire.slice(1, -1)) ctx.nc.publish(m.event.subject, m.event.data, { headers: m.headers });
  const commit = send(lastMsg);
  commit.catch(() => undefined);
  const firstAck = parseReply(await first);
  ackedSequence(firstAck, true);
  // An atomic batch holds its messages until the commit, so the first is acked without a
  // sequence. A server without atomic batches stores each on arrival and acks it with one.
  if (firstAck.seq !== undefined)
    throw new UnsupportedServerError(
      ctx.nc.info?.version ?? 'unknown',
      `stored the first of the ${wire.length} events of an atomic append on its own, the rest may follow`,
    );
  return ackedSequence(parseReply(await commit));
}

/** The acked sequence; 0 for an empty ack when `allowEmpty`. Throws the server's refusal. */
function ackedSequence(ack: ApiReply, allowEmpty = false): number {
  if (ack.error) throw new ServerError(ack.error.err_code, ack.error.description);
  if (typeof ack.seq !== 'number') {
    if (allowEmpty) return 0;
    throw new ServerError(0, `unexpected publish acknowledgement ${JSON.stringify(ack)}`);
  }
  return ack.seq;
}

function isConflict(err: unknown): boolean {
  return (
    err instanceof ServerError &&
    (err.errCode === ApiErrorCode.WrongLastSequence || err.errCode === ApiErrorCode.ExpectationRace)
  );
}

/** A batch whose ids are already stored (a retry after a lost ack) is refused as a whole. */
function isDuplicateInBatch(err: unknown): boolean {
  return err instanceof ServerError && err.errCode === ApiErrorCode.DuplicateIdInBatch;
}

/** A batch's messages get contiguous sequences ending at `last`. */
function splitSequences(writes: ReadonlyArray<PreparedWrite>, last: number): AppendResult[] {
  let next = last - writes.reduce((n, w) => n + w.events.length, 0) + 1;
  return writes.map((w) => {
    const sequences = w.events.map(() => next++);
    return { sequences, version: sequences[sequences.length - 1]! };
  });
}

/**
 * The server refused the append: a conflict (10071, 10164) or event ids it has already
 * stored (10201). Either can be this append itself, stored by an attempt whose ack was
 * lost or by a caller's retry with the same ids (on one replica, expectations are checked
 * before ids). So look for it first; otherwise name the entity that moved or the id taken.
 */
async function settleRefusal(
  ctx: PublishContext,
  writes: ReadonlyArray<PreparedWrite>,
  err: ServerError,
): Promise<AppendResult[]> {
  // Each entity's version is read alongside the retry check: a real conflict costs one round trip.
  const versions = Promise.all(
    writes.map(async (w) =>
      w.expect === 'any' ? undefined : ((await ctx.direct.last(w.entitySubject))?.sequence ?? 0),
    ),
  );
  versions.catch(() => undefined); // unread when the append turns out stored
  const stored = await storedLastSequence(ctx, writes);
  if (stored !== undefined) return splitSequences(writes, stored);
  if (isDuplicateInBatch(err)) throw eventIdTaken(writes[0]!.events[0]!);
  const actuals = await versions;
  for (const [i, write] of writes.entries()) {
    if (write.expect === 'any') continue;
    const expected = write.expect === 'new' ? 0 : write.expect;
    const actual = actuals[i]!;
    if (actual !== expected)
      throw new ConcurrencyError(describeEntity(write.entity), write.expect, actual, { cause: err });
  }
  // The server saw a conflict (e.g. 10164, an in-flight write) that is no longer visible.
  const first = writes.find((w) => w.expect !== 'any') ?? writes[0]!;
  throw new ConcurrencyError(
    describeEntity(first.entity),
    first.expect === 'any' ? 'new' : first.expect,
    undefined,
    { cause: err },
  );
}

/**
 * The last sequence of these writes if they are already stored, else undefined. A batch's
 * events are contiguous, so finding one of them places them all. Lookups go by an
 * event's own (literal) subject, which the server finds through its subject index.
 */
async function storedLastSequence(
  ctx: PublishContext,
  writes: ReadonlyArray<PreparedWrite>,
): Promise<number | undefined> {
  const events = writes.flatMap((w) => w.events);
  const candidate = await lastSequenceCandidate(ctx, writes, events.length);
  if (candidate === undefined) return undefined;
  // One id matching proves little (it may be an older event's): the batch is contiguous,
  // so its first and last events must both sit where this candidate puts them.
  const ends = [
    [candidate - events.length + 1, events[0]!],
    [candidate, events[events.length - 1]!],
  ] as const;
  for (const [sequence, event] of ends) {
    const stored = await ctx.direct.get({ seq: sequence });
    if (stored?.subject !== event.subject || stored.header(eventIdHeader) !== event.id) return undefined;
  }
  return candidate;
}

/** Where the append's last event would be, had it been stored, from one of its events. */
async function lastSequenceCandidate(
  ctx: PublishContext,
  writes: ReadonlyArray<PreparedWrite>,
  total: number,
): Promise<number | undefined> {
  let before = 0;
  for (const write of writes) {
    if (write.expect !== 'any') {
      // Had it been stored, its expectation held: its first event came right after `expect`.
      const first = write.events[0]!;
      const from = (write.expect === 'new' ? 0 : write.expect) + 1;
      const found = await ctx.direct.get({ seq: from, next_by_subj: first.subject });
      return found?.header(eventIdHeader) === first.id ? found.sequence - before + total - 1 : undefined;
    }
    before += write.events.length;
  }
  // No expectation to anchor on: look back through the newest events on the last one's subject.
  const last = writes[writes.length - 1]!.events.at(-1)!;
  let upTo: number | undefined;
  for (let step = 0; step < LOOK_BACK && upTo !== 0; step++) {
    // A single get ignores up_to_seq; a multi_last batch honours it.
    const [found] = (await ctx.direct.lastPerSubject(last.subject, 1, upTo)) ?? [];
    if (!found) return undefined;
    if (found.header(eventIdHeader) === last.id) return found.sequence;
    upTo = found.sequence - 1;
  }
  return undefined;
}
