/**
 * The identity document: what `<relay>/<id>/identity.dmp` holds, sealed under the relay key
 * (the relay key is the membership secret: who may be in this relay at all). Pure codec: bytes
 * of plaintext in, a verified document out, a PROTOCOL DmpError on anything else.
 *
 *   {"v":2,"id":"alice","sign":"<Ed25519, b64url>","exchange":"<X25519, b64url>",
 *    "serial":1,"createdAt":1795290785123,"sig":"<Ed25519 over the signed bytes>",
 *    "previous":{"sign":"...","exchange":"...","sig":"<the old sign key over the same bytes>"}}
 *
 * MUST rules (docs/PROTOCOL.md, "Identities"): the document is signed by its own sign key over
 * IDENTITY_LABEL + the canonical body; `id` MUST equal the folder it was found in; a rotated
 * identity carries `previous`, signed by the previous sign key over ROTATION_LABEL + the same
 * body, so that peers who pinned the old key accept the new one.
 */
import { createHash } from 'node:crypto';
import { DmpError } from '../errors.js';
import { isPeerId, type PeerId } from '../util/peer-id.js';
import { type IdentityKeys, publicKeyOf, signBytes, verifyBytes } from './keys.js';

export const IDENTITY_FILE = 'identity.dmp';
export const IDENTITY_VERSION = 2;
const IDENTITY_LABEL = 'dmp identity v2\n';
const ROTATION_LABEL = 'dmp rotation v2\n';
/** An identity file is small; anything larger is refused unread. */
export const MAX_IDENTITY_FILE = 16 * 1024;

export interface PublicIdentity {
  id: PeerId;
  /** Ed25519 public key, base64url. */
  sign: string;
  /** X25519 public key, base64url. */
  exchange: string;
  serial: number;
  createdAt: number;
  /** The keys this identity had before its last rotation. */
  previous?: { sign: string; exchange: string };
}

/** The bytes both signatures cover: the body with its fields in a fixed order. */
function signedBytes(label: string, identity: PublicIdentity): Buffer {
  const body = {
    v: IDENTITY_VERSION,
    id: identity.id,
    sign: identity.sign,
    exchange: identity.exchange,
    serial: identity.serial,
    createdAt: identity.createdAt,
    ...(identity.previous ? { previous: { sign: identity.previous.sign, exchange: identity.previous.exchange } } : {}),
  };
  return Buffer.from(label + JSON.stringify(body), 'utf8');
}

export function publicIdentity(id: PeerId, keys: IdentityKeys): PublicIdentity {
  return {
    id,
    sign: keys.sign.public,
    exchange: keys.exchange.public,
    serial: keys.serial,
    createdAt: keys.createdAt,
    ...(keys.previous
      ? { previous: { sign: keys.previous.sign.public, exchange: keys.previous.exchange.public } }
      : {}),
  };
}

/** The plaintext of this peer's identity file, signed (and countersigned by the previous key). */
export function encodeIdentity(id: PeerId, keys: IdentityKeys): Buffer {
  const identity = publicIdentity(id, keys);
  const document = {
    v: IDENTITY_VERSION,
    id,
    sign: identity.sign,
    exchange: identity.exchange,
    serial: identity.serial,
    createdAt: identity.createdAt,
    sig: signBytes(keys.sign, signedBytes(IDENTITY_LABEL, identity)),
    ...(keys.previous && identity.previous
      ? {
          previous: {
            ...identity.previous,
            sig: signBytes(keys.previous.sign, signedBytes(ROTATION_LABEL, identity)),
          },
        }
      : {}),
  };
  return Buffer.from(JSON.stringify(document), 'utf8');
}

/** Parses and verifies an identity document found in `<relay>/<owner>/`. */
export function decodeIdentity(plaintext: Buffer, owner: PeerId): PublicIdentity {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(plaintext.toString('utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new DmpError('PROTOCOL', 'identity is not JSON', { cause });
  }
  if (typeof value !== 'object' || value === null || value.v !== IDENTITY_VERSION) {
    throw new DmpError('PROTOCOL', 'identity is not a version 2 identity document');
  }
  const previous = value.previous as Record<string, unknown> | undefined;
  if (
    !isPeerId(value.id) ||
    typeof value.sign !== 'string' ||
    typeof value.exchange !== 'string' ||
    !Number.isSafeInteger(value.serial) ||
    (value.serial as number) < 1 ||
    typeof value.createdAt !== 'number' ||
    !Number.isFinite(value.createdAt) ||
    (previous !== undefined &&
      (typeof previous !== 'object' ||
        previous === null ||
        typeof previous.sign !== 'string' ||
        typeof previous.exchange !== 'string'))
  ) {
    throw new DmpError('PROTOCOL', 'identity is malformed');
  }
  if (value.id !== owner) {
    throw new DmpError('PROTOCOL', `identity says ${value.id} but was found in ${owner}'s folder`);
  }
  const identity: PublicIdentity = {
    id: value.id,
    sign: value.sign,
    exchange: value.exchange,
    serial: value.serial as number,
    createdAt: value.createdAt,
    ...(previous ? { previous: { sign: previous.sign as string, exchange: previous.exchange as string } } : {}),
  };
  publicKeyOf('X25519', identity.exchange);
  if (!verifyBytes(publicKeyOf('Ed25519', identity.sign), signedBytes(IDENTITY_LABEL, identity), value.sig)) {
    throw new DmpError('PROTOCOL', `${owner}'s identity is not signed by its own key`);
  }
  if (
    identity.previous &&
    !verifyBytes(publicKeyOf('Ed25519', identity.previous.sign), signedBytes(ROTATION_LABEL, identity), previous?.sig)
  ) {
    throw new DmpError('PROTOCOL', `${owner}'s identity names a previous key that did not sign it`);
  }
  return identity;
}

/**
 * The fingerprint people compare, by voice or side by side: SHA-256 over the label and both
 * public keys, shown as six groups of five digits (as Signal shows safety numbers).
 */
export function fingerprint(identity: Pick<PublicIdentity, 'sign' | 'exchange'>): string {
  const digest = createHash('sha256')
    .update('dmp fingerprint v2\n')
    .update(Buffer.from(identity.sign, 'base64url'))
    .update(Buffer.from(identity.exchange, 'base64url'))
    .digest();
  const groups: string[] = [];
  for (let group = 0; group < 6; group += 1) {
    // Five bytes (40 bits) per group, reduced to five digits: the bias is negligible.
    const value = digest.readUIntBE(group * 5, 5) % 100_000;
    groups.push(String(value).padStart(5, '0'));
  }
  return groups.join(' ');
}

/** A fingerprint as typed: digits only, any spacing. */
export function normalizeFingerprint(text: string): string | undefined {
  const digits = text.replace(/[\s-]/g, '');
  if (!/^\d{30}$/.test(digits)) return undefined;
  return digits.replace(/(\d{5})(?=\d)/g, '$1 ');
}
