/** `YYYY-MM-DDTHH:mm:ss.sssZ`: what `Date.prototype.toISOString` writes for years 0–9999. */
const ISO_SHAPE = '0000-00-00T00:00:00.000Z';

/**
 * Parses an event's stored time (`Es-Time`). Every replayed event has one, and the
 * general date parser is costly, so the exact shape jetsource writes is read digit by
 * digit; anything else goes to `new Date()` unchanged (an unparsable value stays an
 * Invalid Date, as before). Pure.
 */
export function parseEventTime(text: string | undefined): Date {
  if (text === undefined) return new Date(0);
  if (text.length !== ISO_SHAPE.length) return new Date(text);
  for (let i = 0; i < ISO_SHAPE.length; i++) {
    const code = text.charCodeAt(i);
    const expected = ISO_SHAPE.charCodeAt(i);
    if (expected === 48 ? code < 48 || code > 57 : code !== expected) return new Date(text);
  }
  // Date.UTC maps years 0–99 to 1900–1999; the ISO text means them literally.
  if (text.charCodeAt(0) === 48 && text.charCodeAt(1) === 48) return new Date(text);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hours = digits(text, 11, 2);
  const minutes = digits(text, 14, 2);
  const seconds = digits(text, 17, 2);
  // Out-of-range fields go to the general parser, which decides as it always has.
  if (month < 1 || month > 12 || day < 1 || day > 31 || hours > 23 || minutes > 59 || seconds > 59) {
    return new Date(text);
  }
  return new Date(Date.UTC(digits(text, 0, 4), month - 1, day, hours, minutes, seconds, digits(text, 20, 3)));
}

function digits(text: string, at: number, count: number): number {
  let value = 0;
  for (let i = at; i < at + count; i++) value = value * 10 + text.charCodeAt(i) - 48;
  return value;
}
