/**
 * The envelope: the JSON plaintext of every control file (messages, acks, pings, offers,
 * statuses, and whatever kind a service adds). This codec is pure: bytes of plaintext in, a
 * typed envelope out, a PROTOCOL DmpError on anything else. Sealing (encryption and
 * authentication) happens at the node's boundary, in src/node/seal.ts.
 *
 * Sender, recipient and sequence live inside the authenticated plaintext: a file moved to
 * another folder or renamed to another sequence number is detected and rejected.
 *
 * Kinds are open: a service defines its kinds in its own folder with `defineKind` (the envelope
 * `type`, the relay file names it uses, and a check of its body) and registers a handler for
 * them with the node. This file never changes for a new kind.
 */
import { DmpError, isDmpError } from '../errors.js';
import { parseBoundedJson } from '../util/bounded-json.js';
import { SANE_TIME_MAX } from '../util/bounds.js';
import { isPeerId, type PeerId } from '../util/peer-id.js';

/** Version 2: per-pair keys and identities (docs/PROTOCOL.md). */
export const PROTOCOL_VERSION = 2;

/** Control files are small; anything larger is refused unread (docs/PROTOCOL.md). */
export const MAX_CONTROL_FILE = 1024 * 1024;

/**
 * The deepest nesting of JSON read from the relay (envelopes, chunk headers). Ours nest three
 * deep at most; a field nested 10,000 deep is refused before JSON.parse, instead of overflowing
 * the stack of whatever walks it later (JSON.stringify of a pong, a logger).
 */
export const MAX_JSON_DEPTH = 32;

/** Longest envelope `type`. */
const MAX_TYPE_LENGTH = 32;

/** A kind of relay file: what the node's loop dispatches on. */
export interface FileKind {
  /** Short name, also the envelope `type` for envelope kinds. */
  readonly type: string;
  /** Relay file names of this kind in `<writer>/<reader>/` (readers consume only these). */
  readonly files: RegExp;
}

/** A kind whose files are sealed envelopes, with a check of its body. */
export interface MessageKind<B> extends FileKind {
  /** Returns the body typed, or throws a PROTOCOL DmpError. */
  parseBody(body: unknown): B;
}

export function defineKind<B>(type: string, files: RegExp, parseBody: (body: unknown) => B): MessageKind<B> {
  return { type, files, parseBody };
}

export interface Envelope<B = unknown> {
  /** Protocol version. */
  v: number;
  type: string;
  from: PeerId;
  to: PeerId;
  /** Sequence number in the (from, to) message stream; for other kinds their own use or 0. */
  seq: number;
  /** Sender's clock, ms since the epoch; informative only, never used for ordering. */
  sentAt: number;
  body: B;
  /**
   * For msg: the highest sequence number the sender knew acknowledged when it sent this. A
   * receiver whose own record is lower has lost its state and can skip ahead safely.
   */
  acked?: number;
}

export function encodeEnvelope(envelope: Envelope): Buffer {
  return Buffer.from(JSON.stringify(envelope), 'utf8');
}

export interface Expect<B> {
  kind: MessageKind<B>;
  from: PeerId;
  to: PeerId;
  seq?: number;
}

/** Parses and checks an envelope of the expected kind, found in `from`'s folder for `to`. */
export function decodeEnvelope<B>(plaintext: Buffer, expect: Expect<B>): Envelope<B> {
  let value: unknown;
  try {
    value = parseBoundedJson(plaintext, { maxBytes: MAX_CONTROL_FILE, maxDepth: MAX_JSON_DEPTH });
  } catch (error) {
    if (!isDmpError(error)) throw error;
    throw new DmpError('PROTOCOL', `envelope refused: ${error.message}`, { data: error.data, cause: error });
  }
  const envelope = value as Partial<Envelope>;
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    typeof envelope.v !== 'number' ||
    typeof envelope.type !== 'string' ||
    envelope.type.length > MAX_TYPE_LENGTH ||
    !isPeerId(envelope.from) ||
    !isPeerId(envelope.to) ||
    !isCount(envelope.seq) ||
    // Informative only, but printed as a date: a time the Date type can hold, from 1970 on (a
    // machine whose clock was never set still writes times near 1970).
    typeof envelope.sentAt !== 'number' ||
    !(envelope.sentAt >= 0 && envelope.sentAt <= SANE_TIME_MAX) ||
    (envelope.acked !== undefined && !isCount(envelope.acked))
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
  if (envelope.type !== expect.kind.type) {
    throw new DmpError('PROTOCOL', `expected a ${expect.kind.type} envelope, found ${envelope.type}`);
  }
  if (expect.seq !== undefined && envelope.seq !== expect.seq) {
    throw new DmpError('PROTOCOL', `file name says sequence ${expect.seq} but the envelope says ${envelope.seq}`);
  }
  // Known fields only: whatever else the other side put in is never stored, logged or echoed.
  return {
    v: envelope.v,
    type: envelope.type,
    from: envelope.from,
    to: envelope.to,
    seq: envelope.seq as number,
    sentAt: envelope.sentAt,
    body: expect.kind.parseBody(envelope.body),
    ...(envelope.acked === undefined ? {} : { acked: envelope.acked }),
  };
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
