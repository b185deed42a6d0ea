// jetsource/server: what a tenant's service role runs (store and view admin, projectors,
// durable processors). Isomorphic too, so it also runs in a worker; kept apart so browser
// apps do not carry it.
export { ensureStore, ensureProcessorStream } from './store/ensure-store.js';
export type { EnsureStoreOptions, EnsuredStore, EnsureProcessorStreamOptions } from './store/ensure-store.js';
export { removeStrayConsumers } from './store/stray-consumers.js';
export { startProjector } from './views/projector.js';
export type { Projector, ProjectorOptions, ProjectorProgress } from './views/projector.js';
export { ensureViews } from './views/ensure-views.js';
export type { EnsureViewsOptions } from './views/ensure-views.js';
export { startProcessor } from './processing/processor.js';
export type {
  Processor,
  ProcessorOptions,
  ProcessorOutcome,
  ReplayResult,
  StopOptions,
} from './processing/processor.js';
export { retry, reject, isHandlerOutcome } from './processing/outcome.js';
export type { Retry, Reject, HandlerOutcome } from './processing/outcome.js';
export type { ProcessorHandler, ProcessContext, Propagation, ErrorSummary } from './processing/attempt.js';
export { defaultPolicy, durableName } from './processing/policy.js';
export type { ProcessorPolicy, ResolvedPolicy } from './processing/policy.js';
export type { ProcessorMetrics, HandlerTimings } from './processing/metrics.js';
export { ProcessorConfigError, DeadLetterNotFoundError, FoldError } from './processing/errors.js';
export { DeadLetters } from './processing/dead-letters.js';
export type { DeadLetter, DeadLettersOptions } from './processing/dead-letters.js';
