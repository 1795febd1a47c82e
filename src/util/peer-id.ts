import { DmpError } from '../errors.js';

/** A peer id: 1 to 32 of a-z, 0-9 and '-'. Portable on every file system and sync service. */
export type PeerId = string & { readonly __peerId: unique symbol };

export const PEER_ID_PATTERN = /^[a-z0-9-]{1,32}$/;

export function isPeerId(value: unknown): value is PeerId {
  return typeof value === 'string' && PEER_ID_PATTERN.test(value);
}

export function parsePeerId(value: unknown, what = 'peer id'): PeerId {
  if (!isPeerId(value)) {
    throw new DmpError('USAGE', `invalid ${what} ${JSON.stringify(value)}: use 1 to 32 of a-z, 0-9 and '-'`);
  }
  return value;
}
