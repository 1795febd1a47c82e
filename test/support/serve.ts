/**
 * What the served-folder tests share: a passcode hasher fit for the simulated world, a served
 * folder with the hostile things a folder can hold, and raw requests written as a client would.
 */
import assert from 'node:assert/strict';
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decryptText, encryptText, parseKey } from '../../src/crypto/fernet.js';
import { type DmpError, isDmpError } from '../../src/errors.js';
import { PROTOCOL_VERSION } from '../../src/node/envelope.js';
import type { Peer } from '../../src/peer.js';
import type { FileResult } from '../../src/serve/client.js';
import type { PasscodeHasher } from '../../src/serve/passcodes.js';
import type { ServeOptions } from '../../src/serve/server.js';
import { runProcess } from './cli.js';
import { ALICE, BOB, CAROL, World } from './three-peers.js';

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

export interface Scene {
  world: World;
  base: string;
  dir: string;
  alice: Peer;
  bob: Peer;
  carol: Peer;
  stop: AbortController;
  serving: Promise<void>;
}

/** alice serves a folder made by makeServedFolder (quick passcodes); bob and carol are clients. */
export async function scene(
  options: Omit<ServeOptions, 'passcodes'> = {},
  peers: { quota?: number } = {},
): Promise<Scene> {
  const world = await new World().init();
  const base = await mkdtemp(join(tmpdir(), 'dmp-serve-'));
  const { dir } = await makeServedFolder(base);
  const alice = await world.open(ALICE, peers);
  const bob = await world.open(BOB, peers);
  const carol = await world.open(CAROL, peers);
  const stop = new AbortController();
  const serving = alice.serveFolder(dir, { ...options, passcodes: quickPasscodes(), signal: stop.signal });
  serving.catch(() => {});
  return { world, base, dir, alice, bob, carol, stop, serving };
}

export async function end(s: Scene): Promise<void> {
  s.stop.abort();
  await s.serving;
  await s.world.close();
  await rm(s.base, { recursive: true, force: true });
}

/** Rejects with the DmpError `promise` rejects with (fails when it resolves). */
export async function refusal(promise: Promise<unknown>): Promise<DmpError> {
  try {
    await promise;
  } catch (error) {
    if (isDmpError(error)) return error;
    throw error;
  }
  assert.fail('expected a refusal');
}

export function only(results: FileResult[]): FileResult {
  assert.equal(results.length, 1);
  return results[0] as FileResult;
}
