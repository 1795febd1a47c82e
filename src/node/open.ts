/**
 * The two halves of the boundary every service crosses for control files: seal an envelope for
 * a peer, and open one from a peer, telling the authentication guard how it went.
 */
import { type DmpError, isDmpError } from '../errors.js';
import type { RelayRead } from '../relay/storage.js';
import type { PeerId } from '../util/peer-id.js';
import type { AuthVerdict } from './auth-guard.js';
import { decodeEnvelope, type Envelope, encodeEnvelope, type MessageKind } from './envelope.js';
import type { NodeComponents } from './node.js';

export type SealComponents = Pick<NodeComponents, 'sealer'>;
export type OpenComponents = Pick<NodeComponents, 'self' | 'sealer' | 'guard' | 'logger'>;

export function sealEnvelope(components: SealComponents, envelope: Envelope): string {
  return components.sealer.seal(envelope.to, encodeEnvelope(envelope));
}

export type Opened<B> =
  | { readonly envelope: Envelope<B>; readonly error?: undefined }
  | { readonly envelope?: undefined; readonly error: DmpError; readonly verdict: AuthVerdict };

/**
 * Opens `<peer>/<self>/<file>` as an envelope of `kind`. A file that fails (AUTH or PROTOCOL)
 * is reported to the guard and logged with peer and file: as a warning once the peer is known
 * to authenticate, at debug level before (the guard's verdict says the rest in one line).
 */
export function openEnvelope<B>(
  components: OpenComponents,
  peer: PeerId,
  file: string,
  read: RelayRead,
  expect: { kind: MessageKind<B>; seq?: number },
): Opened<B> {
  try {
    const plaintext = components.sealer.open(peer, read.data);
    const envelope = decodeEnvelope(plaintext, { kind: expect.kind, seq: expect.seq, from: peer, to: components.self });
    components.guard.authenticated(peer, file);
    return { envelope };
  } catch (error) {
    if (!isDmpError(error, 'AUTH') && !isDmpError(error, 'PROTOCOL')) throw error;
    return { error, verdict: rejected(components, peer, file, read.version, error) };
  }
}

/** Reports a file of `peer` that failed to open, and logs it. */
export function rejected(
  components: Pick<NodeComponents, 'guard' | 'logger'>,
  peer: PeerId,
  file: string,
  version: string,
  error: DmpError,
): AuthVerdict {
  const verdict = components.guard.failed(peer, file, version, error);
  components.logger.log(components.guard.hasAuthenticated(peer) ? 'warn' : 'debug', 'file-rejected', {
    peer,
    file,
    reason: error.message,
  });
  return verdict;
}
