// jetsource: the isomorphic client entry (browsers, Node, workers). Nothing here may import a
// Node built-in. Service-side pieces (store admin, projectors, processors) are in ./server.ts.
export { connect, connectionDefaults, verifyTenant } from './connection/connect.js';
export type { ConnectOptions } from './connection/connect.js';
export { createEventStore, JetStreamEventStore } from './store/jetstream-store.js';
export type { EventStoreOptions } from './store/jetstream-store.js';
export type {
  AppendAllOptions,
  AppendOptions,
  AppendResult,
  EntityWrite,
  EnvelopeOf,
  EventEnvelope,
  EventMap,
  EventReader,
  EventStore,
  EventTypeFilter,
  Evolver,
  ExpectedVersion,
  Loaded,
  LoadOptions,
  MalformedEvent,
  MalformedPolicy,
  NewEvent,
  ReadOptions,
  ReadProgress,
  ReadTarget,
} from './store/types.js';
export { connectionState } from './watch/connection-state.js';
export { onlyEvents, foldWatch, foldState, liveState, shareLive } from './watch/operators.js';
export type { Fold, LiveState } from './watch/operators.js';
export { toStore } from './watch/external-store.js';
export type { ExternalStore } from './watch/external-store.js';
export type {
  WatchMessage,
  WatchMessageOf,
  WatchOptions,
  WatchProgress,
  WatchStart,
  ConnectionState,
} from './watch/types.js';
export { defineView } from './views/define-view.js';
export type { ViewDefinition, ViewEntry } from './views/define-view.js';
export { openView } from './views/view-reader.js';
export type { ViewName, ViewReader, ViewSource, OpenViewOptions } from './views/view-reader.js';
export { SubjectScheme, describeEntity } from './subjects/subjects.js';
export type { EntityRef, EventFilter, EventAddress } from './subjects/subjects.js';
export { encodeToken, decodeToken } from './subjects/tokens.js';
export { jsonCodec } from './codec/codec.js';
export type { EventCodec } from './codec/codec.js';
export { Header } from './codec/metadata.js';
export type { EventMetadata } from './codec/metadata.js';
export type { EventSchemas } from './codec/schema.js';
export {
  JetsourceError,
  isJetsourceError,
  ConcurrencyError,
  InvalidArgumentError,
  InvalidTokenError,
  PayloadTooLargeError,
  BatchTooLargeError,
  ValidationError,
  MalformedEventError,
  PermissionDeniedError,
  AuthenticationError,
  TenantMismatchError,
  StoreNotFoundError,
  StoreConfigError,
  UnavailableError,
  UnsupportedServerError,
  ServerError,
} from './errors.js';
export type { JetsourceErrorByCode, JetsourceErrorCode, MalformedReason } from './errors.js';
