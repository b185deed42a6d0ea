import { InvalidArgumentError, InvalidTokenError } from '../errors.js';

// Characters kept as they are. Everything else, `=` included, becomes `=XX` per UTF-8
// byte, so encoding is lossless and the result is a valid subject token and KV key.
const plain = /^[A-Za-z0-9_-]$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** False when `text` holds a lone surrogate, which has no UTF-8 form (it would become U+FFFD). */
export const isWellFormed = (text: string): boolean => !loneSurrogate.test(text);
const MAX_TOKEN = 256;
// Five tokens make an event subject, and NATS protocol lines stop at 4096 bytes.
const MAX_ENCODED = 768;
const unescaped = /^[A-Za-z0-9_-]+$/;

/**
 * Encodes a value (tenant, entity type, id or event type) as one subject token.
 * Distinct values always give distinct tokens; {@link decodeToken} reverses it.
 *
 * @example encodeToken('order', 'a.b c') // 'a=2Eb=20c'
 */
export function encodeToken(part: string, value: string): string {
  if (typeof value !== 'string') throw new InvalidTokenError(part, value, 'must be a string');
  if (value.length === 0) throw new InvalidTokenError(part, value, 'must not be empty');
  if (value.length > MAX_TOKEN)
    throw new InvalidTokenError(part, value, `must be at most ${MAX_TOKEN} characters`);
  // The common case, on every append: nothing to escape.
  if (unescaped.test(value)) return value;
  // A lone surrogate has no UTF-8 form: two different ones would both become U+FFFD.
  if (!isWellFormed(value)) throw new InvalidTokenError(part, value, 'is not well-formed Unicode');
  let out = '';
  for (const ch of value) {
    if (plain.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of encoder.encode(ch)) out += '=' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  if (out.length > MAX_ENCODED)
    throw new InvalidTokenError(
      part,
      value,
      `encodes to ${out.length} characters, over ${MAX_ENCODED}: each non-ASCII character takes 6 to 12`,
    );
  return out;
}

/** Reverses {@link encodeToken}; throws {@link InvalidTokenError} on a token it could not have made. */
export function decodeToken(part: string, token: string): string {
  // Fast path: a token with no escapes is already the value (and canonical).
  if (token.length <= MAX_TOKEN && unescaped.test(token)) return token;
  if (!/^(?:[A-Za-z0-9_-]|=[0-9A-F]{2})+$/.test(token)) {
    throw new InvalidTokenError(part, token, 'is not an encoded jetsource token');
  }
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '=') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  let value: string;
  try {
    value = decoder.decode(new Uint8Array(bytes));
  } catch (cause) {
    throw new InvalidTokenError(part, token, `does not decode to UTF-8 (${String(cause)})`);
  }
  // Only the canonical form is accepted, so one value never hides behind two subjects.
  if (encodeToken(part, value) !== token)
    throw new InvalidTokenError(part, token, 'is not in canonical encoded form');
  return value;
}

/**
 * Checks a literal token that is used as is (the subject prefix, stream names): letters,
 * digits, `_` and `-` only, so it can never act as a wildcard or split a subject.
 */
export function assertPlainToken(part: string, value: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(value)) {
    throw new InvalidTokenError(part, value, 'use 1-64 letters, digits, "_" or "-"');
  }
  return value;
}

/** A KV bucket name, as JetStream allows it: letters, digits, `_` and `-`, any length. */
export function assertBucketName(value: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]+$/.test(value))
    throw new InvalidTokenError('bucket', value, 'use letters, digits, "_" or "-"');
  return value;
}

/**
 * A JetStream API prefix (`$JS.API`, `JS.API`): tokens joined by `.`, without spaces or
 * wildcards. nats.js would refuse a space only when the first request is made, and a
 * wildcard reaches no one, so a watch on it would wait for an answer forever.
 */
export function assertApiPrefix(value: string): string {
  if (typeof value !== 'string' || !/^[^\s.*>]+(?:\.[^\s.*>]+)*$/.test(value))
    throw new InvalidArgumentError(
      'apiPrefix',
      value,
      'use a subject prefix such as "$JS.API" or "JS.API", without spaces or wildcards',
    );
  return value;
}
