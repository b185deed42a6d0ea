import type { NatsServer, NatsServerOptions } from './nats-server.js';

/**
 * Starts a nats-server with JetStream on free loopback ports and a temporary store,
 * waits until it accepts clients, and returns a handle to stop or restart it. When it
 * fails to start (in `readyTimeoutMs`), the error carries the server's log and nothing
 * is left running or on disk. Node only.
 *
 * @example
 * const server = await startNatsServer();
 * const nc = await connect({ servers: server.wsUrl }); // from 'jetsource'; on Node 20 pass wsFactory too
 * await server.stop();
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  // Node's modules load on the first call, not on import: the rest of jetsource/testing
  // (the memory store, the conformance suite) runs in browsers too.
  const { launchNatsServer } = await import('./nats-server.js');
  return launchNatsServer(options);
}
