/**
 * A worker thread for the bulk crypto of file transfers. The main thread keeps reading, hashing
 * and writing while the worker encrypts or decrypts; on these 2-core machines that overlap is
 * what lets a transfer approach the speed of the crypto itself. Inputs are moved, not copied,
 * to the worker: a caller must not use a buffer after handing it over.
 */
import { Worker } from 'node:worker_threads';
import { DmpError, type ErrorCode } from '../errors.js';
import type { FernetKey } from './fernet.js';
import { transferList } from './transfer-list.js';

interface Pending {
  resolve: (value: Buffer) => void;
  reject: (error: Error) => void;
}

export class CryptoPool {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./fernet-worker.js', import.meta.url));
    worker.on('message', (message: { id: number; result?: Uint8Array; error?: { code: ErrorCode; message: string } }) => {
      const pending = this.pending.get(message.id);
      if (!pending) return;
      this.pending.delete(message.id);
      if (this.pending.size === 0) worker.unref();
      if (message.error) pending.reject(new DmpError(message.error.code, message.error.message));
      else {
        const result = message.result ?? new Uint8Array();
        pending.resolve(Buffer.from(result.buffer, result.byteOffset, result.byteLength));
      }
    });
    worker.on('error', (error) => {
      for (const pending of this.pending.values()) pending.reject(error);
      this.pending.clear();
      this.worker = undefined;
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private call(message: Record<string, unknown>, buffers: Uint8Array[]): Promise<Buffer> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ ...message, id }, transferList(buffers));
    });
  }

  /** Encrypts the concatenation of `parts` into a raw token. The parts are moved to the worker. */
  encrypt(key: FernetKey, parts: Uint8Array[], timestamp = Math.floor(Date.now() / 1000)): Promise<Buffer> {
    return this.call({ op: 'encrypt', key: key.text, parts, timestamp }, parts);
  }

  /** Verifies and decrypts a raw token (AUTH DmpError when it fails). The token is moved. */
  decrypt(key: FernetKey, token: Buffer): Promise<Buffer> {
    return this.call({ op: 'decrypt', key: key.text, token }, [token]);
  }

  close(): void {
    void this.worker?.terminate();
    this.worker = undefined;
  }
}
