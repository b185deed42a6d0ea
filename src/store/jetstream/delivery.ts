/** Delivery facts a JetStream push message carries in its `$JS.ACK…` reply subject. */
export interface Delivery {
  readonly streamSequence: number;
  readonly deliverySequence: number;
  /** Messages still pending for the consumer after this one. */
  readonly pending: number;
}

/**
 * Parses `$JS.ACK.<stream>.<consumer>.<count>.<sseq>.<dseq>.<ts>.<pending>` and the newer
 * form with domain and account hash. Pure; returns undefined for anything else.
 */
export function parseDelivery(reply: string | undefined): Delivery | undefined {
  if (!reply?.startsWith('$JS.ACK.')) return undefined;
  // Where each token starts, without split(): this runs once per delivered message.
  const starts = [0];
  for (let i = reply.indexOf('.'); i !== -1; i = reply.indexOf('.', i + 1)) starts.push(i + 1);
  const base = starts.length === 9 ? 4 : starts.length >= 11 ? 6 : -1;
  const streamSequence = tokenNumber(reply, starts, base + 1);
  const deliverySequence = tokenNumber(reply, starts, base + 2);
  const pending = tokenNumber(reply, starts, base + 4);
  if (base < 0 || !Number.isSafeInteger(streamSequence + deliverySequence + pending)) return undefined;
  return { streamSequence, deliverySequence, pending };
}

function tokenNumber(text: string, starts: number[], n: number): number {
  return Number(text.slice(starts[n], (starts[n + 1] ?? text.length + 1) - 1));
}
