// Runs in Chromium: jetsource/testing's memory store against the conformance suite, the way a
// user's browser-based unit tests would. Reports to window.__result for smoke.test.ts.
import { conformanceCases, conformanceSchemas, createMemoryEventStore } from 'jetsource/testing';

let tenant = 0;
const harness = {
  maxBatch: 50,
  store: async ({ validated } = {}) =>
    createMemoryEventStore({
      tenant: `t${tenant++}`,
      maxBatch: 50,
      schemas: validated ? conformanceSchemas : undefined,
    }),
  injectRaw: async (store, raw) =>
    store.appendRaw({
      subject: store.format.scheme.event(raw.entity, raw.eventType),
      data: raw.data,
      headers: raw.headers,
    }),
};

const failed = [];
for (const c of conformanceCases) {
  try {
    await c.run(harness);
  } catch (err) {
    failed.push(`${c.name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
window.__result = { ok: true, ran: conformanceCases.length, failed };
