import { describe, expect, test } from 'vitest';
import type { StoredMessage } from '../../src/codec/event-format.js';
import { entityPartEnd, sameBatch } from '../../src/store/jetstream/atomic-batch.js';

const at = (sequence: number, pairs: Record<string, string>): StoredMessage => ({
  sequence,
  subject: 'es.t.order.o-1.placed',
  data: new Uint8Array(),
  header: (name) => pairs[name],
  headerNames: () => Object.keys(pairs),
});
const batch = { 'Nats-Batch-Id': 'b1' };

describe('entityPartEnd', () => {
  test("names where the entity's events in an atomic append end", () => {
    expect(entityPartEnd(at(10, { ...batch, 'Es-Append-Following': '3' }))).toBe(13);
  });

  test("knows nothing of a message outside an atomic append, of an entity's last event in one, or of a wrong count", () => {
    expect(entityPartEnd(at(10, { 'Es-Append-Following': '3' }))).toBeUndefined();
    expect(entityPartEnd(at(10, batch))).toBeUndefined();
    for (const following of ['0', '-1', 'x', '1.5', '1e400', String(Number.MAX_SAFE_INTEGER)])
      expect(
        entityPartEnd(at(10, { ...batch, 'Es-Append-Following': following })),
        following,
      ).toBeUndefined();
  });
});

test('sameBatch tells parts of one atomic append from those of another, or of none', () => {
  expect(sameBatch(at(1, batch), at(2, batch))).toBe(true);
  expect(sameBatch(at(1, batch), at(2, { 'Nats-Batch-Id': 'b2' }))).toBe(false);
  expect(sameBatch(at(1, {}), at(2, {}))).toBe(false);
});
