/**
 * Runs in a worker thread: Fernet encryption and decryption of DFTP chunks, so that the AES and
 * HMAC work of a transfer runs beside the main thread's reading, hashing and writing.
 * Messages: { id, op: 'encrypt', key, parts, timestamp } -> { id, token }
 *           { id, op: 'decrypt', key, token }           -> { id, plaintext } or { id, error }
 */
import { parentPort } from 'node:worker_threads';
import { isDmpError } from '../errors.js';
import { decrypt, encrypt, type FernetKey, parseKey } from './fernet.js';
import { transferList } from './transfer-list.js';

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
  parts?: Uint8Array[];
  token?: Uint8Array;
  timestamp?: number;
}

parentPort?.on('message', (request: Request) => {
  try {
    const key = keyFor(request.key);
    if (request.op === 'encrypt') {
      const token = encrypt(key, request.parts ?? [], { timestamp: request.timestamp });
      parentPort?.postMessage({ id: request.id, result: token }, transferList([token]));
    } else {
      const token = request.token ?? new Uint8Array();
      const plaintext = decrypt(key, Buffer.from(token.buffer, token.byteOffset, token.byteLength));
      parentPort?.postMessage({ id: request.id, result: plaintext }, transferList([plaintext]));
    }
  } catch (error) {
    parentPort?.postMessage({
      id: request.id,
      error: { code: isDmpError(error) ? error.code : 'IO', message: (error as Error).message },
    });
  }
});
