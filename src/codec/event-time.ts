/**
 * Exactly what `Date.prototype.toISOString` writes for years 100–9999, with every field in
 * range: the only text the fast path below reads.
 */
const ISO_TIME =
  /^(?!00)\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/;

/**
 * Parses an event's stored time (`Es-Time`). Every replayed event has one and the general
 * date parser is slow, so the shape jetsource writes is read digit by digit; any other text
 * goes to `new Date()` unchanged (so an unparsable value is still an Invalid Date). Pure.
 */
export function parseEventTime(text: string | undefined): Date {
  if (text === undefined) return new Date(0);
  if (!ISO_TIME.test(text)) return new Date(text);
  // Fields by offset in YYYY-MM-DDTHH:mm:ss.sssZ.
  return new Date(
    Date.UTC(
      digits(text, 0, 4),
      digits(text, 5, 2) - 1,
      digits(text, 8, 2),
      digits(text, 11, 2),
      digits(text, 14, 2),
      digits(text, 17, 2),
      digits(text, 20, 3),
    ),
  );
}

function digits(text: string, from: number, count: number): number {
  let value = 0;
  for (let i = from; i < from + count; i++) value = value * 10 + text.charCodeAt(i) - 48;
  return value;
}
