// jetsource/testing: helpers for users' tests; never imported by the main entry. Only the
// server launcher needs Node, and loads its modules when called.
export { startNatsServer } from './start-nats-server.js';
export type { NatsServer, NatsServerOptions } from './nats-server.js';
export { createMemoryEventStore, MemoryEventStore } from '../store/memory-store.js';
export type { MemoryEventStoreOptions, RawMessage } from '../store/memory-store.js';
export { conformanceCases, conformanceSchemas } from './conformance/index.js';
export type {
  ConformanceCase,
  ConformanceEvents,
  ConformanceHarness,
  RawEvent,
} from './conformance/index.js';
