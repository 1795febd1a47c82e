/**
 * Signed documents for files many peers read (presence now, broadcasts next): a pair key cannot
 * say who wrote a file every member can open, so the author signs it with its identity's
 * Ed25519 key, inside the sealed plaintext, and readers check it against the key they pinned.
 *
 * The signature covers a label naming the kind of document, then the body as canonical JSON
 * (keys sorted, no spaces), so a signature for one kind never passes for another.
 */
import type { KeyObject } from 'node:crypto';
import { type KeyPair, signBytes, verifyBytes } from './keys.js';

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function signedBytes(label: string, body: Record<string, unknown>): Buffer {
  return Buffer.from(`${label}\n${canonical(body)}`, 'utf8');
}

/** The body with its signature added as `sig`. */
export function signDocument<B extends Record<string, unknown>>(
  label: string,
  body: B,
  key: KeyPair,
): B & { sig: string } {
  return { ...body, sig: signBytes(key, signedBytes(label, body)) };
}

/** True when `document.sig` is the signature by `signer` of the rest of the document. */
export function verifyDocument(label: string, document: Record<string, unknown>, signer: KeyObject): boolean {
  const { sig, ...body } = document;
  return verifyBytes(signer, signedBytes(label, body), sig);
}
