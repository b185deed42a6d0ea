import { describe, expect, test } from 'vitest';
import { UnavailableError } from '../../src/errors.js';
import { readEvents, type Decoded } from '../../src/store/reading.js';

/** Pages that fail after an await, as a read whose server stops answering does. */
async function* failingPages(error: Error): AsyncGenerator<ReadonlyArray<Decoded<object>>> {
  await new Promise((resolve) => setTimeout(resolve, 1));
  yield [];
  await new Promise((resolve) => setTimeout(resolve, 1));
  throw error;
}

describe('readEvents', () => {
  test("jetsource's errors raised deep in a read's pages name where the reader was iterated", async () => {
    const error = new UnavailableError('no answer');
    async function iteratingCaller() {
      for await (const event of readEvents(() => failingPages(error), {})) void event;
    }
    await expect(iteratingCaller()).rejects.toBe(error);
    expect(error.stack).toContain('--- read by ---');
    expect(error.stack!.split('--- read by ---')[1]).toContain('iteratingCaller');
    // The same error raised again is not marked twice.
    await expect(iteratingCaller()).rejects.toBe(error);
    expect(error.stack!.split('--- read by ---')).toHaveLength(2);
  });

  test('errors that are not jetsource’s are passed on untouched', async () => {
    const error = new TypeError('from a codec');
    const before = error.stack;
    await expect(
      (async () => {
        for await (const event of readEvents(() => failingPages(error), {})) void event;
      })(),
    ).rejects.toBe(error);
    expect(error.stack).toBe(before);
  });
});
