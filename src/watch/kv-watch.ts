import { Observable } from 'rxjs';
import type { NatsConnection } from '@nats-io/nats-core';
import type { StoredMessage } from '../codec/event-format.js';
import { OrderedConsumer } from '../store/jetstream/ordered-consumer.js';
import { withOrigin } from '../errors.js';

/** A KV watch message: a key's current message (value or delete marker), or `loaded` once. */
export type KvWatchMessage =
  | { readonly kind: 'entry'; readonly key: string; readonly message: StoredMessage }
  | { readonly kind: 'loaded' };

/**
 * Watches KV keys with the same ordered consumer as event watches: each key's current
 * message first, then `loaded` (also when no key exists yet, which the nats.js KV watch
 * does not signal), then every change. Needs only the single-filter consumer create.
 */
export function watchKv(
  nc: NatsConnection,
  bucket: string,
  keyFilter: string,
  /** What to tell the user when the bucket is missing. */
  missingRemedy?: string,
  /** Where the account has the JetStream API. Default: the connection's (see `connect`). */
  apiPrefix?: string,
): Observable<KvWatchMessage> {
  const prefix = `$KV.${bucket}.`;
  // Where the watch was made, for its errors' stacks (see withOrigin).
  const origin = new Error();
  return new Observable<KvWatchMessage>((subscriber) => {
    const fail = (err: unknown) => subscriber.error(withOrigin(err, 'watch made', origin));
    const consumer = new OrderedConsumer(
      {
        nc,
        stream: `KV_${bucket}`,
        apiPrefix,
        filter: prefix + keyFilter,
        after: 'last-per-subject',
        missingRemedy,
      },
      {
        message: (msg) =>
          subscriber.next({ kind: 'entry', key: msg.subject.slice(prefix.length), message: msg }),
        caughtUp: () => subscriber.next({ kind: 'loaded' }),
        error: fail,
      },
    );
    consumer.start().catch(fail);
    return () => void consumer.stop();
  });
}
