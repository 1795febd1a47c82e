/**
 * What the served-folder tests share: a passcode hasher fit for the simulated world, a served
 * folder with the hostile things a folder can hold, and raw requests written as a client would.
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decryptText, encryptText, parseKey } from '../../src/crypto/fernet.js';
import { PROTOCOL_VERSION } from '../../src/node/envelope.js';
import type { PasscodeHasher } from '../../src/serve/passcodes.js';
import { runProcess } from './cli.js';

/**
 * scrypt with a small cost, computed synchronously. The simulated world runs on a ManualClock
 * that moves time on whenever no file operation is in flight: a hash on the thread pool would let
 * minutes pass during it, and the lockout tests count minutes. The real hasher (asynchronous,
 * OWASP's parameters) has tests of its own.
 */
export function quickPasscodes(): PasscodeHasher {
  const cost = { N: 2 ** 10, r: 8, p: 1 };
  return {
    async hash(passcode) {
      const salt = randomBytes(16);
      const hash = scryptSync(passcode.normalize('NFC'), salt, 32, cost);
      return { salt: salt.toString('base64'), hash: hash.toString('base64'), ...cost };
    },
    async verify(passcode, record) {
      const actual = scryptSync(passcode.normalize('NFC'), Buffer.from(record.salt, 'base64'), 32, {
        N: record.N,
        r: record.r,
        p: record.p,
      });
      return timingSafeEqual(actual, Buffer.from(record.hash, 'base64'));
    },
  };
}

/**
 * A folder to serve: `a.txt`, `sub/b.bin`, and what must never be listed or served: a hidden
 * file, a receiver's partial file, a link out of the folder, a link inside it, a FIFO.
 * `outside` is a folder beside it holding the link's target.
 */
export async function makeServedFolder(base: string): Promise<{ dir: string; outside: string }> {
  const dir = join(base, 'served');
  const outside = join(base, 'outside');
  await mkdir(join(dir, 'sub'), { recursive: true });
  await mkdir(outside, { recursive: true });
  await writeFile(join(dir, 'a.txt'), 'alpha\n');
  await writeFile(join(dir, 'sub', 'b.bin'), randomBytes(300 * 1024));
  await writeFile(join(dir, '.hidden'), 'not served');
  await writeFile(join(dir, '.c.txt.0123456789abcdef.dftp-part'), 'partial');
  await writeFile(join(outside, 'secret.txt'), 'outside the served folder');
  await symlink(join(outside, 'secret.txt'), join(dir, 'escape.txt'));
  await symlink('a.txt', join(dir, 'inner-link.txt'));
  const fifo = await runProcess('mkfifo', [join(dir, 'pipe')]);
  if (fifo.code !== 0) throw new Error(`mkfifo failed: ${fifo.stderr}`);
  return { dir, outside };
}

/** A request envelope from `from` to `to`, sealed with their pair key (Fernet text). */
export function sealRequest(pairKey: string, from: string, to: string, body: unknown, sentAt: number): string {
  const envelope = { v: PROTOCOL_VERSION, type: 'serve-req', from, to, seq: 0, sentAt, body };
  return encryptText(parseKey(pairKey), Buffer.from(JSON.stringify(envelope)), {
    timestamp: Math.floor(sentAt / 1000),
  });
}

/** The body of a response part, opened with the pair key. */
export function openResponse(pairKey: string, data: Buffer | string): Record<string, unknown> {
  const envelope = JSON.parse(decryptText(parseKey(pairKey), Buffer.from(data)).toString('utf8')) as {
    body: Record<string, unknown>;
  };
  return envelope.body;
}
