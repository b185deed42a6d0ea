import { distinctUntilChanged, Observable } from 'rxjs';
import type { NatsConnection, QueuedIterator, Status } from '@nats-io/nats-core';
import { lastLinkStatus, linkChange } from '../connection/link.js';
import type { ConnectionState } from './types.js';

/**
 * The connection's state as values: the current state first, then every change.
 * A reconnect is a value, not an error; the Observable emits `closed` and completes when
 * the connection closes.
 *
 * Once reconnecting, it stays `reconnecting` until the connection is back or closed (nats.js
 * reports each failed attempt as another disconnect).
 *
 * The first value is exact for connections made by jetsource's `connect`. For others
 * nats.js cannot tell whether they are up, so it is `connected` (or `closed`, or
 * `disconnected` while draining) even during an outage, until the next change.
 */
export function connectionState(nc: NatsConnection): Observable<ConnectionState> {
  return new Observable<ConnectionState>((subscriber) => {
    if (nc.isClosed()) {
      subscriber.next('closed');
      subscriber.complete();
      return;
    }
    const link = lastLinkStatus(nc);
    let last: ConnectionState = nc.isDraining() ? 'disconnected' : link ? stateOf(link)! : 'connected';
    subscriber.next(last);
    const status = nc.status() as QueuedIterator<Status>;
    void (async () => {
      for await (const s of status) {
        const state = stateOf(s.type);
        // nats.js reports each failed attempt as a disconnect: still reconnecting, for a UI.
        if (!state || (state === 'disconnected' && last === 'reconnecting')) continue;
        subscriber.next((last = state));
      }
      // The status stream ends when the connection closes, or when this subscriber left.
      if (subscriber.closed) return;
      subscriber.next('closed');
      subscriber.complete();
    })();
    return () => status.stop();
  }).pipe(distinctUntilChanged());
}

function stateOf(type: Status['type']): ConnectionState | undefined {
  switch (linkChange(type)) {
    case 'disconnect':
      return 'disconnected';
    case 'reconnecting':
      return 'reconnecting';
    case 'reconnect':
      return 'connected';
    default:
      return undefined;
  }
}
