import { describe, expect, test } from 'vitest';
import type { StoredMessage } from '../../src/codec/event-format.js';
import type { PendingMessage } from '../../src/store/jetstream/direct.js';
import { catchUpSource } from '../../src/store/jetstream/catch-up-source.js';
import type { SourceHandlers, WatchSource } from '../../src/watch/source.js';

const msg = (sequence: number, pending: number) => ({ sequence, pending }) as unknown as PendingMessage;

function recorder() {
  const seen: string[] = [];
  const handlers: SourceHandlers = {
    message: (m: StoredMessage, pending: number) => seen.push(`${m.sequence}/${pending}`),
    caughtUp: (sequence) => seen.push(`caught-up ${sequence}`),
    error: (err) => seen.push(`error ${err.message}`),
  };
  const follow = (after: number): WatchSource => ({
    start: async () => void seen.push(`follow after ${after}`),
    stop: async () => void seen.push('live stopped'),
  });
  return { seen, handlers, follow };
}

describe('catchUpSource', () => {
  test('delivers the read, then follows from the last sequence it delivered', async () => {
    const { seen, handlers, follow } = recorder();
    async function* read(after: number) {
      expect(after).toBe(3);
      yield [msg(5, 2), msg(9, 1)];
      yield [msg(12, 0)];
    }
    await catchUpSource(3, read, follow, handlers).start();
    expect(seen).toEqual(['5/2', '9/1', '12/0', 'follow after 12']);
  });

  test('an empty read follows from where it was asked to start', async () => {
    const { seen, handlers, follow } = recorder();
    await catchUpSource(7, async function* () {}, follow, handlers).start();
    expect(seen).toEqual(['follow after 7']);
  });

  test('a read that fails part-way is resumed by the live source, from the last delivered', async () => {
    const { seen, handlers, follow } = recorder();
    async function* read() {
      yield [msg(5, 3)];
      throw new Error('connection dropped');
    }
    await catchUpSource(0, read, follow, handlers).start();
    expect(seen).toEqual(['5/3', 'follow after 5']);
  });

  test('stopped during the read: the rest is not delivered and nothing live starts', async () => {
    const { seen, handlers, follow } = recorder();
    async function* read() {
      yield [msg(1, 1)];
      await source.stop();
      yield [msg(2, 0)];
    }
    const source = catchUpSource(0, read, follow, handlers);
    await source.start();
    expect(seen).toEqual(['1/1']);
  });

  test('stop reaches the live source once it runs', async () => {
    const { seen, handlers, follow } = recorder();
    const source = catchUpSource(0, async function* () {}, follow, handlers);
    await source.start();
    await source.stop();
    expect(seen).toEqual(['follow after 0', 'live stopped']);
  });
});
