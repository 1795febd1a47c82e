/**
 * The kinds of the message stream (docs/PROTOCOL.md): `msg` carries one message of the writer's
 * stream to the reader, `ack` the reader's cumulative acknowledgement of the other direction.
 */
import { DmpError } from '../errors.js';
import { defineKind } from '../node/envelope.js';

export interface AckBody {
  /** Every message up to and including this sequence number is durably delivered. */
  through: number;
  /** Sequence numbers whose files failed authentication: publish them again. */
  resend: number[];
}

/** At most this many sequence numbers in one ack's resend list. */
const MAX_RESEND = 10_000;

/**
 * The largest message, in bytes of UTF-8 text (docs/PROTOCOL.md, "Limits"). Sealed, it stays
 * well under MAX_CONTROL_FILE, above which a receiver refuses a file unread. Larger texts go as
 * files (dftp), which have no limit.
 */
export const MAX_MESSAGE_BYTES = 512 * 1024;

export const MSG = defineKind('msg', /^msg-\d{12}\.dmp$/, (body): string => {
  if (typeof body !== 'string') throw new DmpError('PROTOCOL', 'message body is not text');
  // A UTF-8 character is at most 3 bytes per UTF-16 unit: most texts need no count at all.
  if (body.length * 3 > MAX_MESSAGE_BYTES && Buffer.byteLength(body, 'utf8') > MAX_MESSAGE_BYTES) {
    throw new DmpError('PROTOCOL', `message body is larger than the ${MAX_MESSAGE_BYTES} bytes allowed`);
  }
  return body;
});

/** The body of a cumulative ack with resend requests: the direct stream's, and the broadcast's. */
export function parseAckBody(body: unknown, what = 'ack'): AckBody {
  const ack = body as Partial<AckBody> | null;
  if (
    typeof ack !== 'object' ||
    ack === null ||
    !Number.isSafeInteger(ack.through) ||
    (ack.through ?? -1) < 0 ||
    !Array.isArray(ack.resend) ||
    ack.resend.length > MAX_RESEND ||
    !ack.resend.every((seq) => Number.isSafeInteger(seq) && seq > 0)
  ) {
    throw new DmpError('PROTOCOL', `${what} body is malformed`);
  }
  return { through: ack.through ?? 0, resend: ack.resend };
}

export const ACK = defineKind('ack', /^ack\.dmp$/, (body) => parseAckBody(body));
