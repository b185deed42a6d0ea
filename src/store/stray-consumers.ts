import type { NatsConnection } from '@nats-io/nats-core';
import { jetstreamManager, JetStreamApiError } from '@nats-io/jetstream';
import { adminStep } from '../connection/request-errors.js';
import { assertPlainToken } from '../subjects/tokens.js';
import { ApiErrorCode } from './jetstream/api.js';

/**
 * Deletes the push consumers on `stream` that deliver to a `$` subject (the JetStream API,
 * `$SYS` requests, …), and returns their names. No jetsource consumer does: such a consumer
 * was made by a tenant client, whose consumer create body (which permissions cannot see)
 * may name any subject of the data account. Aimed at a subject that always has a
 * subscriber (a consumer's own pull subject, a `$SYS` service) it never goes idle, so a
 * reader could fill the stream's `max_consumers` and block every new watch; aimed at
 * another consumer's pull or reset subject it steals or rewinds that consumer's work. Run
 * it from the service role now and then (say, every minute) on the store's stream and
 * the views bucket's (`KV_views`).
 */
export async function removeStrayConsumers(nc: NatsConnection, stream: string): Promise<string[]> {
  assertPlainToken('stream', stream);
  return adminStep(`removeStrayConsumers (stream ${stream})`, async () => {
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    // Listed in full first: deleting while paging would shift the pages.
    const stray: string[] = [];
    for await (const info of jsm.consumers.list(stream))
      if (info.config.deliver_subject?.startsWith('$')) stray.push(info.name);
    const removed: string[] = [];
    for (const name of stray) {
      // Gone already (expired, or removed by another sweeper) is as good as removed.
      const deleted = await jsm.consumers.delete(stream, name).catch((err: unknown) => {
        if (err instanceof JetStreamApiError && err.code === ApiErrorCode.ConsumerNotFound) return false;
        throw err;
      });
      if (deleted) removed.push(name);
    }
    return removed;
  });
}
