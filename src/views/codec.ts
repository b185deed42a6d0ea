import type { StoredMessage } from '../codec/event-format.js';
import type { StoredViewValue, ViewEntry } from './define-view.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Serializes a view value with a fixed key order, so equal states give equal bytes. */
export function encodeViewValue<S>(value: StoredViewValue<S>): Uint8Array {
  const { sequence, time, state, replayed, deadLettered } = value;
  // Only values with dead letters carry their lists: the rest stay as a plain fold writes them.
  return encoder.encode(
    JSON.stringify({
      sequence,
      time,
      state,
      ...(replayed?.length ? { replayed } : {}),
      ...(deadLettered?.length ? { deadLettered } : {}),
    }),
  );
}

/** A KV message as a view entry; null for a delete or purge marker. Pure. */
export function decodeViewEntry<S>(
  key: string,
  version: number,
  msg: Pick<StoredMessage, 'data' | 'header'>,
): ViewEntry<S> | null {
  const operation = msg.header('KV-Operation');
  if (operation === 'DEL' || operation === 'PURGE' || msg.data.length === 0) return null;
  const value = JSON.parse(decoder.decode(msg.data)) as StoredViewValue<S> | null;
  if (typeof value?.sequence !== 'number' || typeof value.time !== 'string')
    throw new TypeError('it has no sequence and time');
  return { key, version, state: value.state, sequence: value.sequence, time: new Date(value.time) };
}
