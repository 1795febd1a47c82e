/**
 * Issue 12, "Writes outside where they belong": the receiver never writes through a link in its
 * output folder. A partial-file name that already exists as a link, and a subfolder of --out
 * that is a link to elsewhere, make the transfer fail with a one-line reason that reaches the
 * sender; nothing outside --out changes.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { DmpError } from '../../src/errors.js';
import { writeJsonFile } from '../../src/local/files.js';
import type { Peer } from '../../src/peer.js';
import type { TransferEvent } from '../../src/transfer/events.js';
import { OneRelay } from './world.js';

/**
 * alice sends `paths` to bob, who receives into `out` until alice's send is over; returns what
 * alice's send ended with and bob's events.
 */
async function exchange(
  world: OneRelay,
  alice: Peer,
  bob: Peer,
  out: string,
  paths: string[],
): Promise<{ error: unknown; events: TransferEvent[] }> {
  const events: TransferEvent[] = [];
  const stop = new AbortController();
  world.signal.addEventListener('abort', () => stop.abort(), { once: true });
  const receiving = bob.receiveFiles({ out, signal: stop.signal, onEvent: (event) => events.push(event) });
  const error = await alice.sendFiles('bob', paths, { blockSize: 1024, signal: world.signal }).then(
    () => undefined,
    (failure: unknown) => failure,
  );
  stop.abort();
  await receiving;
  return { error, events };
}

function assertRefused(error: unknown, events: TransferEvent[], pattern: RegExp): void {
  assert.ok(error instanceof DmpError, `the send did not fail: ${String(error)}`);
  assert.equal(error.code, 'TRANSFER_FAILED', error.message);
  assert.match(error.message, pattern);
  assert.equal(error.message.split('\n').length, 1);
  const failed = events.filter((event) => event.event === 'failed');
  assert.equal(failed.length, 1, JSON.stringify(events));
  assert.match(failed[0]?.event === 'failed' ? failed[0].reason : '', pattern);
  assert.ok(!events.some((event) => event.event === 'done'), JSON.stringify(events));
}

test('a partial-file name pre-created as a link to a file outside --out: refused, the file outside untouched', async () => {
  const world = new OneRelay();
  try {
    const alice = await world.peer('alice');
    const bob = await world.peer('bob');
    const src = await world.dir();
    const out = await world.dir();
    const outside = await world.dir();
    const path = join(src, 'x.txt');
    await writeFile(path, 'the data alice sends');
    const info = await stat(path);
    // alice resumes a transfer she planned earlier, so its id (and the partial's name) is known.
    const tid = '5ee5ee5ee5ee5ee5';
    await writeJsonFile(alice.home.transfers('out', `${tid}.json`), {
      tid,
      peer: 'bob',
      path,
      name: 'x.txt',
      size: info.size,
      mtimeMs: info.mtimeMs,
      blockSize: 1024,
      createdAt: world.clock.now(),
    });
    const victim = join(outside, 'precious.txt');
    await writeFile(victim, 'precious');
    await symlink(victim, join(out, `.x.txt.${tid}.dftp-part`));
    const { error, events } = await exchange(world, alice, bob, out, [path]);
    assertRefused(error, events, /\.x\.txt\.5ee5ee5ee5ee5ee5\.dftp-part is a symbolic link/);
    assert.equal(await readFile(victim, 'utf8'), 'precious', 'data was written through the link');
    assert.deepEqual(await readdir(out), [`.x.txt.${tid}.dftp-part`], 'something else landed in out');
  } finally {
    await world.close();
  }
});

test('a subfolder of --out that is a link to elsewhere, and an offer named sub/x: refused, nothing written there', async () => {
  const world = new OneRelay();
  try {
    const alice = await world.peer('alice');
    const bob = await world.peer('bob');
    const src = await world.dir();
    const out = await world.dir();
    const outside = await world.dir();
    await mkdir(join(src, 'sub'));
    await writeFile(join(src, 'sub', 'x'), 'into sub');
    await symlink(outside, join(out, 'sub'));
    const { error, events } = await exchange(world, alice, bob, out, [join(src, 'sub')]);
    assertRefused(error, events, /^.*sub is a symbolic link: refusing to write through it$/);
    assert.deepEqual(await readdir(outside), [], 'a file was written through the linked folder');
    // The reason names the place inside --out, never a path of bob's machine.
    assert.ok(!String((error as Error).message).includes(out), (error as Error).message);
  } finally {
    await world.close();
  }
});

test('a file where a folder should be is refused the same way; a real subfolder is used as it is', async () => {
  const world = new OneRelay();
  try {
    const alice = await world.peer('alice');
    const bob = await world.peer('bob');
    const src = await world.dir();
    const out = await world.dir();
    await mkdir(join(src, 'docs'));
    await writeFile(join(src, 'docs', 'a.txt'), 'a');
    await writeFile(join(out, 'docs'), 'a file, not a folder');
    const refused = await exchange(world, alice, bob, out, [join(src, 'docs')]);
    assertRefused(refused.error, refused.events, /docs is in the way: it is not a folder/);

    const out2 = await world.dir();
    await mkdir(join(out2, 'docs'));
    const fine = await exchange(world, alice, bob, out2, [join(src, 'docs')]);
    assert.equal(fine.error, undefined, String(fine.error));
    assert.equal(await readFile(join(out2, 'docs', 'a.txt'), 'utf8'), 'a');
  } finally {
    await world.close();
  }
});
