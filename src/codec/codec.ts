/** Turns event data into bytes and back. The default is JSON; pass your own for CBOR, protobuf… */
export interface EventCodec {
  encode(data: unknown): Uint8Array;
  /** Throws on bytes it cannot decode; the store reports them as malformed events. */
  decode(bytes: Uint8Array): unknown;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Refuses what JSON would silently turn into something else: NaN and Infinity (null),
 * Maps and Sets (`{}`). Stored events are forever, so such data is an error, not a guess.
 */
function strict(key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value))
    throw new TypeError(`${key || 'data'} is ${value}, which JSON stores as null`);
  if (value instanceof Map || value instanceof Set)
    throw new TypeError(
      `${key || 'data'} is a ${value.constructor.name}, which JSON stores as {}: convert it first`,
    );
  return value;
}

/** UTF-8 JSON. `undefined` data is stored as `null`; undefined fields are left out, as in JSON. */
export const jsonCodec: EventCodec = {
  encode: (data) => {
    const text = JSON.stringify(data ?? null, strict) as string | undefined;
    if (text === undefined) throw new TypeError(`${typeof data} is not JSON-serializable event data`);
    return encoder.encode(text);
  },
  decode: (bytes) => JSON.parse(decoder.decode(bytes)),
};
