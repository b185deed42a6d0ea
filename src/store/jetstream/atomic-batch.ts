import { nuid, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import type { StoredMessage } from '../../codec/event-format.js';
import { Header } from '../../codec/metadata.js';
import { repliesOf } from '../../connection/replies.js';
import { parseReply, type ApiReply } from './api.js';

/** The ADR-50 headers of an atomic batch's messages, which the server stores with them. */
const BatchHeader = {
  Id: 'Nats-Batch-Id',
  /** The message's position in its batch, from 1. */
  Sequence: 'Nats-Batch-Sequence',
  /** On the last message only. */
  Commit: 'Nats-Batch-Commit',
} as const;

/**
 * The sequence of the last event of this event's entity in the same atomic append (an
 * append is stored contiguously, each entity's events together): jetsource's appends say
 * on each event how many of its entity's follow (`Es-Append-Following`). Undefined
 * outside an atomic append, for an entity's last event in one, and for an append written
 * without the header. Any writer can set it: readers check that the end it names is there.
 */
export function entityPartEnd(msg: StoredMessage): number | undefined {
  if (msg.header(BatchHeader.Id) === undefined) return undefined;
  const following = Number(msg.header(Header.AppendFollowing));
  if (!Number.isSafeInteger(following) || following < 1) return undefined;
  const end = msg.sequence + following;
  return Number.isSafeInteger(end) ? end : undefined;
}

/** Whether two stored messages are parts of one atomic append. */
export const sameBatch = (a: StoredMessage, b: StoredMessage): boolean =>
  a.header(BatchHeader.Id) !== undefined && a.header(BatchHeader.Id) === b.header(BatchHeader.Id);

/** One message of an atomic batch; its headers get the batch's own added. */
export interface BatchMessage {
  readonly subject: string;
  readonly data: Uint8Array | string;
  readonly headers: MsgHdrs;
}

/** The server's two answers to an atomic batch. */
export interface BatchReplies {
  /** The first message's: empty when the batch was started, or the refusal that ended it. */
  readonly first: ApiReply;
  /** The commit's: `{ seq }` of the last message, or the refusal; nothing was stored then. */
  readonly commit: () => Promise<ApiReply>;
}

/**
 * Sends messages as one ADR-50 atomic batch (nats.js 3.4's batch drops expectations and
 * hides server errors), pipelined: the first message is acked on its own (a refusal there
 * ends the batch early), the middle ones need no reply, and the commit carries the
 * outcome. The messages get contiguous sequences.
 */
export async function sendAtomicBatch(
  nc: NatsConnection,
  messages: ReadonlyArray<BatchMessage>,
  timeoutMs: number,
): Promise<BatchReplies> {
  const batchId = nuid.next();
  messages.forEach((m, i) => {
    m.headers.set(BatchHeader.Id, batchId);
    m.headers.set(BatchHeader.Sequence, String(i + 1));
  });
  const last = messages[messages.length - 1]!;
  last.headers.set(BatchHeader.Commit, '1');
  const replies = repliesOf(nc);
  const send = (m: BatchMessage) => replies.one(m.subject, m.data, { headers: m.headers, timeoutMs });
  const first = send(messages[0]!);
  first.catch(() => undefined);
  for (const m of messages.slice(1, -1)) nc.publish(m.subject, m.data, { headers: m.headers });
  const commit = send(last);
  commit.catch(() => undefined);
  return { first: parseReply(await first), commit: async () => parseReply(await commit) };
}
