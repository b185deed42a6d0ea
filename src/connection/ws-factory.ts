import { deadline, errors, type WsSocketFactory } from '@nats-io/nats-core';

/** How long before nats.js's connect timer a factory's socket must be there. */
const HEADSTART_MS = 50;

/** What a guarded factory last failed with, for the error `connect` raises. */
export interface FactoryFailure {
  error?: unknown;
}

/**
 * Wraps a user's `wsFactory` so that its failure fails the connection. nats.js awaits the
 * factory, and when it throws (or returns no socket) nats.js waits forever for a socket
 * that never existed to close. The wrapper hands nats.js a socket that fails at once, as a
 * refused connection does, and keeps the factory's own error in `failure`. A factory still
 * making its socket at the connect timeout (`timeoutMs`) fails the same way, just before
 * nats.js's own timer: that one, with no socket to close, leaves the connect hanging. On a
 * reconnect a failure is just a failed attempt: nats.js tries again.
 */
export function failingFast(
  factory: WsSocketFactory,
  failure: FactoryFailure,
  timeoutMs: number,
): WsSocketFactory {
  return async (url, options) => {
    // A factory that throws before returning a promise fails like one that rejects.
    const making = Promise.resolve().then(() => factory(url, options));
    try {
      const made = await deadline(making, Math.max(1, timeoutMs - HEADSTART_MS)).catch((err: unknown) => {
        if (!(err instanceof errors.TimeoutError)) throw err;
        // Made too late: nothing will use it, nor hear of its closing while it connects.
        making.then(
          (late) => late?.socket && closeUnused(late.socket),
          () => undefined,
        );
        throw new Error(`it made none within the connect timeout (${timeoutMs} ms)`, { cause: err });
      });
      if (typeof made?.socket?.send !== 'function')
        throw new TypeError('it returned no { socket, encrypted } with a WebSocket');
      return made;
    } catch (err) {
      failure.error = err;
      return { socket: failedSocket(), encrypted: false };
    }
  };
}

/**
 * A WebSocket that reports an error as soon as nats.js has set its handlers, and reports
 * closing when closed: nats.js may give up on it first (its connect timer firing in the
 * same turn), and then waits for the close.
 */
function failedSocket(): WebSocket {
  const socket = {
    binaryType: 'arraybuffer',
    bufferedAmount: 0,
    onopen: null,
    onmessage: null,
    onclose: null as ((event: { wasClean: boolean; code: number; reason: string }) => void) | null,
    onerror: null as ((event: { message: string }) => void) | null,
    send() {},
    close() {
      setTimeout(() => socket.onclose?.({ wasClean: false, code: 1006, reason: '' }), 0);
    },
  };
  setTimeout(() => socket.onerror?.({ message: 'wsFactory made no WebSocket' }), 0);
  return socket as unknown as WebSocket;
}

/** Closes a socket nobody listens to; closing one still connecting reports an error, which is ignored. */
function closeUnused(socket: WebSocket): void {
  socket.onerror = () => undefined;
  try {
    socket.close();
  } catch {
    // Not a WebSocket after all: there is nothing to close.
  }
}
