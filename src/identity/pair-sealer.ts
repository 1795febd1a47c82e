/**
 * Protocol version 2's Sealer: everything in `<relay>/alice/bob/` is sealed under the key only
 * alice and bob can compute (src/identity/keys.ts derivePairKey). Same Fernet token forms as
 * version 1, so Python opens the files with the key `dmp pair-key bob` prints.
 *
 * After a rotation, files sealed with the keys before it still open: the book lists the pair's
 * current key first (it seals) and the older combinations after it.
 */
import { CryptoPool } from '../crypto/crypto-pool.js';
import { decrypt, decryptText, encryptInPlace, encryptText, type FernetKey } from '../crypto/fernet.js';
import { isDmpError } from '../errors.js';
import type { Sealer } from '../node/seal.js';
import type { PeerId } from '../util/peer-id.js';
import type { IdentityBook } from './book.js';

export interface PairSealerInit {
  book: IdentityBook;
  /** Seconds since the epoch for token timestamps. */
  now: () => number;
  /** Bulk crypto in a worker thread. @default true */
  worker?: boolean;
}

export class PairSealer implements Sealer {
  private readonly book: IdentityBook;
  private readonly now: () => number;
  private readonly pool: CryptoPool | undefined;

  constructor(init: PairSealerInit) {
    this.book = init.book;
    this.now = init.now;
    this.pool = init.worker === false ? undefined : new CryptoPool();
  }

  private timestamp(): number {
    return Math.floor(this.now() / 1000);
  }

  private sealingKey(peer: PeerId): FernetKey {
    // keysFor throws when the peer is not accepted, and never returns an empty list.
    return this.book.keysFor(peer)[0] as FernetKey;
  }

  async prepare(peer: PeerId): Promise<boolean> {
    const { standing } = await this.book.prepare(peer);
    return standing === 'pinned' || standing === 'verified';
  }

  seal(peer: PeerId, plaintext: Buffer): string {
    return encryptText(this.sealingKey(peer), plaintext, { timestamp: this.timestamp() });
  }

  open(peer: PeerId, data: Buffer): Buffer {
    let first: unknown;
    for (const key of this.book.keysFor(peer)) {
      try {
        return decryptText(key, data);
      } catch (error) {
        // Only an HMAC failure can mean an older key; damage fails every key the same way.
        if (!isDmpError(error, 'AUTH') || error.data.check !== 'mac') throw error;
        first ??= error;
      }
    }
    throw first;
  }

  async sealChunk(peer: PeerId, buffer: Buffer, start: number, end: number): Promise<Buffer> {
    const key = this.sealingKey(peer);
    if (this.pool) return this.pool.encryptInPlace(key, buffer, start, end, this.timestamp());
    return encryptInPlace(key, buffer, start, end, { timestamp: this.timestamp() });
  }

  async openChunk(peer: PeerId, token: Buffer): Promise<Buffer> {
    const keys = this.book.keysFor(peer);
    let first: unknown;
    for (const [index, key] of keys.entries()) {
      const last = index === keys.length - 1;
      // The worker takes the buffer it is given; keep a copy while another key may be tried.
      const input = last ? token : Buffer.from(token);
      try {
        if (this.pool) return await this.pool.decrypt(key, input);
        return decrypt(key, input, { inPlace: true });
      } catch (error) {
        if (!isDmpError(error, 'AUTH') || error.data.check !== 'mac') throw error;
        first ??= error;
      }
    }
    throw first;
  }

  warm(): void {
    this.pool?.warm();
  }

  close(): void {
    this.pool?.close();
  }
}
