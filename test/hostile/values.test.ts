/**
 * Issue 12, "Crashes and bad values accepted": authenticated files with absurd values (a field
 * nested 10,000 deep, a modification time of 1e300) are refused or made harmless before anything
 * acts on them; no service stops.
 */
import assert from 'node:assert/strict';
import { stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeJsonFile } from '../../src/local/files.js';
import type { InboxMessage } from '../../src/stream/receiver.js';
import type { TransferEvent } from '../../src/transfer/events.js';
import { incomingStatePath } from '../../src/transfer/incoming-state.js';
import { OneRelay } from './world.js';

test('a ping with a field nested 10,000 deep stops nobody: listen goes on and delivers the next message', async () => {
  const world = new OneRelay();
  try {
    const alice = await world.peer('alice');
    const bob = await world.peer('bob');
    world.folder('carol');
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const nonce = '00000000000000aa';
    world.put(
      'carol',
      'bob',
      `ping-${nonce}.dmp`,
      world.sealText(
        `{"v":2,"type":"ping","from":"carol","to":"bob","seq":1,"sentAt":${world.clock.now()},"body":{"nonce":"${nonce}"},"x":${deep}}`,
      ),
    );
    const got: InboxMessage[] = [];
    const listening = bob.listen({ count: 1, signal: world.signal, onMessage: (message) => got.push(message) });
    await world.clock.sleep(3000);
    await alice.send('bob', ['after the deep ping']);
    assert.equal(await listening, 1);
    assert.deepEqual(
      got.map((message) => message.text),
      ['after the deep ping'],
    );
    assert.ok(!world.names('bob', 'carol').some((name) => name.startsWith('pong-')), 'the deep ping was answered');
  } finally {
    await world.close();
  }
});

test('an mtime of 1e300 kept from before offers were checked never reaches utimes: the file arrives, time unset', async () => {
  const world = new OneRelay();
  try {
    const alice = await world.peer('alice');
    const bob = await world.peer('bob');
    const src = await world.dir();
    const out = await world.dir();
    const path = join(src, 'old.txt');
    await writeFile(path, 'kept from an older version');
    const mtime = new Date('2020-02-02T02:02:02Z');
    await utimes(path, mtime, mtime);
    const info = await stat(path);
    // Both sides remember the transfer as an earlier version stored it: alice's plan, and bob's
    // state holding the offer as it came, mtimeMs 1e300 and all.
    const tid = '1e3001e3001e3001';
    const offer = { tid, name: 'old.txt', size: info.size, mtimeMs: 1e300, blockSize: 1024, count: 1 };
    await writeJsonFile(alice.home.transfers('out', `${tid}.json`), {
      tid,
      peer: 'bob',
      path,
      name: 'old.txt',
      size: info.size,
      mtimeMs: info.mtimeMs,
      blockSize: 1024,
      createdAt: world.clock.now(),
    });
    await writeJsonFile(incomingStatePath(bob.home, 'alice' as never, tid), {
      tid,
      peer: 'alice',
      offer,
      out,
      parts: ['old.txt'],
      partial: join(out, `.old.txt.${tid}.dftp-part`),
      have: [],
      state: 'receiving',
      startedAt: world.clock.now(),
    });
    const events: TransferEvent[] = [];
    const receiving = bob.receiveFiles({ out, count: 1, signal: world.signal, onEvent: (event) => events.push(event) });
    const [sent] = await alice.sendFiles('bob', [path], { blockSize: 1024, signal: world.signal });
    await receiving;
    assert.equal(sent?.tid, tid, 'the transfer kept from before was not the one resumed');
    assert.ok(
      events.some((event) => event.event === 'done'),
      JSON.stringify(events),
    );
    const received = await stat(join(out, 'old.txt'));
    assert.equal(received.size, info.size);
    assert.ok(received.mtimeMs < Date.UTC(2200, 0, 1), 'an absurd time was set');
  } finally {
    await world.close();
  }
});
