/** Delivery facts a JetStream push message carries in its `$JS.ACK…` reply subject. */
export interface Delivery {
  readonly streamSequence: number;
  readonly deliverySequence: number;
  /** Messages still pending for the consumer after this one. */
  readonly pending: number;
}

const ACK_PREFIX = '$JS.ACK.';

/**
 * Parses `$JS.ACK.<stream>.<consumer>.<count>.<sseq>.<dseq>.<ts>.<pending>` and the newer
 * form with domain and account hash. Pure; returns undefined for anything else.
 */
export function parseDelivery(reply: string | undefined): Delivery | undefined {
  if (!reply?.startsWith(ACK_PREFIX)) return undefined;
  // Runs once per delivered message: find token boundaries without split() or closures.
  let tokens = 1;
  for (let i = reply.indexOf('.'); i !== -1; i = reply.indexOf('.', i + 1)) tokens++;
  const base = tokens === 9 ? 4 : tokens >= 11 ? 6 : -1;
  if (base < 0) return undefined;
  // Tokens counted from 0: the stream sequence is token base+1, after base+1 dots.
  let start = 0;
  for (let n = 0; n <= base; n++) start = reply.indexOf('.', start) + 1;
  let end = reply.indexOf('.', start);
  const streamSequence = Number(reply.slice(start, end));
  start = end + 1;
  end = reply.indexOf('.', start);
  const deliverySequence = Number(reply.slice(start, end));
  start = reply.indexOf('.', end + 1) + 1; // past the timestamp
  end = reply.indexOf('.', start);
  const pending = Number(reply.slice(start, end === -1 ? undefined : end));
  if (!Number.isSafeInteger(streamSequence) || !Number.isSafeInteger(deliverySequence)) return undefined;
  if (!Number.isSafeInteger(pending)) return undefined;
  return { streamSequence, deliverySequence, pending };
}
