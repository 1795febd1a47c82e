import type { Clock } from '../clock.js';
import type { CryptoPool } from '../crypto/crypto-pool.js';
import type { FernetKey } from '../crypto/fernet.js';
import type { HomeLayout } from '../local/home.js';
import type { Logger } from '../log.js';
import type { RelayStorage } from '../relay/storage.js';
import type { PeerId } from '../util/peer-id.js';

/** What every protocol component of one peer shares. Collaborators, not options. */
export interface PeerContext {
  readonly self: PeerId;
  readonly relay: RelayStorage;
  readonly key: FernetKey;
  readonly home: HomeLayout;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Bytes this peer may hold in its relay folder, messages and chunks together. */
  readonly quota: number;
  /** A worker thread for the bulk crypto of file chunks. */
  readonly cryptoPool: CryptoPool;
}
