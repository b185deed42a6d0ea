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
  // Token boundaries without split(): this runs once per delivered message.
  const dots: number[] = [];
  for (let i = reply.indexOf('.'); i !== -1; i = reply.indexOf('.', i + 1)) dots.push(i);
  const tokens = dots.length + 1;
  const base = tokens === 9 ? 4 : tokens >= 11 ? 6 : -1;
  if (base < 0) return undefined;
  const token = (n: number) => reply.slice(dots[n - 1]! + 1, n < dots.length ? dots[n] : undefined);
  const streamSequence = Number(token(base + 1));
  const deliverySequence = Number(token(base + 2));
  const pending = Number(token(base + 4));
  if (![streamSequence, deliverySequence, pending].every(Number.isSafeInteger)) return undefined;
  return { streamSequence, deliverySequence, pending };
}
