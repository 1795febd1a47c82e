/**
 * Issue 12, "A transfer that completed and was withdrawn, its files put back unchanged, is
 * received again as `name (1)`": a receiver remembers the transfers it finished (in DMP_HOME,
 * so across restarts) and answers a replay with the verdict it had, receiving nothing again.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseKey } from '../../src/crypto/fernet.js';
import { silentLogger } from '../../src/log.js';
import { AuthGuard } from '../../src/node/auth-guard.js';
import { MAX_CONTROL_FILE } from '../../src/node/envelope.js';
import { openEnvelope } from '../../src/node/open.js';
import { SharedKeySealer } from '../../src/node/seal.js';
import { STATUS } from '../../src/transfer/control.js';
import type { TransferEvent } from '../../src/transfer/events.js';
import { OneRelay } from './world.js';

test('a finished transfer put back unchanged after it was withdrawn is not received again, even after a restart', async () => {
  const world = new OneRelay();
  try {
    const alice = await world.peer('alice');
    const first = await world.peer('bob');
    const src = await world.dir();
    const out = await world.dir();
    await writeFile(join(src, 'report.txt'), 'the report, once');
    // What alice publishes, as a sync tool or a hostile peer could keep a copy of it.
    const copies = new Map<string, Buffer>();
    const unwatch = world.replica.subscribe((path, local) => {
      const stored = world.replica.files.get(path);
      if (local && stored && /^alice\/bob\/(offer|chunk)-/.test(path)) copies.set(path, Buffer.from(stored.data));
    });
    const receiving = first.receiveFiles({ out, count: 1, signal: world.signal });
    const [sent] = await alice.sendFiles('bob', [join(src, 'report.txt')], { blockSize: 1024, signal: world.signal });
    await receiving;
    unwatch();
    assert.ok(sent);
    assert.deepEqual(world.names('alice', 'bob'), [], 'alice did not withdraw');
    assert.deepEqual(world.names('bob', 'alice'), [], 'bob kept his status');

    // The same files come back, unchanged; bob runs again in a new process (same DMP_HOME).
    for (const [path, data] of copies) world.replica.put(path, data, false);
    const bob = await world.peer('bob', { home: first.home.root });
    const events: TransferEvent[] = [];
    const stop = new AbortController();
    world.signal.addEventListener('abort', () => stop.abort(), { once: true });
    const again = bob.receiveFiles({ out, signal: stop.signal, onEvent: (event) => events.push(event) });
    const status = `bob/alice/status-${sent.tid}.dmp`;
    await world.until('bob to answer the replay', () => world.replica.files.has(status));
    await world.clock.sleep(5000);
    assert.deepEqual((await readdir(out)).sort(), ['report.txt'], 'the file was received a second time');
    assert.equal(await readFile(join(out, 'report.txt'), 'utf8'), 'the report, once');
    assert.ok(
      events.some((event) => event.event === 'skipped' && /already received/.test(event.reason)),
      JSON.stringify(events),
    );
    assert.ok(!events.some((event) => event.event === 'offer' || event.event === 'done'), JSON.stringify(events));

    // The answer is the verdict it had: a sender that is really there withdraws it as before.
    const read = await world.relay('alice').read('bob' as never, 'alice' as never, `status-${sent.tid}.dmp`, {
      maxBytes: MAX_CONTROL_FILE,
    });
    assert.ok(read);
    // Opened with alice and bob's pair key, as alice's own sealer would.
    const pairKey = parseKey(await alice.pairKey('bob'));
    const opened = openEnvelope(
      {
        self: 'alice' as never,
        sealer: new SharedKeySealer({ key: pairKey, now: () => world.clock.now(), worker: false }),
        guard: new AuthGuard({ clock: world.clock, logger: silentLogger }),
        logger: silentLogger,
      },
      'bob' as never,
      `status-${sent.tid}.dmp`,
      read,
      { kind: STATUS },
    );
    assert.equal(opened.envelope?.body.state, 'complete');
    assert.equal(opened.envelope?.body.sha256, sent.sha256);

    // Withdrawn once more: bob drops his answer.
    for (const path of copies.keys()) world.replica.delete(path, false);
    await world.until('bob to drop his status', () => !world.replica.files.has(status));
    stop.abort();
    await again;
  } finally {
    await world.close();
  }
});
