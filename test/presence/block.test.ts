/**
 * Blocking covers every ingest path (a messenger once forgot its group path): direct messages
 * and broadcasts are acknowledged and dropped, pings go unanswered, offers are left alone,
 * presence is hidden; the blocked peer gets no distinct error; unblocking replays nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { InboxMessage } from '../../src/stream/receiver.js';
import { ALICE, BOB, World } from '../support/three-peers.js';

describe('block', () => {
  test('nothing of a blocked peer reaches the user, on any path, and unblocking replays nothing', async () => {
    const world = await new World().init();
    const dir = await mkdtemp(join(tmpdir(), 'dmp-block-'));
    try {
      const alice = await world.open(ALICE);
      const bob = await world.open(BOB);
      assert.equal(await bob.block('alice'), true);
      assert.deepEqual(await bob.blocked(), ['alice']);
      const shown: InboxMessage[] = [];
      const stop = new AbortController();
      const listening = bob.listen({ signal: stop.signal, onMessage: (m) => shown.push(m) });
      const beat = new AbortController();
      const beating = alice.publishPresence(beat.signal, 30_000);

      // Messages: acknowledged (alice's files go) and dropped; she sees a normal delivery.
      assert.deepEqual(await alice.send('bob', ['one', 'two'], { wait: true, timeoutMs: 60_000 }), [1, 2]);
      // Broadcasts: dropped.
      await alice.broadcast(['to all']);
      // Pings: unanswered, as if nobody ran.
      const replies = await alice.ping('bob', { count: 1, timeoutMs: 5000 });
      assert.deepEqual(replies, []);
      // Files: the offer is left alone.
      const source = join(dir, 'gift.bin');
      await writeFile(source, Buffer.alloc(5000, 7));
      const out = join(dir, 'out');
      const receiving = bob.receiveFiles({ out, count: 1, signal: stop.signal });
      receiving.catch(() => {});
      const sending = new AbortController();
      const sent = alice.sendFiles('bob', [source], { signal: sending.signal });
      sent.catch(() => {});
      await world.clock.sleep(20_000);
      await world.sync.idle();
      assert.equal(shown.length, 0, 'something of a blocked peer was shown');
      assert.equal(
        (await bob.who()).some((entry) => entry.peer === 'alice'),
        false,
        'a blocked peer shown by who',
      );
      assert.equal(
        [...world.replicas.bob.files.keys()].some((path) => path.startsWith('bob/alice/status-')),
        false,
        'an offer of a blocked peer was answered',
      );

      // Unblocked: what comes now arrives; what was dropped is not replayed.
      sending.abort();
      assert.equal(await bob.block('alice', false), true);
      await alice.send('bob', ['three']);
      for (let tries = 0; tries < 60 && shown.length === 0; tries += 1) await world.clock.sleep(1000);
      assert.deepEqual(
        shown.map((m) => m.text),
        ['three'],
      );
      stop.abort();
      beat.abort();
      await Promise.allSettled([listening, beating, receiving, sent]);
    } finally {
      await world.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
