import type { StoredMessage } from '../codec/event-format.js';

/** The callbacks a watch source drives. */
export interface SourceHandlers {
  message(msg: StoredMessage, pending: number): void;
  caughtUp(lastSequence: number): void;
  error(err: Error): void;
}

/** Something that delivers stored messages in order: the JetStream ordered consumer or the in-memory store. */
export interface WatchSource {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Builds a source for one subscription. */
export type OpenSource = (handlers: SourceHandlers) => WatchSource;
