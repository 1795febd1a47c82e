/**
 * Runs in a worker thread: Fernet encryption and decryption of DFTP chunks, so that the AES and
 * HMAC work of a transfer runs beside the main thread's reading, hashing and writing.
 * Messages: { id, op: 'encrypt', key, buffer, start, end, timestamp } -> { id, result } (encrypted in place)
 *           { id, op: 'decrypt', key, token } -> { id, result } (decrypted in place), or { id, error }
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { isDmpError } from '../errors.js';
import { decrypt, encryptInPlace, type FernetKey, parseKey } from './fernet.js';
import { transferList } from './transfer-list.js';

/**
 * Every cipher call returns a fresh buffer (Node cannot write OpenSSL's output into ours), and
 * V8 collects dead buffers only once their total passes its external-memory limit: a 256 MiB
 * transfer kept about 35 MB of them per side, and touching new memory all the time cost page
 * faults. Young-generation collections free them as the chunk goes, every SLICES_PER_COLLECTION
 * slices (256 KiB), and once more after it; they are cheap here, where the heap holds almost
 * nothing else. Collecting once per chunk still let a 4 MiB chunk's outputs pile up: over a
 * 1 GiB local transfer, every 256 KiB instead took peak RSS from 96-99 to 89-90 MiB (sender)
 * and 102-112 to 94-97 MiB (receiver), in the same time within noise (5.29-5.93 s against
 * 5.30-5.84 s, three interleaved runs each).
 */
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as (options?: { type: 'minor' }) => void;
const SLICES_PER_COLLECTION = 4;
let slices = 0;
const onSlice = (): void => {
  slices += 1;
  if (slices % SLICES_PER_COLLECTION === 0) collect({ type: 'minor' });
};

/**
 * Those buffers are zero-filled 64 KiB blocks (one per slice), freed a few at a time by the
 * collections above. glibc gives free memory at the top of a heap back to the kernel once it
 * passes its trim threshold, 128 KiB until a freed block of its own mmap raises it, so each
 * chunk's blocks were new pages again: one page fault per 4 KiB of data, a quarter of the CPU
 * time a transfer spent in the kernel. One 8 MiB block freed at start raises that threshold
 * (glibc's dynamic mmap threshold: to 8 MiB, trimming above 16 MiB), so the heap keeps the
 * memory the slices need. 256 MiB local transfer: 69,000 -> 16,700 faults per side, 0.35 ->
 * 0.25 s of system time. Other allocators ignore it.
 */
function keepFreedMemory(): void {
  // Dropped at once: only its free() matters, which the full collection brings about.
  Buffer.allocUnsafeSlow(8 * 1024 * 1024);
  collect();
}
keepFreedMemory();

const keys = new Map<string, FernetKey>();

function keyFor(text: string): FernetKey {
  let key = keys.get(text);
  if (!key) {
    key = parseKey(text);
    keys.set(text, key);
  }
  return key;
}

interface Request {
  id: number;
  op: 'encrypt' | 'decrypt';
  key: string;
  /** encrypt: the buffer holding the plaintext at [start, end), where the token is written. */
  buffer?: Uint8Array;
  start?: number;
  end?: number;
  token?: Uint8Array;
  timestamp?: number;
}

/** The Uint8Array a message carried, as a Buffer over the same memory. */
const asBuffer = (view: Uint8Array) => Buffer.from(view.buffer, view.byteOffset, view.byteLength);

parentPort?.on('message', (request: Request) => {
  try {
    const key = keyFor(request.key);
    if (request.op === 'encrypt') {
      const buffer = asBuffer(request.buffer ?? new Uint8Array());
      const token = encryptInPlace(key, buffer, request.start ?? 0, request.end ?? 0, {
        timestamp: request.timestamp,
        onSlice,
      });
      parentPort?.postMessage({ id: request.id, result: token }, transferList([token]));
    } else {
      const plaintext = decrypt(key, asBuffer(request.token ?? new Uint8Array()), { inPlace: true, onSlice });
      parentPort?.postMessage({ id: request.id, result: plaintext }, transferList([plaintext]));
    }
    collect({ type: 'minor' });
  } catch (error) {
    parentPort?.postMessage({
      id: request.id,
      error: {
        code: isDmpError(error) ? error.code : 'IO',
        message: (error as Error).message,
        data: isDmpError(error) ? error.data : {},
      },
    });
  }
});
