// Errors raised deep in a read's pages or a watch's source name where the user's code met
// them: V8 records no caller through async generators or a source's callbacks.
import { describe, expect, test } from 'vitest';
import { firstValueFrom } from 'rxjs';
import { EventFormat } from '../../src/codec/event-format.js';
import { jsonCodec } from '../../src/codec/codec.js';
import { UnavailableError } from '../../src/errors.js';
import { readEvents, type Decoded } from '../../src/store/reading.js';
import { SubjectScheme } from '../../src/subjects/subjects.js';
import { watchEvents } from '../../src/watch/watch.js';

const later = () => new Promise((resolve) => setTimeout(resolve, 1));

/** Pages that fail after an await, as a read whose server stops answering does. */
async function* failingPages(error: Error): AsyncGenerator<ReadonlyArray<Decoded<object>>> {
  await later();
  yield [];
  await later();
  throw error;
}

describe('readEvents', () => {
  test("jetsource's errors raised deep in a read's pages name where the reader was iterated, once", async () => {
    const error = new UnavailableError('no answer');
    async function iteratingCaller() {
      for await (const event of readEvents(() => failingPages(error), {})) void event;
    }
    await expect(iteratingCaller()).rejects.toBe(error);
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

describe('watchEvents', () => {
  test("jetsource's errors from a watch's source name where the watch was made", async () => {
    const error = new UnavailableError('the consumer is gone');
    const format = new EventFormat(new SubjectScheme('es', 't'), { codec: jsonCodec });
    function watchingCaller() {
      return watchEvents(format, (handlers) => ({
        start: async () => {
          await later();
          handlers.error(error);
        },
        stop: async () => undefined,
      }));
    }
    await expect(firstValueFrom(watchingCaller())).rejects.toBe(error);
    expect(error.stack!.split('--- watch made ---')[1]).toContain('watchingCaller');
  });
});
