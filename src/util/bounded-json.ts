/**
 * JSON from the relay, parsed within bounds. JSON.parse itself copes with deep nesting, but
 * everything that walks its result recursively (a schema check, structuredClone, a logger,
 * JSON.stringify) overflows the stack on 10,000 nested arrays. So size and depth are checked
 * by a flat scan of the bytes before JSON.parse ever sees them.
 */
import { DmpError } from '../errors.js';

export interface JsonLimits {
  /** Largest input accepted, in bytes (UTF-8). */
  readonly maxBytes: number;
  /**
   * Deepest nesting accepted: `1` for `{}` or `[1]`, `2` for `{"a":[1]}`. Scalars at the top
   * are depth 0.
   */
  readonly maxDepth: number;
}

/** Why parseBoundedJson refused its input (`data.reason` of the PROTOCOL error). */
export type JsonRefusal = 'too-large' | 'too-deep' | 'not-utf8' | 'not-json';

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses JSON read from the relay. Fails with a PROTOCOL DmpError (`data.reason` a
 * JsonRefusal) on input over `maxBytes`, nested deeper than `maxDepth`, bytes that are not
 * UTF-8, or text that is not JSON. The result is `unknown`: check it against a schema before
 * using it (src/util/bounds.ts). A key `__proto__` comes back as an ordinary own property;
 * copying a parsed object with Object.assign would turn it into a prototype, so pick fields.
 */
export function parseBoundedJson(input: Uint8Array | string, limits: JsonLimits): unknown {
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.length;
  if (size > limits.maxBytes) {
    throw refuse('too-large', `JSON of ${size} bytes is larger than the ${limits.maxBytes} allowed`, {
      size,
      maxBytes: limits.maxBytes,
    });
  }
  const depth = nestingDepth(input, limits.maxDepth);
  if (depth > limits.maxDepth) {
    throw refuse('too-deep', `JSON nested more than ${limits.maxDepth} levels deep`, { maxDepth: limits.maxDepth });
  }
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    try {
      text = utf8.decode(input);
    } catch (error) {
      throw refuse('not-utf8', 'JSON is not valid UTF-8', {}, error);
    }
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw refuse('not-json', `not valid JSON: ${(error as Error).message}`, {}, error);
  }
}

/**
 * The deepest nesting of arrays and objects, counting brackets outside strings, and stopping
 * as soon as it passes `stopAbove`. Works on UTF-8 bytes and on UTF-16 text alike: every
 * character that matters is ASCII, and no byte of a multi-byte UTF-8 sequence is.
 * Unbalanced input is left for JSON.parse to reject.
 */
function nestingDepth(input: Uint8Array | string, stopAbove: number): number {
  const text = typeof input === 'string';
  const length = input.length;
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let index = 0; index < length; index += 1) {
    const code = text ? (input as string).charCodeAt(index) : (input as Uint8Array)[index]!;
    if (inString) {
      if (code === BACKSLASH) index += 1;
      else if (code === QUOTE) inString = false;
      continue;
    }
    if (code === QUOTE) inString = true;
    else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      depth += 1;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > stopAbove) return deepest;
      }
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) depth -= 1;
  }
  return deepest;
}

function refuse(reason: JsonRefusal, message: string, data: Record<string, unknown>, cause?: unknown): DmpError {
  return new DmpError('PROTOCOL', message, { data: { reason, ...data }, cause });
}
