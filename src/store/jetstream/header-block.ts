/**
 * A NATS header block (`NATS/1.0[ status]\r\nKey: Value\r\n…`) read in place. Every
 * replayed or watched event has one, and looking up the few headers an envelope needs
 * in the text is far cheaper than building a map of all of them first. Pure.
 */
export class HeaderBlock {
  constructor(private readonly text: string) {}

  /** The first value of `name` (case-sensitive, as written), trimmed; undefined when absent. */
  get(name: string): string | undefined {
    return this.valueAt(this.text.indexOf(needle(name)), name);
  }

  /**
   * The last value of `name`. nats-server appends what it adds to a reply (a direct get's
   * `Nats-Sequence`, `Nats-Subject`, `Nats-Num-Pending`) after the stored headers, so a
   * stored message carrying the same names cannot pass for the server's.
   */
  last(name: string): string | undefined {
    return this.valueAt(this.text.lastIndexOf(needle(name)), name);
  }

  private valueAt(at: number, name: string): string | undefined {
    const { text } = this;
    // Every header line follows a CRLF, so the status line can never match.
    if (at === -1) return undefined;
    const start = at + name.length + 3;
    const end = text.indexOf('\r\n', start);
    return text.slice(start, end === -1 ? undefined : end).trim();
  }

  /** Names of the headers in order (a repeated one each time); only those starting with `prefix` when given. */
  names(prefix = ''): string[] {
    // Most blocks have no header with the prefix (no user metadata): skip the split.
    if (!this.text.includes(`\r\n${prefix}`)) return [];
    const names: string[] = [];
    for (const line of this.text.split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0 && line.startsWith(prefix)) names.push(line.slice(0, colon));
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
