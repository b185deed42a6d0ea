import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { EntityRef } from '../../subjects/subjects.js';
import type { EventStore } from '../../store/types.js';

/** The event map every conformance case uses. */
export type ConformanceEvents = {
  Opened: { owner: string };
  Deposited: { amount: number };
  Withdrawn: { amount: number };
};

/** What a store implementation provides to run the suite. Every call must give a fresh tenant. */
export interface ConformanceHarness {
  /** A fresh, empty store. With `validated`, it carries {@link conformanceSchemas}. */
  store(options?: { validated?: boolean }): Promise<EventStore<ConformanceEvents>>;
  /** Stores bytes as they are in that store's backing stream, bypassing encoding and validation. */
  injectRaw(store: EventStore<ConformanceEvents>, raw: RawEvent): Promise<void>;
  /** The atomic batch limit the stores were opened with. */
  maxBatch: number;
}

/** Bytes to store for an entity and event type, as a foreign or buggy writer might. */
export interface RawEvent {
  entity: EntityRef;
  eventType: string;
  data: Uint8Array;
  headers: ReadonlyArray<[string, string]>;
}

/** One case: run it with your test runner; it throws on failure. */
export interface ConformanceCase {
  readonly name: string;
  run(harness: ConformanceHarness): Promise<void>;
}

const amount: StandardSchemaV1<unknown, { amount: number }> = {
  '~standard': {
    version: 1,
    vendor: 'jetsource-conformance',
    validate: (v) =>
      typeof v === 'object' && v !== null && typeof (v as { amount?: unknown }).amount === 'number'
        ? { value: v as { amount: number } }
        : { issues: [{ message: 'amount must be a number', path: ['amount'] }] },
  },
};
const owner: StandardSchemaV1<unknown, { owner: string }> = {
  '~standard': {
    version: 1,
    vendor: 'jetsource-conformance',
    validate: (v) =>
      typeof (v as { owner?: unknown })?.owner === 'string'
        ? { value: v as { owner: string } }
        : { issues: [{ message: 'owner must be a string' }] },
  },
};

/** Minimal Standard Schema validators for {@link ConformanceEvents}, so the suite needs no validation library. */
export const conformanceSchemas = { Opened: owner, Deposited: amount, Withdrawn: amount };
