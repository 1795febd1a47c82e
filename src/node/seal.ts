/**
 * The sealing port: the one boundary where relay files are encrypted and authenticated. Codecs
 * above it work on plaintext; services hand plaintext to a Sealer and get back what goes into
 * the relay, and the reverse. Which key seals what is the Sealer's business alone, so per-peer
 * keys are a second implementation of this interface, not an edit of its callers.
 *
 * Forms (docs/PROTOCOL.md): control files are standard Fernet tokens in their text form, so
 * `Fernet(key).decrypt(data)` in Python opens them; chunks are the raw token bytes (the text
 * form would add a third to every byte in the relay), opened in Python with
 * `Fernet(key).decrypt(base64.urlsafe_b64encode(data))`.
 */
import { CryptoPool } from '../crypto/crypto-pool.js';
import { decrypt, decryptText, encryptInPlace, encryptText, type FernetKey } from '../crypto/fernet.js';
import type { PeerId } from '../util/peer-id.js';

export interface Sealer {
  /** Seals a control file that this peer writes for `peer`. */
  seal(peer: PeerId, plaintext: Buffer): string;
  /** Opens a control file that `peer` wrote for this peer. Throws an AUTH DmpError. */
  open(peer: PeerId, data: Buffer): Buffer;
  /**
   * Seals a chunk for `peer` from `buffer[start, end)` (start >= 25), writing the token over
   * the same buffer from offset 0 (src/crypto/fernet.ts encryptInPlace). The buffer may be moved
   * to another thread: use the returned token (a view of the same memory), never the buffer
   * given.
   */
  sealChunk(peer: PeerId, buffer: Buffer, start: number, end: number): Promise<Buffer>;
  /** Opens a chunk from `peer` in place (the token's memory is reused). Throws an AUTH DmpError. */
  openChunk(peer: PeerId, token: Buffer): Promise<Buffer>;
  /** Gets ready for chunks (starts a worker thread) while the caller does something else. */
  warm?(): void;
  /**
   * Makes ready what sealing for and opening from `peer` needs (per-peer keys read from the
   * relay). The node calls it before each look at the peer's folder and leaves the folder alone
   * while it resolves to false: nothing there could be opened, nor anything sealed for it. Code
   * that seals or opens outside the node's loop calls it first.
   */
  prepare?(peer: PeerId): Promise<boolean>;
  /** Releases threads it started. */
  close(): void;
}

export interface SharedKeySealerInit {
  /** The relay key every member holds. */
  key: FernetKey;
  /** Seconds since the epoch for token timestamps. */
  now: () => number;
  /**
   * Bulk crypto in a worker thread (default true): on two cores, the overlap of encryption
   * with reading and hashing is most of a transfer's speed. Tests turn it off to keep every
   * step on one thread, in an order a seed replays.
   */
  worker?: boolean;
}

/** Protocol version 1: every file of the relay sealed under the one relay key. */
export class SharedKeySealer implements Sealer {
  private readonly key: FernetKey;
  private readonly now: () => number;
  private readonly pool: CryptoPool | undefined;

  constructor(init: SharedKeySealerInit) {
    this.key = init.key;
    this.now = init.now;
    this.pool = init.worker === false ? undefined : new CryptoPool();
  }

  private timestamp(): number {
    return Math.floor(this.now() / 1000);
  }

  seal(_peer: PeerId, plaintext: Buffer): string {
    return encryptText(this.key, plaintext, { timestamp: this.timestamp() });
  }

  open(_peer: PeerId, data: Buffer): Buffer {
    return decryptText(this.key, data);
  }

  async sealChunk(_peer: PeerId, buffer: Buffer, start: number, end: number): Promise<Buffer> {
    if (this.pool) return this.pool.encryptInPlace(this.key, buffer, start, end, this.timestamp());
    return encryptInPlace(this.key, buffer, start, end, { timestamp: this.timestamp() });
  }

  async openChunk(_peer: PeerId, token: Buffer): Promise<Buffer> {
    if (this.pool) return this.pool.decrypt(this.key, token);
    return decrypt(this.key, token, { inPlace: true });
  }

  warm(): void {
    this.pool?.warm();
  }

  close(): void {
    this.pool?.close();
  }
}
