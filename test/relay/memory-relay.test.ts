import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryRelay, RelayReplica, SimulatedSync, type SimulatedSyncOptions } from '../../src/relay/memory-relay.js';
import type { RelayChange, RelayStorage } from '../../src/relay/storage.js';
import { waitFor } from '../support/wait.js';
import { ALICE, BOB, runStorageContract } from './storage-contract.js';

runStorageContract('MemoryRelay on one RelayReplica', async () => {
  const replica = new RelayReplica();
  return {
    alice: new MemoryRelay(replica, ALICE, { rescanMs: 20 }),
    bob: new MemoryRelay(replica, BOB, { rescanMs: 20 }),
    plant: async (path, data) => {
      // Not `local`: the file appears the way a sync tool's would.
      replica.put(path, data, false);
    },
    exists: async (path) => replica.files.has(path),
    cleanup: async () => {},
  };
});

/**
 * The same contract through a simulated sync engine: alice writes on replica A, bob on replica
 * B, and every write crosses late, in random order, twice, beside temp files and conflict
 * copies. A sync engine is eventually consistent, so each read waits until the engine is idle:
 * what the contract then asks of the storage must hold on either side.
 */
runStorageContract('MemoryRelay on two replicas through SimulatedSync', async () => {
  const a = new RelayReplica();
  const b = new RelayReplica();
  const sync = new SimulatedSync([a, b], {
    seed: 7007,
    maxDelayMs: 5,
    duplicateRate: 0.3,
    tempFileRate: 0.3,
    conflictRate: 0.2,
  });
  const settled = <T extends RelayStorage>(storage: T): T =>
    new Proxy(storage, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function') return value;
        if (!['peers', 'list', 'read', 'readShared', 'usage'].includes(String(property))) return value.bind(target);
        return async (...args: unknown[]) => {
          await sync.idle();
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  return {
    alice: settled(new MemoryRelay(a, ALICE, { rescanMs: 20 })),
    bob: settled(new MemoryRelay(b, BOB, { rescanMs: 20 })),
    plant: async (path, data) => {
      // A file no peer wrote appears on every machine, the way a sync tool's would.
      a.put(path, data, false);
      b.put(path, data, false);
    },
    exists: async (path) => {
      await sync.idle();
      return a.files.has(path) && b.files.has(path);
    },
    cleanup: async () => sync.stop(),
  };
});

describe('MemoryRelay', () => {
  test('a read-only replica refuses open, publish and remove with RELAY_READ_ONLY', async () => {
    const replica = new RelayReplica();
    const alice = new MemoryRelay(replica, ALICE);
    replica.readOnly = true;
    const readOnly = { code: 'RELAY_READ_ONLY' };
    await assert.rejects(alice.open(), readOnly);
    await assert.rejects(alice.publish(BOB, [{ name: 'ack.dmp', data: 'x' }]), readOnly);
    await assert.rejects(alice.remove(BOB, ['ack.dmp']), readOnly);
    assert.equal(replica.files.size, 0);
  });
});

/** Two replicas joined by a SimulatedSync; alice writes on A, bob on B. */
function joined(options: SimulatedSyncOptions) {
  const a = new RelayReplica();
  const b = new RelayReplica();
  const sync = new SimulatedSync([a, b], options);
  return { a, b, sync, alice: new MemoryRelay(a, ALICE), bob: new MemoryRelay(b, BOB) };
}

/** Resolves like `promise`, or fails the test after `ms` (a bounded wait, not a timing check). */
async function within<T>(what: string, promise: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new assert.AssertionError({ message: `timed out waiting for ${what}` })), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const MSG = /^alice\/bob\/msg-\d{12}\.dmp$/;

describe('SimulatedSync', () => {
  test('a file published on replica A shows up on B with the same content and version (seed 11)', async () => {
    const { a, sync, alice, bob } = joined({ seed: 11, maxDelayMs: 20 });
    try {
      await alice.open();
      await bob.open();
      await alice.publish(BOB, [{ name: 'msg-000000000001.dmp', data: 'over the sync' }]);
      await waitFor(
        'the file on replica B',
        async () => (await bob.read(ALICE, BOB, 'msg-000000000001.dmp')) !== undefined,
      );
      const onB = await bob.read(ALICE, BOB, 'msg-000000000001.dmp');
      assert.equal(onB?.data.toString(), 'over the sync');
      assert.equal(onB?.version, String(a.files.get('alice/bob/msg-000000000001.dmp')?.version));
      assert.deepEqual(await bob.list(ALICE, BOB), ['msg-000000000001.dmp']);
      assert.ok((await bob.peers()).includes(ALICE));
      // And back: bob's ack reaches alice.
      await bob.publish(ALICE, [{ name: 'ack.dmp', data: 'ack' }]);
      await waitFor('the ack on replica A', async () => (await alice.read(BOB, ALICE, 'ack.dmp')) !== undefined);
      await within('the sync to go idle', sync.idle());
      assert.equal(sync.stats.delivered, 2);
    } finally {
      sync.stop();
    }
  });

  test('a peer watching replica B is told about a delivery (seed 12)', async () => {
    const { sync, alice, bob } = joined({ seed: 12, maxDelayMs: 20 });
    const controller = new AbortController();
    const changes: RelayChange[] = [];
    try {
      bob.watch({ signal: controller.signal, onChange: (change) => change && changes.push(change) });
      await alice.publish(BOB, [{ name: 'msg-000000000001.dmp', data: 'x' }]);
      await waitFor('a change on B', () =>
        changes.some((c) => c.owner === ALICE && c.dir === BOB && c.name === 'msg-000000000001.dmp'),
      );
    } finally {
      controller.abort();
      sync.stop();
    }
  });

  test('deletes propagate (seed 13)', async () => {
    const { b, sync, alice, bob } = joined({ seed: 13, maxDelayMs: 20, duplicateRate: 0.5 });
    try {
      const names = Array.from({ length: 20 }, (_, i) => `msg-${String(i + 1).padStart(12, '0')}.dmp`);
      await alice.publish(
        BOB,
        names.map((name) => ({ name, data: name })),
      );
      await within('the sync to go idle', sync.idle());
      assert.equal((await bob.list(ALICE, BOB)).length, 20);
      await alice.remove(BOB, names.slice(0, 15));
      await within('the sync to go idle', sync.idle());
      assert.deepEqual((await bob.list(ALICE, BOB)).sort(), names.slice(15));
      assert.ok(sync.stats.deleted >= 15);
      assert.equal([...b.files.keys()].filter((path) => MSG.test(path)).length, 5);
    } finally {
      sync.stop();
    }
  });

  test('a file deleted and later published again under the same name reaches the other replica (seed 14)', async () => {
    const { sync, alice, bob } = joined({ seed: 14, maxDelayMs: 10 });
    try {
      await alice.publish(BOB, [{ name: 'chunk-000001.dfc', data: 'first chunk' }]);
      await within('the sync to go idle', sync.idle());
      await alice.remove(BOB, ['chunk-000001.dfc']);
      await within('the sync to go idle', sync.idle());
      assert.equal(await bob.read(ALICE, BOB, 'chunk-000001.dfc'), undefined);
      // The seed's DFTP reused one chunk file name; a real sync engine carries the new file over.
      await alice.publish(BOB, [{ name: 'chunk-000001.dfc', data: 'second chunk' }]);
      await within('the sync to go idle', sync.idle());
      assert.equal((await bob.read(ALICE, BOB, 'chunk-000001.dfc'))?.data.toString(), 'second chunk');
    } finally {
      sync.stop();
    }
  });

  test("a peer's new, still empty folder reaches the other replica (seed 15)", async () => {
    const { sync, alice, bob } = joined({ seed: 15, maxDelayMs: 10 });
    try {
      await bob.open();
      // Syncthing and Dropbox both carry empty folders: `dmp init` on one machine makes the
      // peer known on the others before it has written anything.
      await waitFor('bob in the peers of replica A', async () => (await alice.peers()).includes(BOB), 2000);
    } finally {
      sync.stop();
    }
  });

  test('per path, a replica never goes back to an older version (seed 16)', async () => {
    const { a, b, sync, alice } = joined({ seed: 16, maxDelayMs: 30, duplicateRate: 0.5 });
    const regressions: string[] = [];
    const lastSeen = new Map<string, number>();
    const unsubscribe = b.subscribe((path) => {
      const stored = b.files.get(path);
      if (stored === undefined) return;
      const previous = lastSeen.get(path) ?? 0;
      if (stored.version < previous) regressions.push(`${path}: ${previous} -> ${stored.version}`);
      lastSeen.set(path, stored.version);
    });
    try {
      const paths = Array.from({ length: 20 }, (_, i) => `msg-${String(i + 1).padStart(12, '0')}.dmp`);
      let writes = 0;
      // Rewrites in quick succession: their deliveries race each other.
      for (let round = 0; round < 10; round += 1) {
        for (const name of paths) {
          await alice.publish(BOB, [{ name, data: `${name} round ${round}` }]);
          writes += 1;
        }
      }
      await within('the sync to go idle', sync.idle());
      assert.deepEqual(regressions, []);
      for (const name of paths) {
        const path = `alice/bob/${name}`;
        assert.equal(b.files.get(path)?.version, a.files.get(path)?.version, `${path} did not converge`);
        assert.equal(b.files.get(path)?.data.toString(), `${name} round 9`);
      }
      // Some stale deliveries were dropped, so the rule was really exercised.
      assert.ok(
        sync.stats.delivered < writes + sync.stats.duplicated,
        `no delivery arrived late (${sync.stats.delivered} of ${writes + sync.stats.duplicated})`,
      );
    } finally {
      unsubscribe();
      sync.stop();
    }
  });

  test('a late delivery never brings a deleted file back (seed 17)', async () => {
    const { b, sync, alice } = joined({ seed: 17, maxDelayMs: 30, duplicateRate: 0.5 });
    try {
      const names = Array.from({ length: 40 }, (_, i) => `msg-${String(i + 1).padStart(12, '0')}.dmp`);
      for (const name of names) {
        await alice.publish(BOB, [{ name, data: name }]);
        await alice.remove(BOB, [name]);
      }
      await within('the sync to go idle', sync.idle());
      assert.deepEqual(
        [...b.files.keys()].filter((path) => MSG.test(path)),
        [],
      );
    } finally {
      sync.stop();
    }
  });

  test('with high rates, every hazard really happens (seed 18)', async () => {
    const { a, b, sync, alice, bob } = joined({
      seed: 18,
      maxDelayMs: 20,
      duplicateRate: 0.9,
      tempFileRate: 0.9,
      conflictRate: 0.9,
      corruptRate: 0.5,
    });
    const tempSeen = new Set<string>();
    const unsubscribe = b.subscribe((path) => {
      if (/\/(\.syncthing\.|~syncthing~)/.test(path) && b.files.has(path)) tempSeen.add(path);
    });
    try {
      const names = Array.from({ length: 40 }, (_, i) => `msg-${String(i + 1).padStart(12, '0')}.dmp`);
      for (const name of names) await alice.publish(BOB, [{ name, data: `content of ${name}` }]);
      await within('the sync to go idle', sync.idle());
      const { duplicated, tempFiles, conflicts, corrupted } = sync.stats;
      assert.ok(duplicated > 0, 'no duplicate delivery');
      assert.ok(tempFiles > 0, 'no sync-tool temp file');
      assert.ok(conflicts > 0, 'no conflict copy');
      assert.ok(corrupted > 0, 'no corrupted delivery');
      // The evidence is in replica B, and readers are not fooled by it.
      assert.ok(tempSeen.size > 0, 'no temp file was ever visible on B');
      assert.deepEqual(
        [...b.files.keys()].filter((path) => /\/(\.syncthing\.|~syncthing~)/.test(path)),
        [],
        'temp files outlived the sync',
      );
      const conflictCopies = [...b.files.keys()].filter((path) => path.includes('.sync-conflict-'));
      assert.ok(conflictCopies.length > 0, 'no conflict copy stayed on B');
      assert.deepEqual((await bob.list(ALICE, BOB)).sort(), names);
      const damaged = names.filter(
        (name) =>
          !b.files.get(`alice/bob/${name}`)?.data.equals(a.files.get(`alice/bob/${name}`)?.data ?? Buffer.alloc(0)),
      );
      assert.ok(damaged.length > 0, 'no file on B differs from its original');
      // Nothing changed on the source replica.
      for (const name of names) assert.equal(a.files.get(`alice/bob/${name}`)?.data.toString(), `content of ${name}`);
    } finally {
      unsubscribe();
      sync.stop();
    }
  });

  test('after stop() nothing propagates any more (seed 19)', async () => {
    const { b, sync, alice } = joined({ seed: 19, maxDelayMs: 5 });
    await alice.publish(BOB, [{ name: 'msg-000000000001.dmp', data: 'before stop' }]);
    await within('the sync to go idle', sync.idle());
    sync.stop();
    await alice.publish(BOB, [{ name: 'msg-000000000002.dmp', data: 'after stop' }]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(b.files.has('alice/bob/msg-000000000001.dmp'));
    assert.equal(b.files.has('alice/bob/msg-000000000002.dmp'), false);
  });

  test('idle() resolves after stop() even when deliveries were pending (seed 20)', async () => {
    const { sync, alice } = joined({ seed: 20, maxDelayMs: 1000 });
    await alice.publish(BOB, [{ name: 'msg-000000000001.dmp', data: 'pending' }]);
    sync.stop();
    // Nothing is pending once stop() has cancelled every delivery.
    await within('idle() after stop()', sync.idle(), 3000);
  });
});
