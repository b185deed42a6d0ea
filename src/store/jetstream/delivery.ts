/** Delivery facts a JetStream push message carries in its `$JS.ACK…` reply subject. */
export interface Delivery {
  readonly streamSequence: number;
  readonly deliverySequence: number;
  /** Messages still pending for the consumer after this one. */
  readonly pending: number;
}

/** Whether a pushed message is a stored message (its reply is a `$JS.ACK…` subject), not a status or flow control. */
export const isDelivery = (reply: string | undefined): reply is string => reply?.startsWith(ACK) === true;

/**
 * Parses `$JS.ACK.<stream>.<consumer>.<count>.<sseq>.<dseq>.<ts>.<pending>` and the newer
 * form with domain and account hash, when it names `stream` and `consumer`. Pure; returns
 * undefined for anything else: users who share an inbox prefix can aim their own
 * consumers at each other's inboxes, and a delivery of another consumer is not ours.
 */
export function parseDelivery(
  reply: string | undefined,
  stream: string,
  consumer: string,
): Delivery | undefined {
  const starts = tokenStarts(reply);
  const base = baseOf(starts);
  if (reply === undefined || base < 0) return undefined;
  if (!isToken(reply, starts, base - 2, stream) || !isToken(reply, starts, base - 1, consumer))
    return undefined;
  const streamSequence = tokenNumber(reply, starts, base + 1);
  const deliverySequence = tokenNumber(reply, starts, base + 2);
  const pending = tokenNumber(reply, starts, base + 4);
  if (!Number.isSafeInteger(streamSequence + deliverySequence + pending)) return undefined;
  return { streamSequence, deliverySequence, pending };
}

/**
 * When the server stored a pushed message (ms since 1970), from the same reply subject.
 * Apart from {@link parseDelivery}: it is needed only for events without a time header.
 */
export function deliveredMessageTime(reply: string | undefined): number | undefined {
  const starts = tokenStarts(reply);
  const base = baseOf(starts);
  // Nanoseconds overflow a double's integers, but not by a millisecond.
  return reply === undefined || base < 0 ? undefined : tokenNumber(reply, starts, base + 3) / 1e6;
}

const ACK = '$JS.ACK.';
const noTokens: readonly number[] = [];

/** Where each token of a `$JS.ACK…` reply starts; none for any other subject. */
function tokenStarts(reply: string | undefined): readonly number[] {
  if (!isDelivery(reply)) return noTokens;
  // Without split(): this runs once per delivered message.
  const starts = [0];
  for (let i = reply.indexOf('.'); i !== -1; i = reply.indexOf('.', i + 1)) starts.push(i + 1);
  return starts;
}

/** The token before the stream sequence: 4, or 6 in the form with domain and account hash; -1 for neither. */
const baseOf = (starts: readonly number[]) => (starts.length === 9 ? 4 : starts.length >= 11 ? 6 : -1);

/** Whether token `n` is `expected`, compared in place: this runs once per delivered message. */
function isToken(text: string, starts: readonly number[], n: number, expected: string): boolean {
  const start = starts[n]!;
  return starts[n + 1]! - 1 - start === expected.length && text.startsWith(expected, start);
}

function tokenNumber(text: string, starts: readonly number[], n: number): number {
  return Number(text.slice(starts[n], (starts[n + 1] ?? text.length + 1) - 1));
}
