import type { StoredMessage } from '../codec/event-format.js';

/** The callbacks a watch source drives. */
export interface SourceHandlers {
  message(msg: StoredMessage, pending: number): void;
  caughtUp(lastSequence: number): void;
  error(err: Error): void;
  /** A flow-control request: `answer` once the messages before it are emitted (backpressure). */
  flowControl?(answer: () => void): void;
  /** Settles once every message handed over so far is emitted: a source that pulls waits for it. */
  emitted?(): Promise<void>;
}

/** Something that delivers stored messages in order: the JetStream ordered consumer or the in-memory store. */
export interface WatchSource {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Builds a source for one subscription. */
export type OpenSource = (handlers: SourceHandlers) => WatchSource;
