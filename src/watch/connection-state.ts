import { distinctUntilChanged, Observable } from 'rxjs';
import type { NatsConnection, QueuedIterator, Status } from '@nats-io/nats-core';
import type { ConnectionState } from './types.js';

/**
 * The connection's state as values: `connected` first (or `closed`), then every change.
 * A reconnect is a value, not an error; the Observable completes when the connection closes.
 */
export function connectionState(nc: NatsConnection): Observable<ConnectionState> {
  return new Observable<ConnectionState>((subscriber) => {
    if (nc.isClosed()) {
      subscriber.next('closed');
      subscriber.complete();
      return;
    }
    subscriber.next(nc.isDraining() ? 'disconnected' : 'connected');
    const status = nc.status() as QueuedIterator<Status>;
    void (async () => {
      for await (const s of status) {
        const state = stateOf(s.type);
        if (state) subscriber.next(state);
      }
    })();
    void nc.closed().then(() => {
      subscriber.next('closed');
      subscriber.complete();
    });
    return () => status.stop();
  }).pipe(distinctUntilChanged());
}

function stateOf(type: Status['type']): ConnectionState | undefined {
  switch (type) {
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
