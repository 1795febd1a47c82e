/**
 * The contract every RelayStorage implementation must honour (src/relay/storage.ts), run against
 * each implementation by its own test file: folder-relay.test.ts and memory-relay.test.ts.
 *
 * A fixture gives three things the interface itself cannot: a way to plant files no peer wrote
 * (sync-tool temp files, conflict copies), a way to check that such files are still there, and
 * cleanup. Events are awaited with bounded loops; nothing here asserts how fast anything is.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { isDmpError } from '../../src/errors.js';
import type { RelayChange, RelayStorage } from '../../src/relay/storage.js';
import type { PeerId } from '../../src/util/peer-id.js';
import { waitFor } from '../support/wait.js';

export interface StorageFixture {
  /** Writes as 'alice'. Not opened yet. */
  readonly alice: RelayStorage;
  /** Writes as 'bob', on the same relay (same folder, or same replica). Not opened yet. */
  readonly bob: RelayStorage;
  /**
   * Puts a file that no peer wrote, the way a sync tool or a user would, at `path`: relative to
   * the relay root, '/'-separated ('bob/alice/.syncthing.x.tmp', '.stfolder/marker').
   */
  plant(path: string, data: Buffer): Promise<void>;
  /** True when a file exists at `path` (same form as for plant). */
  exists(path: string): Promise<boolean>;
  cleanup(): Promise<void>;
}

export type StorageFactory = () => Promise<StorageFixture>;

/** Names that are not relay names: readers skip them, nobody deletes them (DESIGN.md rule 6). */
export const FOREIGN_NAMES = [
  '.stfolder',
  '.syncthing.msg-000000000001.dmp.tmp',
  '~syncthing~x.tmp',
  'msg-000000000001.sync-conflict-20200101-010101-ABCDEFG.dmp',
  'ack (conflicted copy 2020).dmp',
  'ack (Case Conflict).dmp',
  'desktop.ini',
  '.dropbox',
  'x.tmp',
  'x.part',
  'UPPER.dmp',
  'msg-000000000001.dmp.part',
] as const;

export const ALICE = 'alice' as PeerId;
export const BOB = 'bob' as PeerId;
export const CAROL = 'carol' as PeerId;

/** Records what a watch reports, for the watch tests. */
class Recorder {
  readonly changes: RelayChange[] = [];
  rescans = 0;
  calls = 0;
  readonly controller = new AbortController();

  start(storage: RelayStorage): this {
    storage.watch({
      signal: this.controller.signal,
      onChange: (change) => {
        this.calls += 1;
        if (change === null) this.rescans += 1;
        else this.changes.push(change);
      },
    });
    return this;
  }

  saw(owner: string, dir: string, name: string): boolean {
    return this.changes.some((change) => change.owner === owner && change.dir === dir && change.name === name);
  }

  /** Waits until `count` more rescans have been reported than now. */
  async moreRescans(count: number): Promise<void> {
    const target = this.rescans + count;
    await waitFor(`${count} more rescans`, () => this.rescans >= target);
  }
}

/**
 * Has `from` publish a new message file to `to` now and then until `recorder` reports one by
 * name. A native watcher may still be starting when the first one lands; later ones show it runs.
 */
async function publishUntilSeen(recorder: Recorder, from: RelayStorage, to: PeerId, first = 1): Promise<string> {
  let seq = first;
  let found: string | undefined;
  await waitFor(`a change naming a file ${from.self} published to ${to}`, async () => {
    const name = `msg-${String(seq).padStart(12, '0')}.dmp`;
    seq += 1;
    await from.publish(to, [{ name, data: 'hello' }]);
    const deadline = Date.now() + 250;
    while (Date.now() < deadline) {
      found = recorder.changes.find((change) => change.owner === from.self && change.dir === to && change.name)?.name;
      if (found !== undefined) return true;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return false;
  });
  return found ?? '';
}

function text(read: { data: Buffer } | undefined): string | undefined {
  return read?.data.toString('utf8');
}

export function runStorageContract(name: string, makeFixture: StorageFactory): void {
  describe(`RelayStorage contract: ${name}`, () => {
    let fx: StorageFixture;
    let alice: RelayStorage;
    let bob: RelayStorage;
    const recorders: Recorder[] = [];

    const record = (storage: RelayStorage): Recorder => {
      const recorder = new Recorder().start(storage);
      recorders.push(recorder);
      return recorder;
    };

    beforeEach(async () => {
      fx = await makeFixture();
      alice = fx.alice;
      bob = fx.bob;
    });

    afterEach(async () => {
      for (const recorder of recorders.splice(0)) recorder.controller.abort();
      await fx.cleanup();
    });

    test('self is the peer the storage writes as', () => {
      assert.equal(alice.self, ALICE);
      assert.equal(bob.self, BOB);
    });

    test("open() creates the peer's folder, peers() lists both, and open() again is harmless", async () => {
      assert.deepEqual(await alice.peers(), []);
      await alice.open();
      assert.deepEqual(await alice.peers(), [ALICE]);
      await bob.open();
      await bob.open();
      assert.deepEqual(await alice.peers(), [ALICE, BOB]);
      assert.deepEqual(await bob.peers(), [ALICE, BOB]);
    });

    test('peers() ignores foreign entries in the relay root', async () => {
      await alice.open();
      await bob.open();
      await fx.plant('.stfolder/marker', Buffer.from(''));
      await fx.plant('desktop.ini', Buffer.from('[.ShellClassInfo]'));
      await fx.plant('.dropbox.cache/x', Buffer.from('x'));
      await fx.plant('UPPER/alice/msg-000000000001.dmp', Buffer.from('x'));
      await fx.plant('a b/alice/msg-000000000001.dmp', Buffer.from('x'));
      await fx.plant('bob.sync-conflict-20200101-010101-ABCDEFG/alice/ack.dmp', Buffer.from('x'));
      assert.deepEqual(await alice.peers(), [ALICE, BOB]);
    });

    test('a published file can be listed and read by the other peer', async () => {
      await alice.open();
      await bob.open();
      await alice.publish(BOB, [
        { name: 'msg-000000000001.dmp', data: 'hello bob' },
        { name: 'msg-000000000002.dmp', data: new Uint8Array([0, 1, 2, 255]) },
      ]);
      assert.deepEqual((await bob.list(ALICE, BOB)).sort(), ['msg-000000000001.dmp', 'msg-000000000002.dmp']);
      // The writer sees its own folder too (the sender lists it to find what is still there).
      assert.deepEqual((await alice.list(ALICE, BOB)).sort(), ['msg-000000000001.dmp', 'msg-000000000002.dmp']);
      assert.equal(text(await bob.read(ALICE, BOB, 'msg-000000000001.dmp')), 'hello bob');
      const binary = await bob.read(ALICE, BOB, 'msg-000000000002.dmp');
      assert.deepEqual(binary?.data, Buffer.from([0, 1, 2, 255]));
      assert.equal(typeof binary?.version, 'string');
      // Nothing leaks into other folders.
      assert.deepEqual(await bob.list(ALICE, CAROL), []);
      assert.deepEqual(await bob.list(BOB, ALICE), []);
    });

    test('publish without durable works the same for readers', async () => {
      await alice.open();
      await alice.publish(BOB, [{ name: 'ack.dmp', data: 'ephemeral' }], { durable: false });
      assert.equal(text(await bob.read(ALICE, BOB, 'ack.dmp')), 'ephemeral');
    });

    test("publish creates the addressee's sub-folder without an open() of the other peer", async () => {
      await alice.open();
      await alice.publish(CAROL, [{ name: 'ping-0123456789abcdef.dmp', data: 'x' }]);
      assert.deepEqual(await bob.list(ALICE, CAROL), ['ping-0123456789abcdef.dmp']);
    });

    test('publish replaces a file of the same name, and the version changes every time', async () => {
      await alice.open();
      await alice.publish(BOB, [{ name: 'ack.dmp', data: 'first' }]);
      const first = await bob.read(ALICE, BOB, 'ack.dmp');
      assert.equal(text(first), 'first');
      let previous = first?.version;
      // Same size on purpose: the version must not depend on the size alone.
      for (let round = 0; round < 20; round += 1) {
        const content = `again${String(round).padStart(2, '0')}`;
        await alice.publish(BOB, [{ name: 'ack.dmp', data: content }]);
        const read = await bob.read(ALICE, BOB, 'ack.dmp');
        assert.equal(text(read), content);
        assert.notEqual(read?.version, previous, `version did not change at round ${round}`);
        previous = read?.version;
      }
      assert.deepEqual(await bob.list(ALICE, BOB), ['ack.dmp']);
    });

    test('reading twice without a change gives the same version', async () => {
      await alice.open();
      await alice.publish(BOB, [{ name: 'ack.dmp', data: 'stable' }]);
      const one = await bob.read(ALICE, BOB, 'ack.dmp');
      const two = await bob.read(ALICE, BOB, 'ack.dmp');
      assert.equal(one?.version, two?.version);
    });

    test('a buffer returned by read can be changed without changing the file', async () => {
      await alice.open();
      await alice.publish(BOB, [{ name: 'msg-000000000001.dmp', data: 'original' }]);
      const read = await bob.read(ALICE, BOB, 'msg-000000000001.dmp');
      assert.ok(read);
      read.data.fill(0x21);
      assert.equal(text(await bob.read(ALICE, BOB, 'msg-000000000001.dmp')), 'original');
    });

    test('read refuses a file larger than maxBytes unread, with BAD_ENTRY naming it', async () => {
      await alice.open();
      await alice.publish(BOB, [
        { name: 'msg-000000000001.dmp', data: 'x'.repeat(100) },
        { name: 'ack.dmp', data: '' },
      ]);
      // At the limit is fine; one byte over is refused, and says so in typed data.
      assert.equal(text(await bob.read(ALICE, BOB, 'msg-000000000001.dmp', { maxBytes: 100 })), 'x'.repeat(100));
      assert.equal(text(await bob.read(ALICE, BOB, 'ack.dmp', { maxBytes: 0 })), '');
      await assert.rejects(bob.read(ALICE, BOB, 'msg-000000000001.dmp', { maxBytes: 99 }), (error: unknown) => {
        assert.ok(isDmpError(error, 'BAD_ENTRY'), String(error));
        assert.equal(error.data.reason, 'too-large');
        assert.equal(error.data.size, 100);
        assert.equal(error.data.maxBytes, 99);
        assert.match(String(error.data.path), /msg-000000000001\.dmp$/);
        assert.match(error.message, /msg-000000000001\.dmp/);
        assert.doesNotMatch(error.message, /\n/);
        return true;
      });
      // The limit applies with a buffer too, and a missing file is still just missing.
      await assert.rejects(bob.read(ALICE, BOB, 'msg-000000000001.dmp', { maxBytes: 10, buffer: Buffer.alloc(200) }), {
        code: 'BAD_ENTRY',
      });
      assert.equal(await bob.read(ALICE, BOB, 'msg-000000000002.dmp', { maxBytes: 1 }), undefined);
      // Refusing changed nothing: the file is still there for a reader with a larger limit.
      assert.equal(text(await bob.read(ALICE, BOB, 'msg-000000000001.dmp')), 'x'.repeat(100));
    });

    test('list skips foreign names and nothing ever deletes them', async () => {
      await alice.open();
      await bob.open();
      for (const foreign of FOREIGN_NAMES) {
        await fx.plant(`bob/alice/${foreign}`, Buffer.from(`foreign ${foreign}`));
        await fx.plant(`alice/bob/${foreign}`, Buffer.from(`foreign ${foreign}`));
      }
      assert.deepEqual(await alice.list(BOB, ALICE), []);
      await bob.publish(ALICE, [{ name: 'msg-000000000001.dmp', data: 'real' }]);
      assert.deepEqual(await alice.list(BOB, ALICE), ['msg-000000000001.dmp']);
      // The writer works in a folder full of foreign files: publish, replace, remove, usage.
      await alice.publish(BOB, [
        { name: 'msg-000000000001.dmp', data: 'one' },
        { name: 'ack.dmp', data: 'ack' },
      ]);
      await alice.publish(BOB, [{ name: 'ack.dmp', data: 'ack2' }]);
      assert.deepEqual((await alice.list(ALICE, BOB)).sort(), ['ack.dmp', 'msg-000000000001.dmp']);
      await alice.remove(BOB, ['msg-000000000001.dmp', 'ack.dmp']);
      await alice.usage();
      await alice.peers();
      assert.deepEqual(await alice.list(ALICE, BOB), []);
      for (const foreign of FOREIGN_NAMES) {
        assert.ok(await fx.exists(`bob/alice/${foreign}`), `bob/alice/${foreign} was deleted`);
        assert.ok(await fx.exists(`alice/bob/${foreign}`), `alice/bob/${foreign} was deleted`);
      }
    });

    test('list of a missing folder is empty', async () => {
      assert.deepEqual(await alice.list(BOB, ALICE), []);
      await alice.open();
      await bob.open();
      assert.deepEqual(await alice.list(BOB, ALICE), []);
      assert.deepEqual(await alice.list(CAROL, ALICE), []);
      assert.deepEqual(await alice.list(ALICE, BOB), []);
    });

    test('read of a missing file is undefined', async () => {
      assert.equal(await alice.read(BOB, ALICE, 'msg-000000000001.dmp'), undefined);
      await alice.open();
      await bob.open();
      assert.equal(await alice.read(BOB, ALICE, 'msg-000000000001.dmp'), undefined);
      await bob.publish(ALICE, [{ name: 'msg-000000000002.dmp', data: 'x' }]);
      assert.equal(await alice.read(BOB, ALICE, 'msg-000000000001.dmp'), undefined);
      await bob.remove(ALICE, ['msg-000000000002.dmp']);
      assert.equal(await alice.read(BOB, ALICE, 'msg-000000000002.dmp'), undefined);
    });

    test('remove deletes own files and tolerates missing ones', async () => {
      await alice.open();
      await alice.remove(BOB, ['msg-000000000001.dmp']);
      await alice.remove(CAROL, []);
      await alice.publish(BOB, [
        { name: 'msg-000000000001.dmp', data: 'a' },
        { name: 'msg-000000000002.dmp', data: 'b' },
      ]);
      await alice.remove(BOB, ['msg-000000000001.dmp', 'msg-000000000003.dmp']);
      await alice.remove(BOB, ['msg-000000000001.dmp']);
      assert.deepEqual(await bob.list(ALICE, BOB), ['msg-000000000002.dmp']);
      assert.equal(await bob.read(ALICE, BOB, 'msg-000000000001.dmp'), undefined);
    });

    test('remove never touches the folders of other peers', async () => {
      await alice.open();
      await bob.open();
      await bob.publish(ALICE, [{ name: 'msg-000000000001.dmp', data: 'from bob' }]);
      await alice.publish(BOB, [{ name: 'msg-000000000001.dmp', data: 'from alice' }]);
      await alice.remove(BOB, ['msg-000000000001.dmp']);
      await alice.remove(ALICE, ['msg-000000000001.dmp']);
      assert.equal(text(await alice.read(BOB, ALICE, 'msg-000000000001.dmp')), 'from bob');
    });

    test('usage() counts the bytes of own files only', async () => {
      await alice.open();
      await bob.open();
      assert.equal(await alice.usage(), 0);
      await alice.publish(BOB, [
        { name: 'msg-000000000001.dmp', data: 'x'.repeat(100) },
        { name: 'msg-000000000002.dmp', data: new Uint8Array(23) },
      ]);
      await alice.publish(CAROL, [{ name: 'msg-000000000001.dmp', data: '1234567' }]);
      await bob.publish(ALICE, [{ name: 'msg-000000000001.dmp', data: 'y'.repeat(50) }]);
      assert.equal(await alice.usage(), 130);
      assert.equal(await bob.usage(), 50);
      await alice.publish(BOB, [{ name: 'msg-000000000001.dmp', data: 'x'.repeat(10) }]);
      assert.equal(await alice.usage(), 40);
      await alice.remove(BOB, ['msg-000000000001.dmp', 'msg-000000000002.dmp']);
      await alice.remove(CAROL, ['msg-000000000001.dmp']);
      assert.equal(await alice.usage(), 0);
      assert.equal(await bob.usage(), 50);
    });

    describe('watch', () => {
      test('reports a file the other peer publishes to us, with owner, dir and name', async () => {
        await alice.open();
        await bob.open();
        const seen = record(alice);
        const name = await publishUntilSeen(seen, bob, ALICE);
        assert.match(name, /^msg-\d{12}\.dmp$/);
        assert.ok(await alice.read(BOB, ALICE, name));
      });

      test('does not report folders that are not addressed to us', async () => {
        await alice.open();
        await bob.open();
        const seen = record(alice);
        // Be sure the watcher runs before making noise.
        await publishUntilSeen(seen, bob, ALICE);
        await bob.publish(CAROL, [{ name: 'msg-000000000001.dmp', data: 'for carol' }]);
        await alice.publish(BOB, [{ name: 'msg-000000000001.dmp', data: 'for bob' }]);
        await alice.publish(CAROL, [{ name: 'msg-000000000001.dmp', data: 'for carol' }]);
        await bob.publish(BOB, [{ name: 'msg-000000000001.dmp', data: 'to itself' }]);
        // A barrier: a change we must see, then two full rescans to let stragglers arrive.
        await bob.publish(ALICE, [{ name: 'msg-000000000999.dmp', data: 'barrier' }]);
        await waitFor('the barrier change', () => seen.saw(BOB, ALICE, 'msg-000000000999.dmp'));
        await seen.moreRescans(2);
        const stray = seen.changes.filter((change) => change.dir !== ALICE);
        assert.deepEqual(stray, [], 'changes in folders not addressed to alice were reported');
      });

      test('reports periodic rescans as null', async () => {
        const seen = record(alice);
        await seen.moreRescans(3);
      });

      test('no callbacks after the signal aborts', async () => {
        await alice.open();
        await bob.open();
        const stopped = record(alice);
        const control = record(alice);
        await publishUntilSeen(stopped, bob, ALICE);
        stopped.controller.abort();
        const calls = stopped.calls;
        const before = control.changes.length;
        // The control watcher proves the later changes were there to be seen.
        await bob.publish(ALICE, [{ name: 'msg-000000000500.dmp', data: 'after abort' }]);
        await bob.publish(ALICE, [{ name: 'ping-00000000000000ff.dmp', data: 'after abort' }]);
        await waitFor('the control watcher to see the change', () => control.changes.length > before);
        await control.moreRescans(2);
        assert.equal(stopped.calls, calls, 'the aborted watch was called back');
      });

      test('no callback after abort, even for a change made just before it', async () => {
        await alice.open();
        await bob.open();
        const stopped = record(alice);
        const control = record(alice);
        await stopped.moreRescans(1);
        await control.moreRescans(1);
        const publishing = bob.publish(ALICE, [{ name: 'msg-000000000001.dmp', data: 'racing the abort' }]);
        stopped.controller.abort();
        const calls = stopped.calls;
        await publishing;
        await control.moreRescans(2);
        assert.equal(stopped.calls, calls, 'the aborted watch was called back');
      });

      test('a signal aborted before watch() gets no callbacks at all', async () => {
        await alice.open();
        await bob.open();
        const controller = new AbortController();
        controller.abort();
        let calls = 0;
        alice.watch({ signal: controller.signal, onChange: () => (calls += 1) });
        const control = record(alice);
        await bob.publish(ALICE, [{ name: 'msg-000000000001.dmp', data: 'x' }]);
        await control.moreRescans(2);
        assert.equal(calls, 0);
      });
    });
  });
}
