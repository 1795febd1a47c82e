/**
 * DFTP's control kinds: the offer (sender -> receiver) and the status (receiver -> sender). Both
 * are envelopes (sealed at the node's boundary), so Python can read them too. Every field is
 * checked with bounds before anything is stored or acted upon.
 */
import { DmpError } from '../errors.js';
import { defineKind } from '../node/envelope.js';
import { MAX_CHUNKS, TID_PATTERN } from './names.js';

export interface Offer {
  tid: string;
  /** The sender's relative path, '/'-separated. The receiver cleans it before any use. */
  name: string;
  size: number;
  mtimeMs: number;
  blockSize: number;
  count: number;
  /**
   * The request this transfer answers (docs/PROTOCOL.md, "Serving a folder"): a `get` the
   * receiver asked for, or a `put` the receiver accepted. Unset for a plain send. A receiver
   * takes such an offer only as part of that exchange, never as an ordinary incoming file.
   */
  request?: string;
}

export type TransferState = 'receiving' | 'paused' | 'complete' | 'failed';

export interface Status {
  tid: string;
  state: TransferState;
  /** Chunks durably written, as [start, end) index ranges. */
  have: [number, number][];
  /** Chunks whose files failed authentication: publish them again. */
  resend: number[];
  reason?: string;
  sha256?: string;
  /** The offer reached the receiver unreadable: publish it again. */
  needOffer?: boolean;
}

/** The smallest block a receiver accepts, as the original DFTP's smallest example (1k). */
export const MIN_BLOCK_SIZE = 1024;
/** The largest block: a chunk is read whole into memory. */
export const MAX_BLOCK_SIZE = 256 * 1024 * 1024;
/** Modification times between 1970 and 2200: anything else is not a file's time. */
export const MAX_MTIME_MS = Date.UTC(2200, 0, 1);
const STATES: readonly TransferState[] = ['receiving', 'paused', 'complete', 'failed'];
/** Ranges and resend entries one status may list. */
const MAX_LIST = 100_000;

const isCount = (value: unknown, max: number): value is number =>
  Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= max;

export const OFFER = defineKind('offer', /^offer-[0-9a-f]{16}\.dmp$/, (value): Offer => {
  const body = value as Partial<Offer> | null;
  if (
    typeof body !== 'object' ||
    body === null ||
    typeof body.tid !== 'string' ||
    !TID_PATTERN.test(body.tid) ||
    typeof body.name !== 'string' ||
    body.name.length === 0 ||
    body.name.length > 4096 ||
    !isCount(body.size, Number.MAX_SAFE_INTEGER) ||
    typeof body.mtimeMs !== 'number' ||
    !(body.mtimeMs >= 0 && body.mtimeMs <= MAX_MTIME_MS) ||
    !isCount(body.blockSize, MAX_BLOCK_SIZE) ||
    body.blockSize < MIN_BLOCK_SIZE ||
    !isCount(body.count, MAX_CHUNKS) ||
    body.count !== Math.max(1, Math.ceil(body.size / body.blockSize)) ||
    (body.request !== undefined && (typeof body.request !== 'string' || !TID_PATTERN.test(body.request)))
  ) {
    throw new DmpError('PROTOCOL', 'offer is malformed');
  }
  return {
    tid: body.tid,
    name: body.name,
    size: body.size,
    mtimeMs: body.mtimeMs,
    blockSize: body.blockSize,
    count: body.count,
    ...(body.request === undefined ? {} : { request: body.request }),
  };
});

export const STATUS = defineKind('status', /^status-[0-9a-f]{16}\.dmp$/, (value): Status => {
  const body = value as Partial<Status> | null;
  if (
    typeof body !== 'object' ||
    body === null ||
    typeof body.tid !== 'string' ||
    !TID_PATTERN.test(body.tid) ||
    !STATES.includes(body.state as TransferState) ||
    !Array.isArray(body.have) ||
    body.have.length > MAX_LIST ||
    !body.have.every(
      (range) =>
        Array.isArray(range) &&
        range.length === 2 &&
        isCount(range[0], MAX_CHUNKS) &&
        isCount(range[1], MAX_CHUNKS) &&
        range[0] < range[1],
    ) ||
    !Array.isArray(body.resend) ||
    body.resend.length > MAX_LIST ||
    !body.resend.every((index) => isCount(index, MAX_CHUNKS)) ||
    (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > 1000)) ||
    (body.sha256 !== undefined && (typeof body.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(body.sha256))) ||
    (body.needOffer !== undefined && typeof body.needOffer !== 'boolean')
  ) {
    throw new DmpError('PROTOCOL', 'status is malformed');
  }
  return {
    tid: body.tid,
    state: body.state as TransferState,
    have: body.have,
    resend: body.resend,
    ...(body.reason === undefined ? {} : { reason: body.reason }),
    ...(body.sha256 === undefined ? {} : { sha256: body.sha256 }),
    ...(body.needOffer === undefined ? {} : { needOffer: body.needOffer }),
  };
});
