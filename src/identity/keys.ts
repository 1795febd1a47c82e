/**
 * A peer's identity keys: an Ed25519 pair that signs, an X25519 pair that agrees on pair keys.
 * Two pairs, not one converted: Node has no Ed25519 -> X25519 conversion, and it silently accepts
 * Ed25519 bytes labelled X25519 (wrong maths, no error).
 *
 * Kept in DMP_HOME/identity.json, mode 600. Raw 32-byte keys travel as base64url (no padding);
 * KeyObjects are made through JWK, since Node 20 cannot import raw keys.
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { DmpError } from '../errors.js';
import { readJsonFile, writeJsonFile } from '../local/files.js';

export interface KeyPair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
  /** The raw public key, base64url. */
  readonly public: string;
}

export interface IdentityKeys {
  readonly sign: KeyPair;
  readonly exchange: KeyPair;
  /** Keys this identity had before its last rotation: files sealed with them still open. */
  readonly previous?: { readonly sign: KeyPair; readonly exchange: KeyPair };
  /** Grows by one at every rotation. */
  readonly serial: number;
  readonly createdAt: number;
}

type Curve = 'Ed25519' | 'X25519';

interface StoredPair {
  x: string;
  d: string;
}

interface StoredKeys {
  v: 1;
  sign: StoredPair;
  exchange: StoredPair;
  previous?: { sign: StoredPair; exchange: StoredPair };
  serial: number;
  createdAt: number;
}

const RAW_KEY = /^[A-Za-z0-9_-]{43}$/;

export function generatePair(curve: Curve): KeyPair {
  const { publicKey, privateKey } =
    curve === 'Ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('x25519');
  return { publicKey, privateKey, public: publicKey.export({ format: 'jwk' }).x ?? '' };
}

export function generateIdentityKeys(now: number): IdentityKeys {
  return { sign: generatePair('Ed25519'), exchange: generatePair('X25519'), serial: 1, createdAt: now };
}

/** New key pairs for the same identity; the old ones stay as `previous`. */
export function rotateIdentityKeys(keys: IdentityKeys, now: number): IdentityKeys {
  return {
    sign: generatePair('Ed25519'),
    exchange: generatePair('X25519'),
    previous: { sign: keys.sign, exchange: keys.exchange },
    serial: keys.serial + 1,
    createdAt: now,
  };
}

/** A public key from its raw form; PROTOCOL DmpError when it is not 32 bytes of base64url. */
export function publicKeyOf(curve: Curve, raw: string): KeyObject {
  if (typeof raw !== 'string' || !RAW_KEY.test(raw)) throw new DmpError('PROTOCOL', `${curve} public key is malformed`);
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: curve, x: raw }, format: 'jwk' });
  } catch (cause) {
    throw new DmpError('PROTOCOL', `${curve} public key is malformed`, { cause });
  }
}

function pairOf(curve: Curve, stored: StoredPair): KeyPair {
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: curve, x: stored.x, d: stored.d }, format: 'jwk' });
  return { privateKey, publicKey: createPublicKey(privateKey), public: stored.x };
}

function storedOf(pair: KeyPair): StoredPair {
  return { x: pair.public, d: pair.privateKey.export({ format: 'jwk' }).d ?? '' };
}

export async function loadIdentityKeys(path: string): Promise<IdentityKeys | undefined> {
  const stored = await readJsonFile<StoredKeys>(path);
  if (stored === undefined) return undefined;
  try {
    return {
      sign: pairOf('Ed25519', stored.sign),
      exchange: pairOf('X25519', stored.exchange),
      ...(stored.previous
        ? {
            previous: {
              sign: pairOf('Ed25519', stored.previous.sign),
              exchange: pairOf('X25519', stored.previous.exchange),
            },
          }
        : {}),
      serial: stored.serial,
      createdAt: stored.createdAt,
    };
  } catch (cause) {
    // Never quote the file: it holds private keys.
    throw new DmpError('CONFIG', `identity keys in ${path} are damaged`, { cause });
  }
}

/** Written atomically, mode 600: the file holds private keys. */
export async function saveIdentityKeys(path: string, keys: IdentityKeys): Promise<void> {
  const stored: StoredKeys = {
    v: 1,
    sign: storedOf(keys.sign),
    exchange: storedOf(keys.exchange),
    ...(keys.previous
      ? { previous: { sign: storedOf(keys.previous.sign), exchange: storedOf(keys.previous.exchange) } }
      : {}),
    serial: keys.serial,
    createdAt: keys.createdAt,
  };
  await writeJsonFile(path, stored, 0o600);
}

export function signBytes(pair: KeyPair, data: Buffer): string {
  return sign(null, data, pair.privateKey).toString('base64url');
}

export function verifyBytes(publicKey: KeyObject, data: Buffer, signature: unknown): boolean {
  if (typeof signature !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(signature)) return false;
  return verify(null, data, publicKey, Buffer.from(signature, 'base64url'));
}

/** The label bound into every pair key (docs/PROTOCOL.md, "Pair keys"). */
export const PAIR_KEY_INFO = 'dmp pair key v2';

/**
 * The Fernet key of the pair (a, b): X25519 between one side's private key and the other's
 * public key, then HKDF-SHA256 with both public keys in the salt, ordered so both sides agree,
 * and the label and both ids as info. Returns the standard Fernet text form (url-safe base64
 * WITH padding: Python's Fernet rejects a key without it).
 */
export function derivePairKey(own: { id: string; exchange: KeyPair }, other: { id: string; exchange: string }): string {
  const shared = diffieHellman({
    privateKey: own.exchange.privateKey,
    publicKey: publicKeyOf('X25519', other.exchange),
  });
  // age's rule: an all-zero shared secret means a degenerate public key.
  if (shared.every((byte) => byte === 0)) throw new DmpError('PROTOCOL', `${other.id}'s exchange key is degenerate`);
  const sides = [
    { id: own.id, key: Buffer.from(own.exchange.public, 'base64url') },
    { id: other.id, key: Buffer.from(other.exchange, 'base64url') },
  ].sort((a, b) => Buffer.compare(a.key, b.key));
  const salt = Buffer.concat(sides.map((side) => side.key));
  const ids = [own.id, other.id].sort();
  const info = Buffer.from(`${PAIR_KEY_INFO}\n${ids[0]}\n${ids[1]}`, 'utf8');
  return Buffer.from(hkdfSync('sha256', shared, salt, info, 32))
    .toString('base64')
    .replaceAll('+', '-')
    .replaceAll('/', '_');
}
