import { describe, expect, test } from 'vitest';
import type { StoredMessage } from '../../src/codec/event-format.js';
import { batchEnd, sameBatch } from '../../src/store/jetstream/atomic-batch.js';

const at = (sequence: number, pairs: Record<string, string>): StoredMessage => ({
  sequence,
  subject: 'es.t.order.o-1.placed',
  data: new Uint8Array(),
  header: (name) => pairs[name],
  headerNames: () => Object.keys(pairs),
});
const batch = { 'Nats-Batch-Id': 'b1' };

describe('batchEnd', () => {
  test('names where the atomic append a message is part of ends', () => {
    expect(batchEnd(at(10, { ...batch, 'Nats-Batch-Sequence': '2', 'Es-Batch-Size': '5' }))).toBe(13);
    expect(batchEnd(at(13, { ...batch, 'Nats-Batch-Sequence': '5', 'Nats-Batch-Commit': '1' }))).toBe(13);
  });

  test('knows nothing of a message outside a batch, or of a batch whose size is missing or impossible', () => {
    expect(batchEnd(at(10, {}))).toBeUndefined();
    expect(batchEnd(at(10, { ...batch, 'Nats-Batch-Sequence': '2' }))).toBeUndefined();
    for (const [position, size] of [
      ['3', '2'],
      ['0', '2'],
      ['x', '2'],
      ['1', '1e400'],
    ])
      expect(
        batchEnd(at(10, { ...batch, 'Nats-Batch-Sequence': position!, 'Es-Batch-Size': size! })),
      ).toBeUndefined();
  });
});

test('sameBatch tells parts of one atomic append from those of another, or of none', () => {
  expect(sameBatch(at(1, batch), at(2, batch))).toBe(true);
  expect(sameBatch(at(1, batch), at(2, { 'Nats-Batch-Id': 'b2' }))).toBe(false);
  expect(sameBatch(at(1, {}), at(2, {}))).toBe(false);
});
