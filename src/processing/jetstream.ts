import type { Msg, NatsConnection } from '@nats-io/nats-core';
import {
  jetstream,
  JetStreamApiError,
  type ConsumeMessages,
  type ConsumerInfo,
  type ConsumerMessages,
  type JetStreamManager,
} from '@nats-io/jetstream';
import type { StoredMessage } from '../codec/event-format.js';
import { ServerError, StoreNotFoundError } from '../errors.js';
import { adminRemedy, fromRequestError } from '../connection/request-errors.js';
import { acrossDrops } from '../connection/link.js';
import { repliesOf } from '../connection/replies.js';
import { ApiErrorCode, directMessage } from '../store/jetstream/api.js';
import { DirectReader } from '../store/jetstream/direct.js';
import { ProcessorConfigError } from './errors.js';
import { consumerDrift, type DurableConfig } from './policy.js';

const ConsumerAlreadyExists = 10148;
const ConsumerNotFound = ApiErrorCode.ConsumerNotFound;

/**
 * Creates the processor's durable consumer, or adopts an existing one: an identical
 * config is a no-op (restarts cause no churn), changed tunables are updated in place,
 * and a change that would skip or replay events raises {@link ProcessorConfigError}.
 */
export async function ensureDurable(
  jsm: JetStreamManager,
  stream: string,
  processor: string,
  wanted: DurableConfig,
  /** What to tell the user when `stream` is missing (default: run ensureStore). */
  missingRemedy?: string,
): Promise<ConsumerInfo> {
  try {
    // Create is idempotent for an identical config: one round trip on the usual restart.
    const created = await jsm.consumers.add(stream, wanted);
    // The stream's consumer_limits gave it an idle timeout (ensureStore caps the event
    // stream for browser users): it would vanish while the processor is down and come back
    // at the first event, running every effect again.
    if ((created.config.inactive_threshold ?? 0) > 0) {
      await jsm.consumers.delete(stream, wanted.durable_name).catch(() => undefined);
      throw new ProcessorConfigError(processor, [
        `stream "${stream}" removes idle consumers, so its durable would start over after any pause; ` +
          'run processors on the mirror: ensureProcessorStream(), then pass consumerStream',
      ]);
    }
    return created;
  } catch (err) {
    if (err instanceof ProcessorConfigError) throw err;
    if (!isApiError(err, ConsumerAlreadyExists)) throw consumerError(err, stream, missingRemedy);
  }
  try {
    const existing = await jsm.consumers.info(stream, wanted.durable_name);
    const drift = consumerDrift(existing.config, wanted);
    if (drift.unsafe.length > 0) throw new ProcessorConfigError(processor, drift.unsafe);
    if (!drift.update) return existing;
    return await jsm.consumers.update(stream, wanted.durable_name, drift.update);
  } catch (err) {
    throw consumerError(err, stream, missingRemedy);
  }
}

/** Starts pulling from the durable consumer; messages go to `options.callback`. */
export async function consumeDurable(
  nc: NatsConnection,
  stream: string,
  durable: string,
  options: ConsumeMessages,
): Promise<ConsumerMessages> {
  try {
    const consumer = await jetstream(nc).consumers.get(stream, durable);
    return await consumer.consume(options);
  } catch (err) {
    throw consumerError(err, stream);
  }
}

/**
 * Whether the durable is still there. Only the server's "not found" says no: a pull that
 * missed it during a cluster leader change, or a timeout, proves nothing.
 */
export function consumerExists(jsm: JetStreamManager, stream: string, durable: string): Promise<boolean> {
  return consumerFound(jsm, stream, durable).catch(() => true);
}

/** Whether the server has this consumer: true or false only on its word, else it throws. */
export async function consumerFound(jsm: JetStreamManager, stream: string, name: string): Promise<boolean> {
  try {
    await jsm.consumers.info(stream, name);
    return true;
  } catch (err) {
    if (isApiError(err, ConsumerNotFound) || isApiError(err, ApiErrorCode.StreamNotFound)) return false;
    throw consumerError(err, stream);
  }
}

/** The consumers on `stream` named `<durable>~<32 hex digits>`: a processor's secret-named ones. */
export async function secretConsumersOf(
  jsm: JetStreamManager,
  stream: string,
  durable: string,
): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const { name } of jsm.consumers.list(stream))
      if (name.startsWith(`${durable}~`) && /^[0-9a-f]{32}$/.test(name.slice(durable.length + 1)))
        names.push(name);
  } catch (err) {
    // A missing stream is reported where the durable is ensured, with its own remedy.
    if (isApiError(err, ApiErrorCode.StreamNotFound)) return [];
    throw consumerError(err, stream);
  }
  return names;
}

/** A durable consumer's progress: the last stream sequence delivered, and how many delivered events await their ack. */
export async function consumerProgress(
  jsm: JetStreamManager,
  stream: string,
  durable: string,
): Promise<{ delivered: number; ackPending: number }> {
  try {
    const info = await jsm.consumers.info(stream, durable);
    return { delivered: info.delivered.stream_seq, ackPending: info.num_ack_pending };
  } catch (err) {
    throw consumerError(err, stream);
  }
}

/** How many events on `filter` a stream holds from sequence `from` on (one direct get). */
export async function countFrom(
  nc: NatsConnection,
  stream: string,
  filter: string,
  from: number,
  timeoutMs: number,
): Promise<number> {
  const [first] = await new DirectReader(nc, stream, timeoutMs, undefined, '$JS.API').page(filter, from, 1);
  // A batch get's message says how many more match after it.
  return first ? first.pending + 1 : 0;
}

/** One stored message by stream sequence (direct get), or null when it is not in the stream. */
export async function storedAt(
  nc: NatsConnection,
  stream: string,
  sequence: number,
  timeoutMs: number,
): Promise<StoredMessage | null> {
  const api = `$JS.API.DIRECT.GET.${stream}`;
  let reply: Msg;
  try {
    // Sent again after the reconnect when the connection drops before the answer.
    reply = await acrossDrops(
      nc,
      () => repliesOf(nc).one(api, JSON.stringify({ seq: sequence }), { timeoutMs }),
      timeoutMs,
    );
  } catch (err) {
    throw fromRequestError(err, stream, api, { denied: processorRemedy(stream) });
  }
  // A header-only reply is a status: 404 when the sequence is gone or never existed.
  const status = reply.headers && reply.data.length === 0 ? reply.headers.code : 0;
  if (status === 404) return null;
  if (status === 503) throw new StoreNotFoundError(stream);
  if (status !== 0)
    throw new ServerError(
      status,
      `direct get of #${sequence} on ${stream}: ${reply.headers?.description ?? ''}`,
    );
  return directMessage(reply);
}

function isApiError(err: unknown, code: number): err is JetStreamApiError {
  return err instanceof JetStreamApiError && err.code === code;
}

function consumerError(err: unknown, stream: string, remedy?: string): unknown {
  if (isApiError(err, ApiErrorCode.StreamNotFound))
    return new StoreNotFoundError(stream, { cause: err, remedy });
  if (err instanceof JetStreamApiError) {
    const { err_code, description } = err.apiError();
    return new ServerError(err_code, description, { cause: err });
  }
  return fromRequestError(err, stream, `$JS.API.CONSUMER.*.${stream}`, { denied: processorRemedy(stream) });
}

/**
 * Processors use the JetStream API as it is (they take no apiPrefix): a user refused it
 * is a tenant user, who needs the service role rather than another prefix.
 */
const processorRemedy = (stream: string) => adminRemedy(`startProcessor (stream ${stream})`);
