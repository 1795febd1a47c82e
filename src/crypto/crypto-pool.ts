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

interface Reply {
  result: Buffer;
}

interface Pending {
  resolve: (value: Reply) => void;
  reject: (error: Error) => void;
}

/**
 * The worker's young generation, MiB. Its JavaScript objects are a few per chunk (the cipher
 * output is outside the V8 heap), but by default the space grows as if it held more.
 */
const WORKER_YOUNG_GENERATION_MB = 2;

const asBuffer = (view: Uint8Array) => Buffer.from(view.buffer, view.byteOffset, view.byteLength);

export class CryptoPool {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./fernet-worker.js', import.meta.url), {
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    type Message = {
      id: number;
      result?: Uint8Array;
      error?: { code: ErrorCode; message: string; data?: Record<string, unknown> };
    };
    worker.on('message', (message: Message) => {
      const pending = this.pending.get(message.id);
      if (!pending) return;
      this.pending.delete(message.id);
      if (this.pending.size === 0) worker.unref();
      if (message.error) {
        pending.reject(new DmpError(message.error.code, message.error.message, { data: message.error.data ?? {} }));
      } else pending.resolve({ result: asBuffer(message.result ?? new Uint8Array()) });
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

  /**
   * Starts the worker now, without waiting for it: it takes ~45 ms to boot, which then overlaps
   * with whatever the caller does before its first chunk (publishing an offer, opening a file).
   */
  warm(): void {
    this.start();
  }

  private call(message: Record<string, unknown>, buffers: Uint8Array[]): Promise<Reply> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ ...message, id }, transferList(buffers));
    });
  }

  /**
   * Encrypts `buffer[start, end)` into a raw token over the same memory (see encryptInPlace).
   * The buffer is moved to the worker and comes back as the returned token (a view of the same
   * memory): use that, never the buffer given.
   */
  async encryptInPlace(
    key: FernetKey,
    buffer: Buffer,
    start: number,
    end: number,
    timestamp = Math.floor(Date.now() / 1000),
  ): Promise<Buffer> {
    return (await this.call({ op: 'encrypt', key: key.text, buffer, start, end, timestamp }, [buffer])).result;
  }

  /**
   * Verifies and decrypts a raw token in place (AUTH DmpError when it fails): the plaintext is a
   * view of the token's memory, which is moved to the worker and back.
   */
  async decrypt(key: FernetKey, token: Buffer): Promise<Buffer> {
    return (await this.call({ op: 'decrypt', key: key.text, token }, [token])).result;
  }

  close(): void {
    void this.worker?.terminate();
    this.worker = undefined;
  }
}
