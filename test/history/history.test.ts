/**
 * dmp history through the simulated sync: what was received and sent, direct and broadcast,
 * oldest first, kept after listen showed it and after the outgoing log was cleared, with the
 * peer, since and limit filters, and nothing of a blocked peer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HistoryEntry } from '../../src/history/history.js';
import { ALICE, BOB, CAROL, World } from '../support/three-peers.js';

const brief = (entries: readonly HistoryEntry[]) =>
  entries.map(
    (entry) => `${entry.direction} ${entry.from}>${entry.to}${entry.broadcast ? ' (all)' : ''}: ${entry.text}`,
  );

test('history keeps both sides of every conversation, after listen showed it', async () => {
  const world = await new World().init();
  try {
    const alice = await world.open(ALICE);
    const bob = await world.open(BOB);
    const carol = await world.open(CAROL);
    await alice.send(BOB, ['hi bob'], { wait: false });
    await world.clock.sleep(1000);
    await alice.broadcast(['hello all']);
    await world.clock.sleep(1000);
    await carol.send(BOB, ['bob, it is carol']);
    await world.clock.sleep(1000);
    const shown = await bob.listen({ count: 3, timeoutMs: 60_000, signal: world.signal, onMessage: () => {} });
    assert.equal(shown, 3);
    await world.clock.sleep(1000);
    const since = world.clock.now();
    await bob.send(ALICE, ['hi alice']);
    assert.equal(await alice.listen({ count: 1, timeoutMs: 60_000, signal: world.signal, onMessage: () => {} }), 1);

    // Bob's side: all of it, in the order it arrived or left.
    const all = await bob.history();
    assert.deepEqual(brief(all).sort(), [
      'in alice>all (all): hello all',
      'in alice>bob: hi bob',
      'in carol>bob: bob, it is carol',
      'out bob>alice: hi alice',
    ]);
    assert.equal(all.at(-1)?.text, 'hi alice');
    // The conversation with alice: hers, to bob and to all, and bob's to her.
    assert.deepEqual(brief(await bob.history({ peer: 'alice' })).sort(), [
      'in alice>all (all): hello all',
      'in alice>bob: hi bob',
      'out bob>alice: hi alice',
    ]);
    assert.deepEqual(brief(await bob.history({ since })), ['out bob>alice: hi alice']);
    assert.deepEqual(brief(await bob.history({ limit: 1 })), ['out bob>alice: hi alice']);

    // Alice's side: what she sent, and what she received once listen showed it.
    const mine = brief(await alice.history({ peer: 'bob' }));
    assert.ok(mine.includes('out alice>bob: hi bob'), mine.join('\n'));
    assert.ok(mine.includes('out alice>all (all): hello all'), mine.join('\n'));
    assert.ok(mine.includes('in bob>alice: hi alice'), mine.join('\n'));

    // A blocked peer is gone from history too.
    await bob.block('carol');
    assert.ok(!brief(await bob.history()).some((line) => line.includes('carol')));
  } finally {
    await world.close();
  }
});
