import { describe, expect, test } from 'vitest';
import { NatsStoredMessage } from '../../src/store/jetstream/api.js';
import { isInsideBatch } from '../../src/store/jetstream/atomic-batch.js';
import { HeaderBlock } from '../../src/store/jetstream/header-block.js';

const stored = (...headers: string[]) =>
  new NatsStoredMessage(
    7,
    'es.t.a.1.E',
    new Uint8Array(),
    new HeaderBlock(`NATS/1.0\r\n${headers.join('\r\n')}\r\n\r\n`),
  );

describe('isInsideBatch', () => {
  test("only a batch's messages before its commit are inside it", () => {
    expect(
      [
        stored('Nats-Batch-Id: b1', 'Nats-Batch-Sequence: 1'),
        stored('Nats-Batch-Id: b1', 'Nats-Batch-Sequence: 2', 'Nats-Batch-Commit: 1'),
        stored('Nats-Msg-Id: e1'),
      ].map(isInsideBatch),
    ).toEqual([true, false, false]);
  });
});
