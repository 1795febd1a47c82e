/**
 * Issue 12, "A full relay": a sender whose publish meets a full disk under the relay waits (and
 * says so once), retrying with a back-off on the injected clock, and carries on when space
 * returns, as the daemon always did: a full relay is a pause, not a failure.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { WaitReason } from '../../src/node/quota.js';
import type { TransferEvent } from '../../src/transfer/events.js';
import { OneRelay } from './world.js';

test('a file sent while the relay is full waits, says so once, and arrives when space returns', async () => {
  const world = new OneRelay();
  try {
    const alice = await world.peer('alice');
    const bob = await world.peer('bob');
    const src = await world.dir();
    const out = await world.dir();
    await writeFile(join(src, 'big.bin'), Buffer.alloc(10 * 1024, 3));
    const receiving = bob.receiveFiles({ out, count: 1, signal: world.signal });
    world.replica.full = true;
    const events: TransferEvent[] = [];
    let failure: unknown;
    const sending = alice
      .sendFiles('bob', [join(src, 'big.bin')], {
        blockSize: 1024,
        signal: world.signal,
        onEvent: (event) => events.push(event),
      })
      .catch((error: unknown) => {
        failure = error;
      });
    const full = (event: TransferEvent) =>
      event.event === 'waiting' && event.reason === 'relay full: waiting for space';
    await world.until('a waiting event for the full relay', () => events.some(full) || failure !== undefined);
    // Ten minutes of a full relay: retries go on, on the clock, and the send neither fails nor
    // says it again.
    await world.clock.sleep(10 * 60_000);
    assert.equal(failure, undefined, `the send failed: ${String(failure)}`);
    assert.equal(events.filter(full).length, 1, JSON.stringify(events));
    assert.ok(!events.some((event) => event.event === 'done'));
    world.replica.full = false;
    await sending;
    await receiving;
    assert.equal(failure, undefined, `the send failed: ${String(failure)}`);
    assert.ok(
      events.some((event) => event.event === 'done'),
      JSON.stringify(events),
    );
    assert.deepEqual(await readFile(join(out, 'big.bin')), Buffer.alloc(10 * 1024, 3));
  } finally {
    await world.close();
  }
});

test('messages sent while the relay is full wait, and go when space returns', async () => {
  const world = new OneRelay();
  try {
    const alice = await world.peer('alice');
    const bob = await world.peer('bob');
    world.replica.full = true;
    const reasons: WaitReason[] = [];
    let done = false;
    const sending = alice
      .send('bob', ['one', 'two'], { signal: world.signal, onWaiting: (_held, reason) => reasons.push(reason) })
      .finally(() => {
        done = true;
      });
    await world.until('the sender to wait for space', () => reasons.length > 0 || done);
    await world.clock.sleep(5 * 60_000);
    assert.deepEqual(reasons, ['relay-full']);
    assert.equal(done, false, 'the send ended while the relay was full');
    world.replica.full = false;
    assert.deepEqual(await sending, [1, 2]);
    const got: string[] = [];
    await bob.listen({ count: 2, signal: world.signal, onMessage: (message) => got.push(message.text) });
    assert.deepEqual(got, ['one', 'two']);
  } finally {
    await world.close();
  }
});
