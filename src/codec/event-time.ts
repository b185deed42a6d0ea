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
  const at = (from: number, count: number) => digits(text, from, count);
  return new Date(Date.UTC(at(0, 4), at(5, 2) - 1, at(8, 2), at(11, 2), at(14, 2), at(17, 2), at(20, 3)));
}

function digits(text: string, from: number, count: number): number {
  let value = 0;
  for (let i = from; i < from + count; i++) value = value * 10 + text.charCodeAt(i) - 48;
  return value;
}
