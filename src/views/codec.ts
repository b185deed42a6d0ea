import type { StoredMessage } from '../codec/event-format.js';
import type { StoredViewValue, ViewEntry } from './define-view.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Serializes a view value with a fixed key order, so equal states give equal bytes. */
export function encodeViewValue<S>(value: StoredViewValue<S>): Uint8Array {
  return encoder.encode(JSON.stringify({ sequence: value.sequence, time: value.time, state: value.state }));
}

/** A KV message as a view entry; null for a delete or purge marker. Pure. */
export function decodeViewEntry<S>(
  key: string,
  msg: Pick<StoredMessage, 'data' | 'header'>,
): ViewEntry<S> | null {
  const operation = msg.header('KV-Operation');
  if (operation === 'DEL' || operation === 'PURGE' || msg.data.length === 0) return null;
  const value = JSON.parse(decoder.decode(msg.data)) as StoredViewValue<S>;
  return { key, state: value.state, sequence: value.sequence, time: new Date(value.time) };
}
