import { nuid, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import { repliesOf } from '../../connection/replies.js';
import { parseReply, type ApiReply } from './api.js';

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
    m.headers.set('Nats-Batch-Id', batchId);
    m.headers.set('Nats-Batch-Sequence', String(i + 1));
  });
  const last = messages[messages.length - 1]!;
  last.headers.set('Nats-Batch-Commit', '1');
  const replies = repliesOf(nc);
  const send = (m: BatchMessage) => replies.one(m.subject, m.data, { headers: m.headers, timeoutMs });
  const first = send(messages[0]!);
  first.catch(() => undefined);
  for (const m of messages.slice(1, -1)) nc.publish(m.subject, m.data, { headers: m.headers });
  const commit = send(last);
  commit.catch(() => undefined);
  return { first: parseReply(await first), commit: async () => parseReply(await commit) };
}
