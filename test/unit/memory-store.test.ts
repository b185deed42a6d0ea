import { describe, test } from 'vitest';
import {
  conformanceCases,
  conformanceSchemas,
  createMemoryEventStore,
  type ConformanceHarness,
  type MemoryEventStore,
} from '../../src/testing/index.js';
import type { ConformanceEvents } from '../../src/testing/index.js';

let tenant = 0;
const harness: ConformanceHarness = {
  maxBatch: 50,
  async store({ validated } = {}) {
    return createMemoryEventStore<ConformanceEvents>({
      tenant: `t${tenant++}`,
      maxBatch: 50,
      schemas: validated ? conformanceSchemas : undefined,
    });
  },
  async injectRaw(store, raw) {
    const memory = store as MemoryEventStore<ConformanceEvents>;
    memory.appendRaw({
      subject: memory.format.scheme.event(raw.entity, raw.eventType),
      data: raw.data,
      headers: raw.headers,
    });
  },
};

describe('in-memory store conformance', () => {
  for (const c of conformanceCases) test(c.name, () => c.run(harness));
});
