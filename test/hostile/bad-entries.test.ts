/**
 * Issue 12, "One bad entry must never stop or slow anyone else" and "Check sizes before
 * reading", on the in-memory relay: every read of another peer's file is bounded by what its
 * kind allows, a refused entry is that entry's problem alone, and a bad fixed-name file is not
 * opened again and again.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { tokenLength } from '../../src/crypto/fernet.js';
import { DmpError } from '../../src/errors.js';
import { MAX_CONTROL_FILE } from '../../src/node/envelope.js';
import type { ReadOptions, RelayRead, RelayStorage } from '../../src/relay/storage.js';
import type { InboxMessage } from '../../src/stream/receiver.js';
import { CHUNK_OVERHEAD } from '../../src/transfer/block-size.js';
import type { PeerId } from '../../src/util/peer-id.js';
import { OneRelay } from './world.js';

interface ReadCall {
  path: string;
  maxBytes: number | undefined;
}

/** A relay that notes every read: which file, and with what size limit. */
function recording(relay: RelayStorage, calls: ReadCall[]): RelayStorage {
  return new Proxy(relay, {
    get(target, property, receiver) {
      if (property === 'read') {
        return (owner: PeerId, dir: PeerId, name: string, options?: ReadOptions): Promise<RelayRead | undefined> => {
          calls.push({ path: `${owner}/${dir}/${name}`, maxBytes: options?.maxBytes });
          return target.read(owner, dir, name, options);
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const BLOCK = 1024;

test('every read of a file another peer wrote is bounded: control files at 1 MiB, chunks at a block and its framing', async () => {
  const world = new OneRelay();
  try {
    const calls: ReadCall[] = [];
    const alice = await world.peer('alice', { relay: recording(world.relay('alice'), calls) });
    const bob = await world.peer('bob', { relay: recording(world.relay('bob'), calls) });
    const src = await world.dir();
    const out = await world.dir();
    await writeFile(join(src, 'three-blocks.bin'), Buffer.alloc(3 * BLOCK + 5, 7));
    const got: InboxMessage[] = [];
    const listening = bob.listen({ count: 2, signal: world.signal, onMessage: (message) => got.push(message) });
    const receiving = bob.receiveFiles({ out, count: 1, signal: world.signal });
    await alice.send('bob', ['one', 'two'], { wait: true, signal: world.signal });
    const replies = await alice.ping('bob', { count: 1, intervalMs: 0, signal: world.signal });
    await alice.sendFiles('bob', [join(src, 'three-blocks.bin')], { blockSize: BLOCK, signal: world.signal });
    await Promise.all([listening, receiving]);
    assert.equal(got.length, 2);
    assert.equal(replies.length, 1);

    const kinds = new Set(calls.map((call) => /\/([a-z]+)[-.][^/]*$/.exec(call.path)?.[1]));
    for (const kind of ['msg', 'ack', 'ping', 'pong', 'offer', 'status', 'chunk']) {
      assert.ok(kinds.has(kind), `no ${kind} file was read: ${[...kinds].join(', ')}`);
    }
    const unbounded = calls.filter((call) => call.maxBytes === undefined);
    assert.deepEqual(unbounded, [], 'files were read with no size limit');
    const chunkLimit = tokenLength(BLOCK + CHUNK_OVERHEAD);
    for (const call of calls) {
      const limit = call.path.endsWith('.dfc') ? chunkLimit : MAX_CONTROL_FILE;
      assert.equal(call.maxBytes, limit, `${call.path} read with a limit of ${call.maxBytes}`);
    }
  } finally {
    await world.close();
  }
});

test('an oversized message is refused unread and asked for again; the copy published again is delivered', async () => {
  const world = new OneRelay();
  try {
    const alice = await world.peer('alice');
    const bob = await world.peer('bob');
    await alice.send('bob', ['first']);
    // A sync tool delivers garbage of 2 MiB under the message's name.
    world.replica.put('alice/bob/msg-000000000001.dmp', Buffer.alloc(2 * 1024 * 1024, 0x41), true);
    const got: string[] = [];
    const listening = bob.listen({ count: 1, signal: world.signal, onMessage: (message) => got.push(message.text) });
    // alice's loop acts on bob's ack, which asks for message 1 again.
    const serving = alice.serve({ signal: world.signal });
    assert.equal(await listening, 1);
    assert.deepEqual(got, ['first']);
    const refusals = world.log.filter((line) => line.peer === 'bob' && line.event === 'file-refused');
    assert.equal(refusals.length, 1, JSON.stringify(refusals));
    assert.match(String(refusals[0]?.fields.reason), /too large/);
    void serving;
  } finally {
    await world.close();
  }
});

test('a bad ack.dmp is opened again only when a change names it or at a rescan, and said once; its peer still flows', async () => {
  const world = new OneRelay();
  try {
    const calls: ReadCall[] = [];
    // No periodic rescan during the scenario: only events cause a look.
    const bob = await world.peer('bob', { relay: recording(world.relay('bob'), calls) });
    const carol = await world.peer('carol');
    world.put('carol', 'bob', 'ack.dmp', Buffer.alloc(MAX_CONTROL_FILE + 1, 0x41));
    // bob has sent to carol, so carol's ack matters to him: it is read on every look at her folder.
    await bob.send('carol', ['hello carol']);
    const got: string[] = [];
    const listening = bob.listen({ count: 20, signal: world.signal, onMessage: (message) => got.push(message.text) });
    const started = world.clock.now();
    for (let index = 1; index <= 20; index += 1) {
      await carol.send('bob', [`carol ${index}`]);
      await world.clock.sleep(10);
    }
    assert.equal(await listening, 20);
    const elapsed = world.clock.now() - started;
    assert.deepEqual(
      got,
      Array.from({ length: 20 }, (_, index) => `carol ${index + 1}`),
    );
    const ackReads = calls.filter((call) => call.path === 'carol/bob/ack.dmp').length;
    // One read, then one per rescan (every 50 ms on this relay) at most; never one per look.
    const rescans = Math.ceil(elapsed / 50) + 1;
    assert.ok(ackReads <= rescans + 1, `carol's bad ack.dmp was opened ${ackReads} times in ${elapsed} ms`);
    const said = world.log.filter((line) => line.event === 'file-refused' && line.fields.file === 'ack.dmp');
    assert.equal(said.length, 1, 'the refusal was not said exactly once');
  } finally {
    await world.close();
  }
});

test('the sender refuses a message over 512 KiB, or one whose sealed file would pass 1 MiB, naming the limit', async () => {
  const world = new OneRelay();
  try {
    const alice = await world.peer('alice');
    await world.peer('bob');
    const usage = (pattern: RegExp) => (error: unknown) => {
      assert.ok(error instanceof DmpError && error.code === 'USAGE', String(error));
      assert.match(error.message, pattern);
      return true;
    };
    await assert.rejects(alice.send('bob', ['x'.repeat(512 * 1024 + 1)]), usage(/at most 512 KiB/));
    await assert.rejects(alice.send('bob', ['fine', 'y'.repeat(600 * 1024)]), usage(/message 2 .*512 KiB/));
    // 300 KiB of a character JSON writes as six: under 512 KiB of text, over 1 MiB sealed.
    await assert.rejects(alice.send('bob', ['\u0001'.repeat(300 * 1024)]), usage(/at most 1 MiB/));
    assert.deepEqual(world.names('alice', 'bob'), [], 'something was published');
    // Just under the limit goes.
    assert.deepEqual(await alice.send('bob', ['z'.repeat(512 * 1024)]), [1]);
  } finally {
    await world.close();
  }
});
