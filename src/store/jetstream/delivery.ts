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
  const t = reply.split('.');
  const base = t.length === 9 ? 4 : t.length >= 11 ? 6 : -1;
  if (base < 0) return undefined;
  const streamSequence = Number(t[base + 1]);
  const deliverySequence = Number(t[base + 2]);
  const pending = Number(t[base + 4]);
  if (![streamSequence, deliverySequence, pending].every(Number.isSafeInteger)) return undefined;
  return { streamSequence, deliverySequence, pending };
}
