/** Block sizes that fit the quota: a chunk is one block plus its header and Fernet framing. */
import { tokenLength } from '../crypto/fernet.js';
import { DmpError } from '../errors.js';
import { MAX_BLOCK_SIZE, MIN_BLOCK_SIZE } from './control.js';

/** Header and Fernet framing added to each block; the quota must hold one block plus this. */
export const CHUNK_OVERHEAD = 1024;

/**
 * The block size when the user gave none: 4 MiB, or less when the quota is small, so that at
 * least four chunks can be in flight (a power of two, at least 1 KiB).
 */
export function defaultBlockSize(quota: number): number {
  let size = 4 * 1024 * 1024;
  while (size > 1024 && tokenLength(size + CHUNK_OVERHEAD) * 4 > quota) size /= 2;
  return size;
}

/** The quota must hold at least one chunk, or nothing could ever be published. */
export function checkQuotaHoldsBlock(quota: number, blockSize: number): void {
  if (quota < tokenLength(blockSize + CHUNK_OVERHEAD)) {
    throw new DmpError(
      'USAGE',
      `quota (${quota} bytes) must be larger than one block (${blockSize} bytes) plus ${CHUNK_OVERHEAD} bytes of framing`,
    );
  }
}

/**
 * A block size a receiver accepts: receivers refuse offers of blocks under 1 KiB (the smallest
 * size the original DFTP gave as an example; 1-byte blocks made one chunk file per byte) or over
 * 256 MiB.
 */
export function checkBlockSize(blockSize: number): void {
  if (!Number.isSafeInteger(blockSize) || blockSize < MIN_BLOCK_SIZE) {
    throw new DmpError('USAGE', `block size ${blockSize} is too small: give at least 1k (${MIN_BLOCK_SIZE} bytes)`);
  }
  if (blockSize > MAX_BLOCK_SIZE) {
    throw new DmpError('USAGE', `block size ${blockSize} is too large: give at most 256m`);
  }
}
