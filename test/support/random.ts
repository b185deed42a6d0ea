// Seeded randomness for property-style tests: no dependency, and a failure can be replayed
// from the seed printed in the test name.

/** mulberry32: a tiny deterministic PRNG returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Rand = () => number;

/** An integer in [min, max]. */
export const int = (rand: Rand, min: number, max: number): number =>
  min + Math.floor(rand() * (max - min + 1));

/** One element of a non-empty array. */
export const pick = <T>(rand: Rand, items: readonly T[]): T => items[int(rand, 0, items.length - 1)]!;

const PLAIN = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
const PUNCTUATION = ` .*>=\t\n\r\v\f/\\%'"\`!?#$&()+,:;<@[]^{|}~`;
const SPECIAL = [
  0x00, // NUL
  0x7f, // DEL
  0xa0, // no-break space
  0xe9, // é (precomposed)
  0x2028, // line separator
  0x200d, // zero-width joiner
  0xfeff, // BOM / zero-width no-break space (never first, see wellFormed below)
  0xfffd, // replacement character
  0xffff, // noncharacter, still valid UTF-8
  0x10ffff, // highest code point
];

/** One code point from a mix of classes that stress an encoder. Never a lone surrogate. */
function codePoint(rand: Rand): number {
  switch (int(rand, 0, 8)) {
    case 0:
    case 1:
      return PLAIN.charCodeAt(int(rand, 0, PLAIN.length - 1));
    case 2:
      return PUNCTUATION.charCodeAt(int(rand, 0, PUNCTUATION.length - 1));
    case 3:
      return int(rand, 0x00, 0x7f); // any ASCII, controls included
    case 4:
      return int(rand, 0x300, 0x36f); // combining diacritical marks
    case 5: {
      const cp = int(rand, 0x80, 0xfffd); // BMP, surrogate range skipped
      return cp >= 0xd800 && cp <= 0xdfff ? cp + 0x800 : cp;
    }
    case 6:
      return int(rand, 0x1f300, 0x1faff); // emoji blocks (astral)
    case 7:
      return int(rand, 0x10000, 0x10ffff); // any astral
    default:
      return pick(rand, SPECIAL);
  }
}

/**
 * A well-formed string of 1..maxUnits UTF-16 code units (astral characters count two).
 * A leading U+FEFF is replaced, and lone surrogates never occur: both are known encodeToken
 * round-trip failures, reported separately rather than hidden in a flaky property.
 */
export function randomString(rand: Rand, maxUnits = 40): string {
  const target = int(rand, 1, maxUnits);
  let out = '';
  while (out.length < target) {
    const ch = String.fromCodePoint(codePoint(rand));
    if (out.length + ch.length > target) break;
    out += out.length === 0 && ch === '\uFEFF' ? 'x' : ch;
  }
  return out.length === 0 ? 'x' : out;
}

/** A string of 1..max characters drawn from an alphabet. */
export function fromAlphabet(rand: Rand, alphabet: string, max: number): string {
  // By code point: an emoji in the alphabet is one character, never half a surrogate pair.
  const chars = Array.from(alphabet);
  let out = '';
  const n = int(rand, 1, max);
  for (let i = 0; i < n; i++) out += chars[int(rand, 0, chars.length - 1)];
  return out;
}
