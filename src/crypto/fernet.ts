/**
 * Fernet (https://github.com/fernet/spec/blob/master/Spec.md) on node:crypto.
 *
 * The npm package `fernet` is the design's named dependency, but it is ~80x slower than
 * node:crypto, handles text only (a Buffer throws, binary plaintext from Python fails as
 * malformed UTF-8), rejects tokens older than 60 s by default and pulls crypto-js 3.1.x. This
 * module implements the spec on node:crypto with Buffers in and out; the `fernet` package and
 * Python's `cryptography` serve as interop oracles in the tests.
 *
 *   token = 0x80 | timestamp (u64 BE seconds) | IV (16) | AES-128-CBC(PKCS7) ciphertext | HMAC (32)
 *   HMAC-SHA256 over everything before it, keyed with the first 16 key bytes;
 *   AES keyed with the last 16 key bytes.
 *
 * The text form is url-safe base64 with padding, exactly what Python's Fernet produces. DFTP
 * chunks store the same token as raw bytes, which saves the 33% that base64 would add.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { DmpError } from '../errors.js';

const VERSION = 0x80;
const HEADER_LENGTH = 1 + 8 + 16;
const HMAC_LENGTH = 32;
const BLOCK = 16;
/**
 * Bytes per cipher call. OpenSSL's output for each call is a new Buffer: small ones are freed
 * by a young-generation collection, where a 4 MiB one would linger and swell the resident set.
 */
const SLICE = 64 * 1024;
/** Version, timestamp, IV, one cipher block (PKCS7 always pads) and the HMAC. */
export const MIN_TOKEN_LENGTH = HEADER_LENGTH + BLOCK + HMAC_LENGTH;
/** Python's cryptography accepts tokens stamped up to 60 s in the future when a TTL is given. */
const MAX_CLOCK_SKEW_SECONDS = 60;

export interface FernetKey {
  readonly signingKey: Buffer;
  readonly encryptionKey: Buffer;
  /** The key in its text form, for printing and config files. */
  readonly text: string;
}

/**
 * 32 random bytes, url-safe base64: the form of Python's `Fernet.generate_key()`. Keys that
 * would start with '-' are drawn again: any key works, but one that looks like an option is a
 * trap on every command line it is pasted into.
 */
export function generateKey(): string {
  for (;;) {
    const key = `${randomBytes(32).toString('base64url')}=`;
    if (!key.startsWith('-')) return key;
  }
}

export function parseKey(text: string): FernetKey {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9_-]{43}=?$/.test(trimmed)) {
    throw new DmpError('BAD_KEY', 'the key is not a Fernet key (32 bytes of url-safe base64, 44 characters)');
  }
  const bytes = Buffer.from(trimmed, 'base64url');
  if (bytes.length !== 32) {
    throw new DmpError('BAD_KEY', 'the key is not a Fernet key (32 bytes of url-safe base64, 44 characters)');
  }
  return {
    signingKey: bytes.subarray(0, 16),
    encryptionKey: bytes.subarray(16),
    text: bytes.toString('base64url') + '=',
  };
}

/** Size of the raw token that encrypts `plaintextLength` bytes. */
export function tokenLength(plaintextLength: number): number {
  return HEADER_LENGTH + (Math.floor(plaintextLength / BLOCK) + 1) * BLOCK + HMAC_LENGTH;
}

export interface EncryptOptions {
  /** Seconds since the epoch to stamp into the token (default: now). */
  timestamp?: number;
  /** A fixed IV, for the spec's test vectors only. */
  iv?: Buffer;
  /**
   * Called after each slice of at most SLICE bytes, whose output OpenSSL gave as a new buffer:
   * a caller that collects garbage now and then keeps those buffers from piling up.
   */
  onSlice?: () => void;
}

/**
 * Encrypts the concatenation of `parts` into a raw token: the parts are laid out where
 * encryptInPlace wants the plaintext, in a buffer the size of the token, and sealed over it.
 */
export function encrypt(
  key: FernetKey,
  parts: Uint8Array | readonly Uint8Array[],
  options: EncryptOptions = {},
): Buffer {
  const pieces = parts instanceof Uint8Array ? [parts] : parts;
  let plaintextLength = 0;
  for (const piece of pieces) plaintextLength += piece.length;
  const buffer = Buffer.allocUnsafe(tokenLength(plaintextLength));
  let end = HEADER_LENGTH;
  for (const piece of pieces) {
    buffer.set(piece, end);
    end += piece.length;
  }
  return encryptInPlace(key, buffer, HEADER_LENGTH, end, options);
}

/**
 * Encrypts `buffer[start, end)` into a raw token written over the same buffer from offset 0:
 * the plaintext is destroyed, and the token is returned as a view of `buffer`, so no second
 * buffer the size of the plaintext is needed. Safe because CBC output never runs ahead of its
 * input: the ciphertext starts at offset 25 and the plaintext at `start` >= 25. The buffer
 * must hold the token, `tokenLength(end - start)` bytes from offset 0.
 */
export function encryptInPlace(
  key: FernetKey,
  buffer: Buffer,
  start: number,
  end: number,
  options: EncryptOptions = {},
): Buffer {
  const length = tokenLength(end - start);
  if (start < HEADER_LENGTH || end < start || end > buffer.length || length > buffer.length) {
    throw new RangeError(
      `encryptInPlace: plaintext [${start}, ${end}) and a ${length}-byte token do not fit a ${buffer.length}-byte buffer from offset ${HEADER_LENGTH}`,
    );
  }
  const iv = options.iv ?? randomBytes(BLOCK);
  const cipher = createCipheriv('aes-128-cbc', key.encryptionKey, iv);
  let offset = HEADER_LENGTH;
  for (let at = start; at < end; at += SLICE) {
    // The slice is consumed before its output is copied, and the output ends at or before the
    // next unread plaintext byte (offset - 25 <= at - start).
    offset += cipher.update(buffer.subarray(at, Math.min(at + SLICE, end))).copy(buffer, offset);
    options.onSlice?.();
  }
  offset += cipher.final().copy(buffer, offset);
  buffer[0] = VERSION;
  buffer.writeBigUInt64BE(BigInt(options.timestamp ?? Math.floor(Date.now() / 1000)), 1);
  iv.copy(buffer, 9);
  const hmac = createHmac('sha256', key.signingKey).update(buffer.subarray(0, offset)).digest();
  hmac.copy(buffer, offset);
  return buffer.subarray(0, offset + HMAC_LENGTH);
}

export interface DecryptOptions {
  /** Reject tokens older than this many seconds (Python's `ttl`); by default age is not checked. */
  ttlSeconds?: number;
  /** Seconds since the epoch to compare against (default: now). */
  now?: number;
  /**
   * Decrypt into the token's own buffer (the token is destroyed; the plaintext is a view of
   * it). Safe because CBC output never runs ahead of the input it was made from.
   */
  inPlace?: boolean;
  /** As for encryption (EncryptOptions.onSlice). */
  onSlice?: () => void;
}

/** Verifies and decrypts a raw token. Throws an AUTH DmpError on any failure. */
export function decrypt(key: FernetKey, token: Buffer, options: DecryptOptions = {}): Buffer {
  if (token.length < MIN_TOKEN_LENGTH || (token.length - HEADER_LENGTH - HMAC_LENGTH) % BLOCK !== 0) {
    throw new DmpError('AUTH', 'token has an impossible length (truncated?)', { data: { length: token.length } });
  }
  if (token[0] !== VERSION) throw new DmpError('AUTH', 'token has an unknown version byte');
  const macOffset = token.length - HMAC_LENGTH;
  const expected = createHmac('sha256', key.signingKey).update(token.subarray(0, macOffset)).digest();
  if (!timingSafeEqual(expected, token.subarray(macOffset))) {
    // data.check says which check failed: only 'mac' can mean another key; the others are damage.
    throw new DmpError('AUTH', 'token failed authentication (wrong key, or tampered)', { data: { check: 'mac' } });
  }
  if (options.ttlSeconds !== undefined) {
    const now = options.now ?? Math.floor(Date.now() / 1000);
    const stamped = Number(token.readBigUInt64BE(1));
    if (stamped + options.ttlSeconds < now) throw new DmpError('AUTH', 'token has expired');
    if (now + MAX_CLOCK_SKEW_SECONDS < stamped) throw new DmpError('AUTH', 'token is stamped in the future');
  }
  const decipher = createDecipheriv('aes-128-cbc', key.encryptionKey, token.subarray(9, HEADER_LENGTH));
  const output = options.inPlace ? token : Buffer.allocUnsafe(macOffset - HEADER_LENGTH);
  try {
    let written = 0;
    for (let at = HEADER_LENGTH; at < macOffset; at += SLICE) {
      written += decipher.update(token.subarray(at, Math.min(at + SLICE, macOffset))).copy(output, written);
      options.onSlice?.();
    }
    written += decipher.final().copy(output, written);
    return output.subarray(0, written);
  } catch (cause) {
    // Only reachable when the HMAC matched but the padding is wrong: a token made with our key
    // by a broken encoder.
    throw new DmpError('AUTH', 'token has invalid padding', { cause });
  }
}

/** The token's text form: url-safe base64 with padding, as Python writes it. */
export function encodeToken(token: Buffer): string {
  return token.toString('base64').replaceAll('+', '-').replaceAll('/', '_');
}

/** Parses the text form. Accepts surrounding white space (a trailing newline from a shell). */
export function decodeToken(text: string | Buffer): Buffer {
  const trimmed = (typeof text === 'string' ? text : text.toString('latin1')).trim();
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(trimmed)) {
    throw new DmpError('AUTH', 'token is not url-safe base64 (corrupted?)');
  }
  return Buffer.from(trimmed, 'base64url');
}

export function encryptText(key: FernetKey, plaintext: Uint8Array, options: EncryptOptions = {}): string {
  return encodeToken(encrypt(key, plaintext, options));
}

export function decryptText(key: FernetKey, token: string | Buffer, options: DecryptOptions = {}): Buffer {
  return decrypt(key, decodeToken(token), options);
}
