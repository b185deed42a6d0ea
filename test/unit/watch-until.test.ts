import { lastValueFrom, toArray } from 'rxjs';
import { describe, expect, test } from 'vitest';
import { jsonCodec } from '../../src/codec/codec.js';
import { EventFormat, type StoredMessage } from '../../src/codec/event-format.js';
import { mapHeaderSource } from '../../src/codec/metadata.js';
import { SubjectScheme } from '../../src/subjects/subjects.js';
import type { SourceHandlers } from '../../src/watch/source.js';
import { watchEvents, type StoredBounds } from '../../src/watch/watch.js';

type Events = { Added: { n: number } };
const format = new EventFormat<Events>(new SubjectScheme('es', 'acme'), { codec: jsonCodec });

async function stored(sequence: number): Promise<StoredMessage> {
  const [write] = await format.prepare([
    { entity: { type: 'counter', id: 'c' }, events: [{ type: 'Added', data: { n: sequence } }] },
  ]);
  const event = write!.events[0]!;
  return { sequence, subject: event.subject, data: event.data, ...mapHeaderSource(new Map(event.headers)) };
}

/**
 * A stream where sequence 7 matches the watch and 10 (`until`) is another entity's: the
 * server has stored 7 but the consumer pushes it only when the test says so.
 */
function slowPush() {
  let handlers!: SourceHandlers;
  const looked: number[] = [];
  const bounds: StoredBounds = {
    reached: async (sequence) => sequence <= 10,
    firstFrom: async (from) => {
      looked.push(from);
      return from <= 7 ? 7 : undefined;
    },
  };
  const open = (h: SourceHandlers) => {
    handlers = h;
    return { start: async () => h.caughtUp(5), stop: async () => undefined };
  };
  return { bounds, open, looked, push: async () => handlers.message(await stored(7), 0) };
}

describe('watch until', () => {
  test('does not complete while an event of the filter at or before until is still to come', async () => {
    const stream = slowPush();
    const messages = lastValueFrom(
      watchEvents(format, stream.open, { after: 0, until: 10 }, stream.bounds).pipe(toArray()),
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(stream.looked).toEqual([6]); // it looked, found #7 stored, and waits for it
    await stream.push();
    const kinds = (await messages).map((m) => (m.kind === 'event' ? m.event.sequence : m.kind));
    expect(kinds).toEqual(['caught-up', 7]);
    expect(stream.looked).toEqual([6, 8]);
  });

  test('an event it waits for that is deleted before it arrives does not leave it waiting', async () => {
    const stream = slowPush();
    let deleted = false;
    const bounds: StoredBounds = {
      reached: stream.bounds.reached,
      firstFrom: async (from) => (deleted ? undefined : stream.bounds.firstFrom(from)),
    };
    const messages = lastValueFrom(watchEvents(format, stream.open, { until: 10 }, bounds).pipe(toArray()));
    await new Promise((r) => setTimeout(r, 20));
    deleted = true; // #7 expired or was deleted: the consumer will never push it
    expect((await messages).map((m) => m.kind)).toEqual(['caught-up']);
  });
});
