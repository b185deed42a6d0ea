import { backoff, delay, errors, headers, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import type { PreparedEvent, PreparedWrite, StoredMessage } from '../../codec/event-format.js';
import {
  batchIdTaken,
  eventIdHeader,
  eventIdTaken,
  isStoredEvent,
  wireEvents,
} from '../../codec/event-format.js';
import {
  BatchTooLargeError,
  ConcurrencyError,
  ServerError,
  StoreConfigError,
  UnavailableError,
  UnsupportedServerError,
} from '../../errors.js';
import { assertSupportedServer } from '../../connection/server-version.js';
import type { AppendResult } from '../types.js';
import {
  causeOf,
  closedWhileWaiting,
  fromRequestError,
  inboxRemedy,
} from '../../connection/request-errors.js';
import {
  ApiErrorCode,
  isTransient,
  isWriteConflict,
  isWriteConflictCode,
  parseReply,
  type ApiReply,
} from './api.js';
import { sendAtomicBatch } from './atomic-batch.js';
import { resultsFrom } from '../writing.js';
import type { DirectReader } from './direct.js';
import type { OwnAppends } from './own-appends.js';
import { askUntil, NOBODY_ANSWERING_WAITS } from './asking-again.js';
import { DROPPED, linkDown, linkOf, unlessDropped } from '../../connection/link.js';
import { repliesOf } from '../../connection/replies.js';

/** What the append protocol needs from its store. */
export interface PublishContext {
  readonly nc: NatsConnection;
  readonly stream: string;
  readonly timeoutMs: number;
  /** Extra attempts after a timeout or transient server error; event ids make them idempotent. */
  readonly retries: number;
  /** Looks up what is stored when the server refuses an append or calls it a duplicate. */
  readonly direct: Pick<DirectReader, 'last' | 'get' | 'stored' | 'run' | 'range' | 'version'>;
  /** The store's own appends, which its reads wait for on a replicated stream. */
  readonly own: OwnAppends;
  /** The stream's duplicate window: how far back the server refuses a repeated event id. */
  readonly duplicateWindowMs: number;
}

/** Messages per page while looking for an earlier attempt among a subject's messages. */
const SEARCH_PAGE = 256;

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
  const results = await publishAttempts(ctx, writes);
  ctx.own.record(
    writes.flatMap((write, w) =>
      write.events.map((event, e) => ({ sequence: results[w]!.sequences[e]!, subject: event.subject })),
    ),
  );
  return results;
}

/** Sends the writes, retrying what is safe to retry, and settles a refusal. */
async function publishAttempts(
  ctx: PublishContext,
  writes: ReadonlyArray<PreparedWrite>,
): Promise<AppendResult[]> {
  assertSupportedServer(ctx.nc);
  const wire = toWire(writes, ctx.stream, ctx.nc.info?.max_payload);
  const retry = backoff([50, 250, 1000]);
  const leaderless = untilLeader(ctx, wire);
  // Sends that count against `retries`; and whether one went unanswered (it may be stored).
  let attempt = 0;
  let unanswered = false;
  for (;;) {
    // What is sent while the connection is down is lost: wait for it first.
    const link = linkOf(ctx.nc);
    if (!link.usable && !(await link.whenUp(ctx.timeoutMs))) {
      if (unanswered) throw mayBeStored('the connection went down', eventsOf(wire), linkDown(ctx.timeoutMs));
      throw linkDown(ctx.timeoutMs, `; the append of ${wire.length} event(s) was not sent`);
    }
    let last: number | typeof DROPPED;
    try {
      last = await unlessDropped(ctx.nc, () =>
        wire.length === 1 ? publishOne(ctx, wire[0]!, writes[0]!) : publishBatch(ctx, wire),
      );
    } catch (err) {
      if (isWriteConflict(err) || isDuplicateInBatch(err))
        return settleRefusal(ctx, writes, err as ServerError);
      // Nothing took the append, so nothing was stored: wait out a leader election.
      if (causeOf(err) instanceof errors.NoRespondersError) {
        await leaderless(err, unanswered);
        continue;
      }
      // The store's maxBatch is above the server's limit; nothing was stored.
      const limit = batchLimitOf(err);
      if (limit !== undefined) throw new BatchTooLargeError(wire.length, limit, { cause: err });
      if (err instanceof ServerError && err.errCode === ApiErrorCode.AtomicDisabled) {
        throw new StoreConfigError(
          ctx.stream,
          ['allow_atomic is off, so multi-event appends cannot be atomic'],
          { cause: err },
        );
      }
      if (!isTransient(err) || attempt >= ctx.retries) {
        if (err instanceof ServerError && isTransient(err)) throw busy(err, wire, attempt + 1);
        const mapped = fromRequestError(err, ctx.stream, wire[0]!.event.subject, {
          inbox: `${inboxRemedy} ${sentUnanswered}`,
        });
        if (!(mapped instanceof UnavailableError)) throw mapped;
        // Unlike a read, an unanswered append may have been stored: say how to retry safely.
        if (isTransient(err))
          throw mayBeStored(`no answer after ${attempt + 1} attempt(s)`, eventsOf(wire), err);
        if (closedWhileWaiting(err))
          throw mayBeStored('the connection closed before an answer came', eventsOf(wire), err);
        if (unanswered)
          throw mayBeStored(`${mapped.message}, after an attempt got no answer`, eventsOf(wire), err);
        throw mapped;
      }
      unanswered ||= causeOf(err) instanceof errors.TimeoutError;
      await delay(retry.backoff(attempt++));
      continue;
    }
    if (last !== DROPPED) return endingAt(writes, last);
    // The connection dropped before the answer came: the append may be stored, and is
    // sent again (after the reconnect) with the same ids.
    if (attempt >= ctx.retries)
      throw mayBeStored(
        `the connection dropped before an answer came, after ${attempt + 1} attempt(s)`,
        eventsOf(wire),
        undefined,
      );
    unanswered = true;
    await delay(retry.backoff(attempt++));
  }
}

const eventsOf = (wire: ReadonlyArray<WireMessage>) => wire.map((w) => w.event);

/** An append that may have been stored: retrying it with the same event ids stores it once. */
function mayBeStored(why: string, events: ReadonlyArray<PreparedEvent>, cause: unknown): UnavailableError {
  return new UnavailableError(
    `${why}: the append of ${events.length} event(s) on ${events[0]!.subject} may have been stored`,
    { cause, remedy: retrySameIds, eventIds: events.map((e) => e.id) },
  );
}

/**
 * What to do when nothing takes an append (no responders): between the leaders of a
 * replicated stream nobody does for a few seconds, and a stream that does not exist never
 * does. The stream's replicas answer direct gets all along, so the first time one is asked
 * whether it exists; then the append is sent again until `timeoutMs` has passed since.
 */
function untilLeader(
  ctx: PublishContext,
  wire: ReadonlyArray<WireMessage>,
): (err: unknown, unanswered: boolean) => Promise<void> {
  const waits = backoff(NOBODY_ANSWERING_WAITS as number[]);
  let since: number | undefined;
  let attempt = 0;
  return async (err, unanswered) => {
    if (since === undefined) {
      await ctx.direct.get({ seq: 1 }); // a missing stream raises StoreNotFoundError
      since = Date.now();
    }
    const elapsed = Date.now() - since;
    if (elapsed >= ctx.timeoutMs) {
      const why = `no leader of stream ${ctx.stream} took an append for ${elapsed} ms`;
      // An earlier attempt that got no answer may have been stored before the leader went.
      if (unanswered) throw mayBeStored(`${why}, after an attempt got no answer`, eventsOf(wire), err);
      throw new UnavailableError(`${why} on ${wire[0]!.event.subject}; nothing was stored`, {
        cause: err,
        remedy:
          "Retry once the stream has a leader again, or check that the store's prefix is one of the stream's subjects.",
      });
    }
    await delay(Math.min(waits.backoff(attempt++), ctx.timeoutMs - elapsed));
  };
}

/**
 * A transient refusal that outlasted the retries. 10210, 10163 and 10176 stored nothing;
 * 10158 means an earlier attempt with these ids was still being stored, so it may be.
 */
function busy(err: ServerError, wire: ReadonlyArray<WireMessage>, attempts: number): UnavailableError {
  if (err.errCode === ApiErrorCode.DuplicateInProcess)
    return mayBeStored(
      `an earlier attempt was still being stored after ${attempts} attempt(s)`,
      eventsOf(wire),
      err,
    );
  const why =
    err.errCode === ApiErrorCode.TooManyBatches
      ? 'too many atomic appends in flight'
      : err.errCode === ApiErrorCode.BatchIncomplete
        ? 'the batch reached the server incomplete'
        : 'the expected version cannot be checked yet';
  return new UnavailableError(`${why}: ${wire.length} event(s) refused ${attempts} time(s), none stored`, {
    cause: err,
    remedy: 'Retry, or raise `retries`.',
  });
}

/** How to retry an append that may have been stored. */
const retrySameIds = 'Retry with the same event ids (`eventIds` on this error): it is then stored once.';

/** An append whose reply could not arrive may be stored all the same. */
const sentUnanswered =
  'The append was sent before its reply was refused, so it may be stored: retry it with the same event ids.';

function toWire(writes: ReadonlyArray<PreparedWrite>, stream: string, maxPayload = Infinity): WireMessage[] {
  return wireEvents(writes, maxPayload, stream).map(({ event, headers: pairs }) => {
    const h = headers();
    for (const [k, v] of pairs) h.append(k, v);
    return { event, headers: h };
  });
}

async function publishOne(ctx: PublishContext, msg: WireMessage, write: PreparedWrite): Promise<number> {
  const reply = await repliesOf(ctx.nc).one(msg.event.subject, msg.event.data, {
    headers: msg.headers,
    timeoutMs: ctx.timeoutMs,
  });
  const ack = parseReply(reply);
  const sequence = ackedSequence(ctx, ack);
  // Nats-Msg-Id deduplicates across the whole stream: the stored message is an earlier
  // attempt of this append only if it is this event, on its subject with its data.
  if (ack.duplicate) {
    const stored = await ctx.direct.stored(sequence);
    // The leader holds it, yet no replica answering has it: which event it is, is unknown.
    if (!stored)
      throw mayBeStored(`event #${sequence} holds an id of it but could not be read`, [msg.event], undefined);
    if (!isStoredEvent(stored, msg.event)) {
      // A replicated stream checks the id first, one replica the expectation: report what
      // one replica does, so the error does not depend on the stream's replicas.
      throw (
        (await firstConflict(ctx, [write])) ?? eventIdTaken(msg.event, { sequence, subject: stored.subject })
      );
    }
  }
  return sequence;
}

async function publishBatch(ctx: PublishContext, wire: WireMessage[]): Promise<number> {
  const messages = wire.map((m) => ({ subject: m.event.subject, data: m.event.data, headers: m.headers }));
  const { first, commit } = await sendAtomicBatch(ctx.nc, messages, ctx.timeoutMs);
  ackedSequence(ctx, first, true);
  // An atomic batch holds its messages until the commit, so the first is acked without a
  // sequence. A server without atomic batches stores each on arrival and acks it with one.
  if (first.seq !== undefined)
    throw new UnsupportedServerError(
      ctx.nc.info?.version ?? 'unknown',
      `stored the first of the ${wire.length} events of an atomic append on its own, the rest may follow`,
    );
  return ackedSequence(ctx, await commit());
}

/** The acked sequence; 0 for an empty ack when `allowEmpty`. Throws the server's refusal. */
function ackedSequence(ctx: PublishContext, ack: ApiReply, allowEmpty = false): number {
  if (ack.error) throw refusal(ctx.stream, ack.error, ack.stream);
  if (typeof ack.seq !== 'number') {
    if (allowEmpty) return 0;
    throw new ServerError(0, `unexpected publish acknowledgement ${JSON.stringify(ack)}`);
  }
  return ack.seq;
}

/** The server's refusal of an append; `captured` is the stream the reply came from. */
function refusal(stream: string, error: NonNullable<ApiReply['error']>, captured?: string): Error {
  const refused = new ServerError(error.err_code, error.description, {
    // The cause of a ConcurrencyError: known, not one to report.
    remedy: isWriteConflictCode(error.err_code) ? 'It is reported as a ConcurrencyError.' : undefined,
  });
  if (error.err_code !== ApiErrorCode.StreamMismatch) return refused;
  // Without the check, the append would be stored in that other stream and no read would find it.
  const owner = captured ? `stream "${captured}"` : 'another stream';
  return new StoreConfigError(stream, [`${owner} captures its subjects; nothing was stored`], {
    cause: refused,
    remedy: `Open the store on ${owner}, or give it its own prefix.`,
  });
}

/** The server's batch limit, when it refused a batch for being over it (10199). */
function batchLimitOf(err: unknown): number | undefined {
  if (!(err instanceof ServerError && err.errCode === ApiErrorCode.BatchTooLarge)) return undefined;
  const limit = /(\d+)\s*$/.exec(err.description)?.[1];
  return limit === undefined ? undefined : Number(limit);
}

/** A batch whose ids are already stored (a retry after a lost ack) is refused as a whole. */
function isDuplicateInBatch(err: unknown): boolean {
  return err instanceof ServerError && err.errCode === ApiErrorCode.DuplicateIdInBatch;
}

/** A batch's messages get contiguous sequences ending at `last`. */
const endingAt = (writes: ReadonlyArray<PreparedWrite>, last: number): AppendResult[] =>
  resultsFrom(writes, last - writes.reduce((n, w) => n + w.events.length, 0) + 1);

/**
 * The server refused the append: a conflict (10071, 10164) or event ids it has already
 * stored (10201). Either can be this append itself, stored by an attempt whose ack was
 * lost or by a caller's retry with the same ids (on one replica, expectations are checked
 * before ids). So look for it first; otherwise name the entity that moved or the id taken.
 *
 * On a replicated stream the replica answering the lookups may be behind the leader that
 * refused: this append stored a moment ago, or the winner of a race (10164) still being
 * replicated, may not show yet. So unless the lookups show what the server saw (a version
 * at or past the one it names), they are made again after a wait.
 */
async function settleRefusal(
  ctx: PublishContext,
  writes: ReadonlyArray<PreparedWrite>,
  err: ServerError,
): Promise<AppendResult[]> {
  const duplicate = isDuplicateInBatch(err);
  const found = versionFound(err, writes);
  // A conflict at or past the version the server named is what it saw.
  const seenByServer = (c?: ConcurrencyError): c is ConcurrencyError =>
    c !== undefined && (found === undefined || (c.actual ?? 0) >= found);
  const { stored, conflict } = await askUntil(
    async () => {
      // Each entity's version is read alongside the retry check: a real conflict costs one round trip.
      const versions = duplicate ? undefined : firstConflict(ctx, writes, err);
      versions?.catch(() => undefined); // unread when the append turns out stored
      const stored = await storedLastSequence(ctx, writes);
      return { stored, conflict: stored === undefined ? await versions : undefined };
    },
    (seen) => seen.stored !== undefined || seenByServer(seen.conflict),
    SETTLE_WAITS,
  );
  if (stored !== undefined) return endingAt(writes, stored);
  if (seenByServer(conflict)) throw conflict;
  if (duplicate) throw batchIdTaken(writes.flatMap((w) => w.events));
  // The server named a version no lookup has shown: the replicas answering lag behind
  // it, and whether this append is stored is unknown.
  if (found !== undefined)
    throw mayBeStored(
      `refused at version ${found}, which the replicas answering have not shown`,
      writes.flatMap((w) => w.events),
      err,
    );
  // The server saw a conflict (10164) no lookup has shown.
  const first = writes.find((w) => w.expect !== 'any') ?? writes[0]!;
  throw new ConcurrencyError(first.entity, first.expect === 'any' ? 'new' : first.expect, undefined, {
    cause: err,
  });
}

/** How long to wait, in turn, before looking again at what a refused append met (ms). */
const SETTLE_WAITS = [20, 100, 400];

/** How long one look at an entity's version waits, in turn, for a replica that shows it (ms). */
const VERSION_WAITS = [5, 25];

/**
 * The entity's version the server found, when a 10071 names it ("wrong last sequence: N")
 * and one write alone carries an expectation, so that it is that write's.
 */
function versionFound(err: ServerError, writes: ReadonlyArray<PreparedWrite>): number | undefined {
  if (err.errCode !== ApiErrorCode.WrongLastSequence) return undefined;
  if (writes.filter((w) => w.expect !== 'any').length !== 1) return undefined;
  const named = /wrong last sequence: (\d+)/.exec(err.description)?.[1];
  return named === undefined ? undefined : Number(named);
}

/** The first write whose entity is not at the version it expects, as a ConcurrencyError. */
async function firstConflict(
  ctx: PublishContext,
  writes: ReadonlyArray<PreparedWrite>,
  cause?: unknown,
): Promise<ConcurrencyError | undefined> {
  // Versions as a read sees them (from a replica with all of the entity's part of the
  // append that won), each waited for briefly: settleRefusal looks again after its own
  // waits. One no replica shows yet is unknown.
  const actuals = await Promise.all(
    writes.map((w) =>
      w.expect === 'any'
        ? undefined
        : ctx.direct.version(w.entitySubject, VERSION_WAITS).catch((err: unknown) => {
            if (err instanceof UnavailableError) return undefined;
            throw err;
          }),
    ),
  );
  for (const [i, write] of writes.entries()) {
    const actual = actuals[i];
    if (write.expect === 'any' || actual === undefined) continue;
    if (actual !== (write.expect === 'new' ? 0 : write.expect))
      return new ConcurrencyError(write.entity, write.expect, actual, { cause });
  }
  return undefined;
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
  // Too early in the stream to hold the whole append: the id found is another event's.
  if (candidate === undefined || candidate < events.length) return undefined;
  // One id matching proves little (it may be an older event's, an append that shares only
  // some ids with this one, or another writer's data under an id the caller chose): a
  // batch is contiguous, so every event must sit where this candidate puts it, as itself.
  const start = candidate - events.length + 1;
  // A direct-get batch stops at max_bytes: ask again from where it stopped.
  const stored: StoredMessage[] = [];
  while (stored.length < events.length) {
    const next = await ctx.direct.run(start + stored.length, events.length - stored.length);
    if (next.length === 0) break;
    stored.push(...next);
  }
  const matches = (m: StoredMessage | undefined, e: PreparedEvent, i: number) =>
    m?.sequence === start + i && isStoredEvent(m, e);
  return events.every((e, i) => matches(stored[i], e, i)) ? candidate : undefined;
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
      // Had it been stored with this expectation, its first event came right after
      // `expect`: that finds it even past the duplicate window.
      const first = write.events[0]!;
      const from = (write.expect === 'new' ? 0 : write.expect) + 1;
      const found = await ctx.direct.get({ seq: from, next_by_subj: first.subject });
      if (found?.header(eventIdHeader) === first.id) return found.sequence - before + total - 1;
      // A caller's retry may carry another expectation than the attempt that stored it (the
      // version reloaded after an outage, say): look for its ids as below. Generated ids
      // are new to this call, so a genuine conflict costs no search.
      if (!writes.some((w) => w.events.some((e) => e.idGiven))) return undefined;
      break;
    }
    before += write.events.length;
  }
  // Find the last event's id on its subject. The newest message is the likely one (a
  // retry right after a lost ack).
  const last = writes[writes.length - 1]!.events.at(-1)!;
  const newest = await ctx.direct.last(last.subject);
  if (!newest) return undefined;
  if (newest.header(eventIdHeader) === last.id) return newest.sequence;
  // The server refuses an id only within its duplicate window, so an earlier attempt is
  // among the subject's messages stored in the window before the newest (whose server
  // time is the reference: the client's clock may be off).
  const newestAt = newest.storedAt?.();
  if (newestAt === undefined) return undefined;
  const since = new Date(newestAt - ctx.duplicateWindowMs - 1).toISOString();
  const first = await ctx.direct.get({ start_time: since, next_by_subj: last.subject });
  if (!first || first.sequence >= newest.sequence) return undefined;
  const pages = ctx.direct.range(
    last.subject,
    first.sequence - 1,
    newest.sequence - 1,
    SEARCH_PAGE,
    (m) => m,
  );
  for await (const page of pages) {
    const found = page.find((m) => m.header(eventIdHeader) === last.id);
    if (found) return found.sequence;
  }
  return undefined;
}
