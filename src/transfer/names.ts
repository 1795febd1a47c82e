/**
 * File names of DFTP inside `<relay>/<writer>/<reader>/` (docs/PROTOCOL.md):
 *
 *   offer-<tid>.dmp             the sender's offer of one file (Fernet text, JSON)
 *   chunk-<tid>-<index>.dfc     one block of the file (raw Fernet token bytes), index 8 digits
 *   status-<tid>.dmp            the receiver's progress report for that transfer (Fernet text)
 *
 * `tid` is 16 lowercase hex digits chosen by the sender.
 */
import type { FileKind } from '../node/envelope.js';

const OFFER = /^offer-([0-9a-f]{16})\.dmp$/;
const CHUNK_FILE = /^chunk-([0-9a-f]{16})-(\d{8})\.dfc$/;
const STATUS = /^status-([0-9a-f]{16})\.dmp$/;

/** Chunks are raw tokens, not envelopes: a kind of file, with no body to parse. */
export const CHUNK: FileKind = { type: 'chunk', files: CHUNK_FILE };
export const TID_PATTERN = /^[0-9a-f]{16}$/;
export const MAX_CHUNKS = 99_999_999;

export const offerName = (tid: string): string => `offer-${tid}.dmp`;
export const statusName = (tid: string): string => `status-${tid}.dmp`;
export const chunkName = (tid: string, index: number): string => `chunk-${tid}-${String(index).padStart(8, '0')}.dfc`;

export function parseOfferName(name: string): string | undefined {
  return OFFER.exec(name)?.[1];
}

export function parseStatusName(name: string): string | undefined {
  return STATUS.exec(name)?.[1];
}

export function parseChunkName(name: string): { tid: string; index: number } | undefined {
  const match = CHUNK_FILE.exec(name);
  return match ? { tid: match[1] ?? '', index: Number(match[2]) } : undefined;
}
