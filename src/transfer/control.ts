/**
 * DFTP's control files: the offer (sender -> receiver) and the status (receiver -> sender). Both
 * are message-layer envelopes (Fernet text, JSON), so Python can read them too.
 */
import type { FernetKey } from '../crypto/fernet.js';
import { DmpError } from '../errors.js';
import { decodeEnvelope, encodeEnvelope, PROTOCOL_VERSION } from '../stream/envelope.js';
import type { PeerId } from '../util/peer-id.js';
import { TID_PATTERN } from './names.js';

export interface Offer {
  tid: string;
  /** The sender's relative path, '/'-separated. The receiver cleans it before any use. */
  name: string;
  size: number;
  mtimeMs: number;
  blockSize: number;
  count: number;
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

export function encodeOffer(key: FernetKey, from: PeerId, to: PeerId, offer: Offer, now: number): string {
  return encodeEnvelope(key, { v: PROTOCOL_VERSION, type: 'offer', from, to, seq: 0, sentAt: now, body: offer });
}

export function decodeOffer(key: FernetKey, data: Buffer, from: PeerId, to: PeerId, tid: string): Offer {
  const body = decodeEnvelope(key, data, { from, to, type: 'offer' }).body as Partial<Offer> | null;
  if (
    !body ||
    body.tid !== tid ||
    typeof body.name !== 'string' ||
    body.name.length === 0 ||
    body.name.length > 4096 ||
    !Number.isSafeInteger(body.size) ||
    (body.size ?? -1) < 0 ||
    typeof body.mtimeMs !== 'number' ||
    !Number.isSafeInteger(body.blockSize) ||
    (body.blockSize ?? 0) < 1 ||
    !Number.isSafeInteger(body.count) ||
    body.count !== Math.max(1, Math.ceil((body.size ?? 0) / (body.blockSize ?? 1)))
  ) {
    throw new DmpError('PROTOCOL', 'offer is malformed');
  }
  return body as Offer;
}

export function encodeStatus(key: FernetKey, from: PeerId, to: PeerId, status: Status, now: number): string {
  return encodeEnvelope(key, { v: PROTOCOL_VERSION, type: 'status', from, to, seq: 0, sentAt: now, body: status });
}

export function decodeStatus(key: FernetKey, data: Buffer, from: PeerId, to: PeerId, tid: string): Status {
  const body = decodeEnvelope(key, data, { from, to, type: 'status' }).body as Partial<Status> | null;
  if (
    !body ||
    body.tid !== tid ||
    !TID_PATTERN.test(body.tid) ||
    !['receiving', 'paused', 'complete', 'failed'].includes(body.state as string) ||
    !Array.isArray(body.have) ||
    !Array.isArray(body.resend)
  ) {
    throw new DmpError('PROTOCOL', 'status is malformed');
  }
  return body as Status;
}
