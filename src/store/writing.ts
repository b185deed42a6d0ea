import { assertObject } from '../options.js';
import type { EntityRef } from '../subjects/subjects.js';
import type { PreparedWrite } from '../codec/event-format.js';
import type { AppendOptions, AppendResult, EventStore, NewEvent } from './types.js';

/** `append` for every store: one entity's events are an `appendAll` of one write. */
export async function appendOne<E extends object>(
  store: Pick<EventStore<E>, 'appendAll'>,
  entity: EntityRef,
  events: NewEvent<E> | ReadonlyArray<NewEvent<E>>,
  options: AppendOptions,
): Promise<AppendResult> {
  assertObject('events', events, 'an event { type, data } or an array of them');
  assertObject('append options', options, "{ expect: 'new' | 'any' | version, … }");
  const list = Array.isArray(events) ? (events as ReadonlyArray<NewEvent<E>>) : [events as NewEvent<E>];
  const { expect, ...shared } = options;
  const [result] = await store.appendAll([{ entity, events: list, expect }], shared);
  return result!;
}

/** Each write's sequences when an append's events are stored in one run from `start`, as a batch is. */
export function resultsFrom(writes: ReadonlyArray<PreparedWrite>, start: number): AppendResult[] {
  let next = start;
  return writes.map((w) => {
    const sequences = w.events.map(() => next++);
    return { sequences, version: sequences[sequences.length - 1]! };
  });
}
