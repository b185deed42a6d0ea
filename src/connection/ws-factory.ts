import type { WsSocketFactory } from '@nats-io/nats-core';

/** What a guarded factory last failed with, for the error `connect` raises. */
export interface FactoryFailure {
  error?: unknown;
}

/**
 * Wraps a user's `wsFactory` so that its failure fails the connection. nats.js awaits the
 * factory, and when it throws (or returns no socket) nats.js waits forever for a socket
 * that never existed to close. The wrapper hands nats.js a socket that fails at once, as a
 * refused connection does, and keeps the factory's own error in `failure`. On a reconnect
 * that failure is just a failed attempt: nats.js tries again.
 */
export function failingFast(factory: WsSocketFactory, failure: FactoryFailure): WsSocketFactory {
  return async (url, options) => {
    try {
      const made = await factory(url, options);
      if (typeof made?.socket?.send !== 'function')
        throw new TypeError('it returned no { socket, encrypted } with a WebSocket');
      return made;
    } catch (err) {
      failure.error = err;
      return { socket: failedSocket(), encrypted: false };
    }
  };
}

/** A WebSocket that reports an error as soon as nats.js has set its handlers. */
function failedSocket(): WebSocket {
  const socket = {
    binaryType: 'arraybuffer',
    bufferedAmount: 0,
    onopen: null,
    onmessage: null,
    onclose: null,
    onerror: null as ((event: { message: string }) => void) | null,
    send() {},
    close() {},
  };
  setTimeout(() => socket.onerror?.({ message: 'wsFactory made no WebSocket' }), 0);
  return socket as unknown as WebSocket;
}
