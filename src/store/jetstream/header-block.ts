/**
 * A NATS header block (`NATS/1.0[ status]\r\nKey: Value\r\n…`) read in place. Every
 * replayed or watched event has one, and looking up the few headers an envelope needs
 * in the text is far cheaper than building a map of all of them first. Pure.
 */
export class HeaderBlock {
  constructor(private readonly text: string) {}

  /** The first value of `name` (case-sensitive, as written), trimmed; undefined when absent. */
  get(name: string): string | undefined {
    const { text } = this;
    // Every header line follows a CRLF, so the status line can never match.
    const at = text.indexOf(needle(name));
    if (at === -1) return undefined;
    let start = at + name.length + 3;
    let end = text.indexOf('\r\n', start);
    if (end === -1) end = text.length;
    while (start < end && isBlank(text.charCodeAt(start))) start++;
    while (end > start && isBlank(text.charCodeAt(end - 1))) end--;
    return text.slice(start, end);
  }

  /** Names of the headers, each once, in order; only those starting with `prefix` when given. */
  names(prefix = ''): string[] {
    const { text } = this;
    if (prefix && !text.includes(`\r\n${prefix}`)) return [];
    const names: string[] = [];
    let start = text.indexOf('\r\n') + 2;
    if (start < 2) return names;
    while (start < text.length) {
      let end = text.indexOf('\r\n', start);
      if (end === -1) end = text.length;
      const colon = text.indexOf(':', start);
      if (colon > start && colon < end) {
        const name = text.slice(start, colon);
        if (name.startsWith(prefix) && !names.includes(name)) names.push(name);
      }
      start = end + 2;
    }
    return names;
  }
}

/** `\r\n<name>:` per header name, built once: the same few names are looked up per event. */
const needles = new Map<string, string>();
function needle(name: string): string {
  let found = needles.get(name);
  if (found === undefined) {
    found = `\r\n${name}:`;
    if (needles.size >= 256) needles.clear();
    needles.set(name, found);
  }
  return found;
}

const isBlank = (code: number): boolean => code === 32 || code === 9;
