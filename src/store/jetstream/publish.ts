import { backoff, delay, headers, nuid, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import type { PreparedEvent, PreparedWrite, StoredMessage } from '../../codec/event-format.js';
import { eventIdHeader } from '../../codec/event-format.js';
import {
  ConcurrencyError,
  PayloadTooLargeError,
  ServerError,
  StoreConfigError,
  UnsupportedServerError,
} from '../../errors.js';
import { assertSupportedServer } from '../../connection/server-version.js';
import { describeEntity } from '../../subjects/subjects.js';
import type { AppendResult } from '../types.js';
import { ApiErrorCode, fromRequestError, isTransient, parseReply, type ApiReply } from './api.js';

/** What the append protocol needs from its store. */
export interface PublishContext {
  readonly nc: NatsConnection;
  readonly stream: string;
  readonly timeoutMs: number;
  /** Extra attempts after a timeout or transient server error; event ids make them idempotent. */
  readonly retries: number;
  lastMessage(subject: string): Promise<StoredMessage | null>;
}

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
      if (isConflict(err) || isDuplicateInBatch(err)) return resolveConflict(ctx, writes, err as ServerError);
      if (err instanceof ServerError && err.errCode === ApiErrorCode.AtomicDisabled) {
        throw new StoreConfigError(ctx.stream, [
          'allow_atomic is off, so multi-event appends cannot be atomic',
        ]);
      }
      if (!isTransient(err) || attempt >= ctx.retries) {
        throw fromRequestError(err, ctx.stream, wire[0]!.event.subject);
      }
      await delay(retry.backoff(attempt));
    }
  }
}

function toWire(writes: ReadonlyArray<PreparedWrite>, maxPayload = Infinity): WireMessage[] {
  const wire: WireMessage[] = [];
  for (const write of writes) {
    write.events.forEach((event, i) => {
      const h = headers();
      for (const [k, v] of event.headers) h.append(k, v);
      if (i === 0 && write.expect !== 'any') {
        h.set('Nats-Expected-Last-Subject-Sequence', String(write.expect === 'new' ? 0 : write.expect));
        h.set('Nats-Expected-Last-Subject-Sequence-Subject', write.entitySubject);
      }
      const size = event.data.length + headerBytes(event.headers) + 200;
      if (size > maxPayload) throw new PayloadTooLargeError(event.subject, size, maxPayload);
      wire.push({ event, headers: h });
    });
  }
  return wire;
}

function headerBytes(pairs: ReadonlyArray<[string, string]>): number {
  return pairs.reduce((n, [k, v]) => n + k.length + v.length + 4, 12);
}

async function publishOne(ctx: PublishContext, msg: WireMessage): Promise<number> {
  const reply = await ctx.nc.request(msg.event.subject, msg.event.data, {
    headers: msg.headers,
    timeout: ctx.timeoutMs,
  });
  return ackedSequence(parseReply(reply));
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
 * Told "wrong last sequence", first rule out our own earlier attempt: on a one-replica
 * stream the server checks expectations before `Nats-Msg-Id` dedupe, so a retry whose
 * first try landed looks like a conflict. Otherwise name the entity that moved.
 */
async function resolveConflict(
  ctx: PublishContext,
  writes: ReadonlyArray<PreparedWrite>,
  err: ServerError,
): Promise<AppendResult[]> {
  const lastWrite = writes[writes.length - 1]!;
  const lastEvent = lastWrite.events[lastWrite.events.length - 1]!;
  const stored = await ctx.lastMessage(lastWrite.entitySubject);
  if (stored && stored.header(eventIdHeader) === lastEvent.id) return splitSequences(writes, stored.sequence);
  if (isDuplicateInBatch(err)) {
    throw new ServerError(
      err.errCode,
      'some of these event ids were already used by other events; give new events new ids',
      {
        cause: err,
      },
    );
  }
  for (const write of writes) {
    if (write.expect === 'any') continue;
    const expected = write.expect === 'new' ? 0 : write.expect;
    const actual =
      write === lastWrite
        ? (stored?.sequence ?? 0)
        : ((await ctx.lastMessage(write.entitySubject))?.sequence ?? 0);
    if (actual !== expected)
      throw new ConcurrencyError(describeEntity(write.entity), write.expect, actual, { cause: err });
  }
  // The server saw a conflict (e.g. 10164, an in-flight write) that is no longer visible.
  const first = writes.find((w) => w.expect !== 'any') ?? lastWrite;
  throw new ConcurrencyError(
    describeEntity(first.entity),
    first.expect === 'any' ? 'new' : first.expect,
    undefined,
    {
      cause: err,
    },
  );
}
