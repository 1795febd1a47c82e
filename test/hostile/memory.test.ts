/**
 * Issue 12, "Memory stays bounded": `dmp listen` with 100,000 waiting messages peaked at
 * 1.4 GB. The causes, each kept from coming back here (the figure itself is the bench row
 * `npm run bench -- --only listen-rss`): a watch per file in the relay folder, a listing of the
 * whole backlog for every batch of 1,000, and journals read whole where a cursor or the last
 * line suffices.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { Journal } from '../../src/local/journal.js';
import { FolderRelay } from '../../src/relay/folder-relay.js';
import type { RelayStorage } from '../../src/relay/storage.js';
import type { PeerId } from '../../src/util/peer-id.js';
import { makeTempDir, removeTree } from '../support/files.js';
import { waitFor } from '../support/wait.js';
import { OneRelay } from './world.js';

test('the watch of a relay folder holding 5,000 files keeps one watch per folder, none per file', async () => {
  const root = await makeTempDir('dmp-hostile-watch-');
  const original = fs.watch;
  let watches = 0;
  fs.watch = ((...args: Parameters<typeof fs.watch>) => {
    watches += 1;
    return original(...args);
  }) as typeof fs.watch;
  syncBuiltinESMExports();
  const controller = new AbortController();
  try {
    const backlog = join(root, 'alice', 'bob');
    await mkdir(backlog, { recursive: true });
    for (let seq = 1; seq <= 5000; seq += 1) {
      await writeFile(join(backlog, `msg-${String(seq).padStart(12, '0')}.dmp`), 'x');
    }
    const bob = new FolderRelay({ root, self: 'bob' as PeerId });
    await bob.open();
    const seen: string[] = [];
    bob.watch({ signal: controller.signal, onChange: (change) => change?.name && seen.push(change.name) });
    // The watch is live once it reports a new file; by then any per-file watching has begun.
    let seq = 5000;
    await waitFor('the watch to report a new file', async () => {
      seq += 1;
      await writeFile(join(backlog, `msg-${String(seq).padStart(12, '0')}.dmp`), 'x');
      await new Promise((resolve) => setTimeout(resolve, 100));
      return seen.length > 0;
    });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.ok(watches <= 10, `${watches} watches for 3 folders and 5,000 files`);
  } finally {
    controller.abort();
    fs.watch = original;
    syncBuiltinESMExports();
    await removeTree(root);
  }
});

test('a backlog of 20,000 messages is delivered in bounded batches from one listing, not one per batch', async () => {
  const world = new OneRelay(120_000);
  try {
    const lists: string[] = [];
    const recording = (relay: RelayStorage): RelayStorage =>
      new Proxy(relay, {
        get(target, property, receiver) {
          if (property === 'list') {
            return (owner: PeerId, dir: PeerId) => {
              lists.push(`${owner}/${dir}`);
              return target.list(owner, dir);
            };
          }
          const value = Reflect.get(target, property, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    const alice = await world.peer('alice', { quota: 1024 * 1024 * 1024 });
    // bob's relay rescans once a minute of the clock: every listing below comes from his loop.
    const bob = await world.peer('bob', { relay: recording(world.relay('bob', { rescanMs: 60_000 })) });
    const count = 20_000;
    await alice.send(
      'bob',
      Array.from({ length: count }, (_, index) => String(index + 1)),
    );
    lists.length = 0;
    let expected = 1;
    let outOfOrder = 0;
    const shown = await bob.listen({
      count,
      signal: world.signal,
      onMessage: (message) => {
        if (message.text !== String(expected)) outOfOrder += 1;
        expected += 1;
      },
    });
    assert.equal(shown, count);
    assert.equal(outOfOrder, 0);
    const listings = lists.filter((folder) => folder === 'alice/bob').length;
    assert.ok(listings <= 3, `alice's folder of ${count} messages was listed ${listings} times`);
  } finally {
    await world.close();
  }
});

test('a journal is read after a cursor in bounded steps, and its last record from the end', async () => {
  const dir = await makeTempDir('dmp-hostile-journal-');
  try {
    const journal = new Journal<{ seq: number; text: string }>(join(dir, 'inbox.jsonl'));
    for (let batch = 0; batch < 10; batch += 1) {
      await journal.append(
        Array.from({ length: 1000 }, (_, index) => ({ seq: batch * 1000 + index + 1, text: 'x'.repeat(50) })),
      );
    }
    let offset = 0;
    let records = 0;
    let steps = 0;
    for (;;) {
      const read = await journal.read(offset, { maxBytes: 64 * 1024 });
      if (read.records.length === 0) break;
      assert.ok(read.size - offset <= 64 * 1024, `a step read ${read.size - offset} bytes`);
      records += read.records.length;
      offset = read.size;
      steps += 1;
    }
    assert.equal(records, 10_000);
    assert.ok(steps > 5, `${steps} steps`);
    // A line longer than the step is still read whole.
    await journal.append([{ seq: 10_001, text: 'y'.repeat(200_000) }]);
    const long = await journal.read(offset, { maxBytes: 1024 });
    assert.equal(long.records[0]?.seq, 10_001);
    assert.equal((await journal.last())?.seq, 10_001);
    // A torn last line is not a record.
    fs.appendFileSync(journal.path, '{"seq":10002,"te');
    assert.equal((await journal.last())?.seq, 10_001);
  } finally {
    await removeTree(dir);
  }
});
