import { headers, type NatsConnection } from '@nats-io/nats-core';
import { createEventStore, type JetStreamEventStore } from '../../src/index.js';
import {
  conformanceSchemas,
  type ConformanceEvents,
  type ConformanceHarness,
} from '../../src/testing/index.js';
import { unique } from './nats.js';

/** The conformance suite's harness for JetStream stores on `stream`: a fresh tenant per store. */
export function jetStreamHarness(
  nc: NatsConnection,
  { stream, prefix, maxBatch }: { stream: string; prefix: string; maxBatch: number },
): ConformanceHarness {
  return {
    maxBatch,
    async store({ validated } = {}) {
      return createEventStore<ConformanceEvents>({
        connection: nc,
        tenant: unique('tenant'),
        prefix,
        stream,
        maxBatch,
        schemas: validated ? conformanceSchemas : undefined,
      });
    },
    async injectRaw(store, raw) {
      const subject = (store as JetStreamEventStore<ConformanceEvents>).format.scheme.event(
        raw.entity,
        raw.eventType,
      );
      const h = headers();
      for (const [k, v] of raw.headers) h.append(k, v);
      const ack = await nc.request(subject, raw.data, { headers: h, timeout: 5000 });
      const { seq } = ack.json<{ seq?: number }>();
      if (seq === undefined) throw new Error(`the injected message was refused: ${ack.string()}`);
      // Read as if the store had appended it: on a replicated stream its reads then wait
      // for a replica that has it, rather than read one that does not yet.
      (store as JetStreamEventStore<ConformanceEvents>).own.record([{ sequence: seq, subject }]);
    },
  };
}
