/**
 * Peer.listen with --count: it returns as soon as the count is reached, whichever peer's
 * message reached it and however many peers come after it in the relay.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OneRelay } from '../hostile/world.js';

test('listen with a count returns once it is reached, even when more peers come after the sender', async () => {
  const world = new OneRelay();
  try {
    const alice = await world.peer('alice');
    const bob = await world.peer('bob');
    // Peers are looked at in order: carol and dave come after alice.
    world.folder('carol');
    world.folder('dave');
    const listening = bob.listen({ count: 1, signal: world.signal, onMessage: () => {} });
    await alice.send('bob', ['one is enough']);
    assert.equal(await listening, 1);
    assert.equal(world.signal.aborted, false, 'listen returned only when the scenario was stopped');
  } finally {
    await world.close();
  }
});
