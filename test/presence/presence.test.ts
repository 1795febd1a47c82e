/**
 * Presence through a simulated sync on a manual clock: a heartbeat makes a peer online, a clean
 * stop makes it offline, a peer that vanishes drops off by itself after two intervals plus the
 * grace, `who --since` survives a restart, and a forged presence is refused.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encryptText, parseKey } from '../../src/crypto/fernet.js';
import { PRESENCE_GRACE_MS } from '../../src/presence/presence.js';
import { ALICE, BOB, CAROL, World } from '../support/three-peers.js';

const INTERVAL = 30_000;

describe('presence', () => {
  test('online while beating, offline on a clean stop, and seen since then after a restart', async () => {
    const world = await new World().init();
    try {
      const alice = await world.open(ALICE);
      const bob = await world.open(BOB);
      const stop = new AbortController();
      const beating = alice.publishPresence(stop.signal, INTERVAL);
      // A second for the first beat to be written and carried across.
      await world.clock.sleep(1000);
      await world.sync.idle();
      assert.deepEqual(
        (await bob.who()).map((entry) => `${entry.peer} ${entry.online}`),
        ['alice true', 'carol false'],
      );
      // Beats keep her online for as long as she runs.
      await world.clock.sleep(5 * INTERVAL);
      await world.sync.idle();
      assert.equal((await bob.who()).find((entry) => entry.peer === 'alice')?.online, true);
      stop.abort();
      await beating;
      await world.clock.sleep(1000);
      await world.sync.idle();
      const after = (await bob.who()).find((entry) => entry.peer === 'alice');
      assert.equal(after?.online, false);
      assert.ok(after?.lastSeen, 'a peer that went offline has a last-seen time');

      // A new process of bob (the same home) still knows when alice was around.
      await world.clock.sleep(5 * 60_000);
      const again = await world.open(BOB);
      const now = world.clock.now();
      assert.deepEqual(
        (await again.whoSince(now - 10 * 60_000)).map((entry) => entry.peer),
        ['alice'],
      );
      assert.deepEqual(await again.whoSince(now - 60_000), []);
    } finally {
      await world.close();
    }
  });

  test('a peer that vanishes without a goodbye drops off by itself after two intervals and the grace', async () => {
    const world = await new World().init();
    try {
      const alice = await world.open(ALICE);
      const bob = await world.open(BOB);
      const stop = new AbortController();
      const beating = alice.publishPresence(stop.signal, INTERVAL);
      // A second for the first beat to be written and carried across.
      await world.clock.sleep(1000);
      await world.sync.idle();
      assert.equal((await bob.who()).find((entry) => entry.peer === 'alice')?.online, true);
      // alice's machine loses the relay (and later its power): no beat, no goodbye reaches anyone.
      world.replicas.alice.readOnly = true;
      const vanished = world.clock.now();
      let droppedAt: number | undefined;
      while (droppedAt === undefined && world.clock.now() - vanished < 10 * INTERVAL) {
        await world.clock.sleep(1000);
        if (!(await bob.who()).find((entry) => entry.peer === 'alice')?.online) droppedAt = world.clock.now();
      }
      assert.ok(droppedAt, 'alice never dropped off');
      const after = droppedAt - vanished;
      assert.ok(after <= 2 * INTERVAL + PRESENCE_GRACE_MS + 1000, `dropped after ${after} ms`);
      assert.ok(after >= INTERVAL + PRESENCE_GRACE_MS, `dropped too early, after ${after} ms`);
      stop.abort();
      await beating;
    } finally {
      await world.close();
    }
  });

  test('a presence not signed by the pinned identity is refused; messages received count as seen', async () => {
    const world = await new World().init();
    try {
      const bob = await world.open(BOB);
      // carol writes a presence claiming alice, under the relay key, into alice's folder in her copy.
      const forged = {
        v: 2,
        id: 'alice',
        state: 'online',
        since: world.clock.now(),
        counter: 99,
        intervalMs: INTERVAL,
        sentAt: world.clock.now(),
        sig: 'A'.repeat(86),
      };
      world.replicas.carol.put(
        'alice/presence.dmp',
        Buffer.from(encryptText(parseKey(world.key), Buffer.from(JSON.stringify(forged)))),
        true,
      );
      await world.sync.idle();
      assert.equal((await bob.who()).find((entry) => entry.peer === 'alice')?.online, false);
      await bob.heard(CAROL);
      const since = world.clock.now() - 1000;
      assert.deepEqual(
        (await bob.whoSince(since)).map((entry) => `${entry.peer} ${entry.online}`),
        ['carol false'],
      );
    } finally {
      await world.close();
    }
  });
});
