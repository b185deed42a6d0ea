// jetsource/testing: helpers for users' tests. May use Node built-ins; never imported by the main entry.
export { startNatsServer } from './nats-server.js';
export type { NatsServer, NatsServerOptions } from './nats-server.js';
