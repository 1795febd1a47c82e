/**
 * Broadcast through a simulated sync on a manual clock: every reader gets each broadcast once,
 * in order, marked as such; the author deletes them once every member acknowledged, or after
 * the retention period; a late reader gets what is retained; a forgery is refused.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encryptText, parseKey } from '../../src/crypto/fernet.js';
import type { InboxMessage } from '../../src/stream/receiver.js';
import { ALICE, BOB, CAROL, World } from '../support/three-peers.js';

const broadcastFiles = (world: World) =>
  [...world.replicas.alice.files.keys()].filter((path) => /^alice\/bcast-\d{12}\.dmp$/.test(path)).length;

describe('broadcast', () => {
  test('each reader gets every broadcast once and in order; the author collects them once all acknowledged', async () => {
    const world = await new World().init();
    try {
      const alice = await world.open(ALICE);
      const stop = new AbortController();
      const serving = alice.serve({ signal: stop.signal });
      assert.deepEqual(await alice.broadcast(['one', 'two', 'three']), [1, 2, 3]);
      assert.deepEqual(await alice.broadcast(['four', 'five']), [4, 5]);
      const bob = await world.open(BOB);
      const toBob: InboxMessage[] = [];
      assert.equal(
        await bob.listen({ count: 5, timeoutMs: 60_000, signal: world.signal, onMessage: (m) => toBob.push(m) }),
        5,
      );
      assert.deepEqual(
        toBob.map((m) => `${m.from} ${m.seq} ${m.text} ${m.broadcast}`),
        ['alice 1 one true', 'alice 2 two true', 'alice 3 three true', 'alice 4 four true', 'alice 5 five true'],
      );
      // carol has not read them yet: they stay for her.
      await world.clock.sleep(5000);
      await world.sync.idle();
      assert.equal(broadcastFiles(world), 5);
      const carol = await world.open(CAROL);
      const toCarol: InboxMessage[] = [];
      assert.equal(
        await carol.listen({ count: 5, timeoutMs: 60_000, signal: world.signal, onMessage: (m) => toCarol.push(m) }),
        5,
      );
      assert.deepEqual(
        toCarol.map((m) => m.text),
        ['one', 'two', 'three', 'four', 'five'],
      );
      // Both acknowledged: alice deletes them all.
      let left = broadcastFiles(world);
      for (let tries = 0; tries < 60 && left > 0; tries += 1) {
        await world.clock.sleep(1000);
        await world.sync.idle();
        left = broadcastFiles(world);
      }
      assert.equal(left, 0);
      // Nothing is shown twice after a restart of the reader.
      const again = await world.open(BOB);
      assert.deepEqual(await again.broadcast(['from bob']), [1]);
      stop.abort();
      await serving;
    } finally {
      await world.close();
    }
  });

  test('a forged broadcast is refused and a reader that never acknowledges does not keep them past the retention', async () => {
    const world = await new World().init();
    try {
      // A retention of two minutes here (7 days by default) keeps the manual clock's work small.
      const alice = await world.open(ALICE, { broadcastRetentionMs: 120_000 });
      const stop = new AbortController();
      const serving = alice.serve({ signal: stop.signal });
      // carol forges alice's broadcast 1 under the relay key, without alice's signature.
      const forged = { v: 2, from: 'alice', seq: 1, sentAt: world.clock.now(), body: 'forged', sig: 'A'.repeat(86) };
      world.replicas.carol.put(
        'alice/bcast-000000000001.dmp',
        Buffer.from(encryptText(parseKey(world.key), Buffer.from(JSON.stringify(forged)))),
        true,
      );
      await world.sync.idle();
      const bob = await world.open(BOB);
      const toBob: InboxMessage[] = [];
      const listening = bob.listen({
        count: 1,
        timeoutMs: 120_000,
        signal: world.signal,
        onMessage: (m) => toBob.push(m),
      });
      listening.catch(() => {});
      await world.clock.sleep(3000);
      assert.equal(toBob.length, 0, 'a forged broadcast was delivered');
      // alice's real broadcast 1 replaces the forgery.
      assert.deepEqual(await alice.broadcast(['genuine']), [1]);
      assert.equal(await listening, 1);
      assert.deepEqual(
        toBob.map((m) => m.text),
        ['genuine'],
      );
      // carol never reads: after the retention period alice deletes it anyway.
      await world.clock.sleep(150_000);
      await alice.broadcast(['later']);
      const bobAgain: InboxMessage[] = [];
      assert.equal(
        await bob.listen({ count: 1, timeoutMs: 60_000, signal: world.signal, onMessage: (m) => bobAgain.push(m) }),
        1,
      );
      let old = true;
      for (let tries = 0; tries < 60 && old; tries += 1) {
        await world.clock.sleep(1000);
        await world.sync.idle();
        old = world.replicas.alice.files.has('alice/bcast-000000000001.dmp');
      }
      assert.equal(old, false, 'a broadcast older than the retention period was kept');
      stop.abort();
      await serving;
    } finally {
      await world.close();
    }
  });
});
