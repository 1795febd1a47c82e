/**
 * The envelope: the JSON plaintext of every message-layer file. The file content is a standard
 * Fernet token in its text form, so `Fernet(key).decrypt(open(f, 'rb').read())` in Python gives
 * this JSON. Sender, recipient and sequence live inside the authenticated plaintext: a file
 * moved to another folder or renamed to another sequence number is detected and rejected.
 */

import { decryptText, encryptText, type FernetKey } from '../crypto/fernet.js';
import { DmpError } from '../errors.js';
import { isPeerId, type PeerId } from '../util/peer-id.js';

export const PROTOCOL_VERSION = 1;

/** Message-layer types, and DFTP's control files (their bodies are checked in src/transfer/). */
export type EnvelopeType = 'msg' | 'ack' | 'ping' | 'pong' | 'offer' | 'status';

export interface Envelope {
  /** Protocol version. */
  v: number;
  type: EnvelopeType;
  from: PeerId;
  to: PeerId;
  /** Sequence number in the (from, to) message stream; for ping and pong the ping's number. */
  seq: number;
  /** Sender's clock, ms since the epoch; informative only, never used for ordering. */
  sentAt: number;
  /** For msg: the text. For ack: AckBody. For ping/pong: PingBody. */
  body: unknown;
  /**
   * For msg: the highest sequence number the sender knew acknowledged when it sent this. A
   * receiver whose own record is lower has lost its state and can skip ahead safely.
   */
  acked?: number;
}

export interface AckBody {
  /** Every message up to and including this sequence number is durably delivered. */
  through: number;
  /** Sequence numbers whose files failed authentication: publish them again. */
  resend: number[];
}

export interface PingBody {
  nonce: string;
}

export function encodeEnvelope(key: FernetKey, envelope: Envelope): string {
  return encryptText(key, Buffer.from(JSON.stringify(envelope), 'utf8'));
}

export interface Expect {
  from: PeerId;
  to: PeerId;
  type?: EnvelopeType;
  seq?: number;
}

/**
 * Decrypts and checks an envelope. AUTH when the token fails; PROTOCOL when it authenticates but
 * does not belong where it was found.
 */
export function decodeEnvelope(key: FernetKey, data: Buffer, expect: Expect): Envelope {
  const plaintext = decryptText(key, data);
  let value: unknown;
  try {
    value = JSON.parse(plaintext.toString('utf8'));
  } catch (cause) {
    throw new DmpError('PROTOCOL', 'envelope is not JSON', { cause });
  }
  const envelope = value as Partial<Envelope>;
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof envelope.v !== 'number' ||
    !isPeerId(envelope.from) ||
    !isPeerId(envelope.to) ||
    !Number.isSafeInteger(envelope.seq) ||
    typeof envelope.sentAt !== 'number' ||
    !['msg', 'ack', 'ping', 'pong', 'offer', 'status'].includes(envelope.type as string)
  ) {
    throw new DmpError('PROTOCOL', 'envelope is malformed');
  }
  if (envelope.v !== PROTOCOL_VERSION) {
    throw new DmpError('PROTOCOL', `envelope has protocol version ${envelope.v}; this dmp speaks ${PROTOCOL_VERSION}`);
  }
  if (envelope.from !== expect.from || envelope.to !== expect.to) {
    throw new DmpError(
      'PROTOCOL',
      `envelope says ${envelope.from} -> ${envelope.to} but was found in ${expect.from} -> ${expect.to}`,
    );
  }
  if (expect.type !== undefined && envelope.type !== expect.type) {
    throw new DmpError('PROTOCOL', `expected a ${expect.type} envelope, found ${envelope.type}`);
  }
  if (expect.seq !== undefined && envelope.seq !== expect.seq) {
    throw new DmpError('PROTOCOL', `file name says sequence ${expect.seq} but the envelope says ${envelope.seq}`);
  }
  if (envelope.type === 'msg' && typeof envelope.body !== 'string')
    throw new DmpError('PROTOCOL', 'message body is not text');
  if (envelope.type === 'ack') {
    const body = envelope.body as Partial<AckBody> | null;
    if (!body || !Number.isSafeInteger(body.through) || !Array.isArray(body.resend)) {
      throw new DmpError('PROTOCOL', 'ack body is malformed');
    }
  }
  if (
    (envelope.type === 'ping' || envelope.type === 'pong') &&
    typeof (envelope.body as PingBody)?.nonce !== 'string'
  ) {
    throw new DmpError('PROTOCOL', 'ping body is malformed');
  }
  return envelope as Envelope;
}
