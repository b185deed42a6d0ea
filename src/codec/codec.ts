/** Turns event data into bytes and back. The default is JSON; pass your own for CBOR, protobuf… */
export interface EventCodec {
  encode(data: unknown): Uint8Array;
  /** Throws on bytes it cannot decode; the store reports them as malformed events. */
  decode(bytes: Uint8Array): unknown;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 JSON. `undefined` data is stored as `null`. */
export const jsonCodec: EventCodec = {
  encode: (data) => {
    const text = JSON.stringify(data ?? null) as string | undefined;
    if (text === undefined) throw new TypeError(`${typeof data} is not JSON-serializable event data`);
    return encoder.encode(text);
  },
  decode: (bytes) => JSON.parse(decoder.decode(bytes)),
};
