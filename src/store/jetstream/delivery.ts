/** Delivery facts a JetStream push message carries in its `$JS.ACK…` reply subject. */
export interface Delivery {
  readonly streamSequence: number;
  readonly deliverySequence: number;
  /** Messages still pending for the consumer after this one. */
  readonly pending: number;
}

/** Whether a pushed message is a stored message (its reply is a `$JS.ACK…` subject), not a status or flow control. */
export const isDelivery = (reply: string | undefined): boolean => reply?.startsWith(ACK) === true;

/**
 * Whether a flow-control subject (`$JS.FC.[<domain>.<hash>.]<stream>.<consumer>.<random>`,
 * a request's reply or a stalled heartbeat's header) is of this stream and consumer. Pure.
 */
export function isFlowControlOf(subject: string, stream: string, consumer: string | undefined): boolean {
  return (
    consumer !== undefined &&
    subject.startsWith(FC) &&
    subject.endsWith(`.${stream}.${consumer}`, subject.lastIndexOf('.'))
  );
}

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
  const base = tokenize(reply);
  if (base < 0) return undefined;
  const text = reply!;
  if (!isToken(text, base - 2, stream) || !isToken(text, base - 1, consumer)) return undefined;
  const streamSequence = tokenNumber(text, base + 1);
  const deliverySequence = tokenNumber(text, base + 2);
  const pending = tokenNumber(text, base + 4);
  const whole = Number.isSafeInteger;
  if (!whole(streamSequence) || !whole(deliverySequence) || !whole(pending)) return undefined;
  return { streamSequence, deliverySequence, pending };
}

/**
 * When the server stored a pushed message (ms since 1970), from the same reply subject.
 * Apart from {@link parseDelivery}: it is needed only for events without a time header.
 */
export function deliveredMessageTime(reply: string | undefined): number | undefined {
  const base = tokenize(reply);
  // Nanoseconds overflow a double's integers, but not by a millisecond.
  return base < 0 ? undefined : tokenNumber(reply!, base + 3) / 1e6;
}

const ACK = '$JS.ACK.';
const FC = '$JS.FC.';

/**
 * Where each token of the reply being parsed starts, and one past its end: reused, as
 * parsing runs once per delivered message and never across an await. Tokens past the
 * pending count are not needed.
 */
const starts = new Int32Array(12);

/**
 * Records where the reply's tokens start; returns the token before the stream sequence: 4,
 * or 6 in the form with domain and account hash (11 tokens or more), or -1 for neither.
 */
function tokenize(reply: string | undefined): number {
  if (reply === undefined || !isDelivery(reply)) return -1;
  let count = 1;
  for (let i = reply.indexOf('.'); i !== -1; i = reply.indexOf('.', i + 1)) {
    if (count < starts.length) starts[count] = i + 1;
    count++;
  }
  if (count < starts.length) starts[count] = reply.length + 1;
  return count === 9 ? 4 : count >= 11 ? 6 : -1;
}

/** Whether token `n` is `expected`, compared in place. */
function isToken(text: string, n: number, expected: string): boolean {
  const start = starts[n]!;
  return starts[n + 1]! - 1 - start === expected.length && text.startsWith(expected, start);
}

/** Token `n` as a whole number, read in place; NaN unless it is all digits. */
function tokenNumber(text: string, n: number): number {
  const start = starts[n]!;
  const end = starts[n + 1]! - 1;
  let value = end > start ? 0 : NaN;
  for (let i = start; i < end; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return NaN;
    value = value * 10 + digit;
  }
  return value;
}
