import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { DmpError } from '../../src/errors.js';
import { FolderRelay } from '../../src/relay/folder-relay.js';
import { isRelayName } from '../../src/relay/storage.js';
import { ALICE, BOB, CAROL, runStorageContract } from './storage-contract.js';

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

runStorageContract('FolderRelay', async () => {
  const root = await mkdtemp(join(tmpdir(), 'dmp-test-'));
  const at = (path: string) => join(root, ...path.split('/'));
  return {
    alice: new FolderRelay({ root, self: ALICE, rescanMs: 100 }),
    bob: new FolderRelay({ root, self: BOB, rescanMs: 100 }),
    plant: async (path, data) => {
      await mkdir(dirname(at(path)), { recursive: true });
      await writeFile(at(path), data);
    },
    exists: (path) => exists(at(path)),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});

describe('FolderRelay', () => {
  let base: string;

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'dmp-test-'));
  });

  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  test('open() on a missing relay fails with RELAY_MISSING and creates nothing', async () => {
    const root = join(base, 'no-such-relay');
    const relay = new FolderRelay({ root, self: ALICE });
    await assert.rejects(relay.open(), (error: unknown) => {
      assert.ok(error instanceof DmpError);
      assert.equal(error.code, 'RELAY_MISSING');
      assert.match(error.message, /no-such-relay/);
      return true;
    });
    assert.equal(await exists(root), false);
  });

  test('open() on a file instead of a folder fails with RELAY_MISSING', async () => {
    const root = join(base, 'a-file');
    await writeFile(root, 'not a folder');
    const relay = new FolderRelay({ root, self: ALICE });
    await assert.rejects(relay.open(), (error: unknown) => error instanceof DmpError && error.code === 'RELAY_MISSING');
  });

  test("open() creates the peer's folder on disk and leaves no probe behind", async () => {
    const relay = new FolderRelay({ root: base, self: ALICE });
    await relay.open();
    assert.ok((await stat(join(base, 'alice'))).isDirectory());
    assert.deepEqual(await readdir(join(base, 'alice')), []);
  });

  for (const staging of ['dot-names in the peer folder', 'a temp dir on the same file system'] as const) {
    test(`publish leaves no temp files behind (${staging})`, async () => {
      const root = join(base, 'relay');
      await mkdir(root);
      const tempDir = staging === 'a temp dir on the same file system' ? join(base, 'staging') : undefined;
      if (tempDir) await mkdir(tempDir);
      const relay = new FolderRelay({ root, self: ALICE, tempDir });
      await relay.open();
      const expected = new Map<string, Set<string>>([
        [BOB, new Set()],
        [CAROL, new Set()],
      ]);
      for (let round = 0; round < 150; round += 1) {
        const dir = round % 3 === 0 ? CAROL : BOB;
        const files = [
          { name: `msg-${String(round).padStart(12, '0')}.dmp`, data: `message ${round}`.repeat(round % 7) },
          { name: 'ack.dmp', data: Buffer.alloc(round * 10, round) },
          { name: `chunk-${round % 5}.dfc`, data: new Uint8Array(round) },
        ];
        await relay.publish(dir, files, { durable: round % 2 === 0 });
        for (const file of files) expected.get(dir)?.add(file.name);
        if (round % 10 === 9) {
          await relay.remove(dir, [`msg-${String(round - 3).padStart(12, '0')}.dmp`]);
          expected.get(dir)?.delete(`msg-${String(round - 3).padStart(12, '0')}.dmp`);
        }
      }
      // Publishing several files at once, concurrently, must not leave anything either.
      await Promise.all(
        Array.from({ length: 20 }, (_, index) =>
          relay.publish(BOB, [{ name: `pong-${String(index).padStart(16, '0')}.dmp`, data: 'x'.repeat(index) }]),
        ),
      );
      for (let index = 0; index < 20; index += 1) expected.get(BOB)?.add(`pong-${String(index).padStart(16, '0')}.dmp`);

      assert.deepEqual(await readdir(join(root, 'alice')).then((names) => names.sort()), [BOB, CAROL]);
      for (const [dir, names] of expected) {
        const onDisk = (await readdir(join(root, 'alice', dir))).sort();
        assert.deepEqual(onDisk, [...names].sort(), `unexpected files in alice/${dir}`);
        assert.ok(onDisk.every(isRelayName));
      }
      if (tempDir) assert.deepEqual(await readdir(tempDir), []);
    });

    test(`a failed publish leaves no temp files behind (${staging})`, async () => {
      const root = join(base, 'relay');
      await mkdir(root);
      const tempDir = staging === 'a temp dir on the same file system' ? join(base, 'staging') : undefined;
      if (tempDir) await mkdir(tempDir);
      const relay = new FolderRelay({ root, self: ALICE, tempDir });
      await relay.open();
      // A folder where the file should go: the rename cannot replace it.
      await mkdir(join(root, 'alice', 'bob', 'ack.dmp'), { recursive: true });
      await assert.rejects(
        relay.publish(BOB, [
          { name: 'msg-000000000001.dmp', data: 'one' },
          { name: 'ack.dmp', data: 'blocked' },
        ]),
        (error: unknown) => error instanceof DmpError,
      );
      const names = await readdir(join(root, 'alice', 'bob'));
      assert.deepEqual(
        names.filter((name) => !isRelayName(name)),
        [],
      );
      if (tempDir) assert.deepEqual(await readdir(tempDir), []);
    });

    test(`a reader never sees a partial file while it is being replaced (${staging})`, async () => {
      const root = join(base, 'relay');
      await mkdir(root);
      const tempDir = staging === 'a temp dir on the same file system' ? join(base, 'staging') : undefined;
      if (tempDir) await mkdir(tempDir);
      const writer = new FolderRelay({ root, self: ALICE, tempDir });
      const reader = new FolderRelay({ root, self: BOB });
      await writer.open();
      // Version i: 64 KiB + i * 4 KiB of byte i. Length and content identify the version.
      const versions = Array.from({ length: 40 }, (_, index) => Buffer.alloc(65_536 + index * 4096, index + 1));
      let done = false;
      let reads = 0;
      let everPresent = false;
      const seen = new Set<number>();
      const readLoop = (async () => {
        while (!done) {
          const read = await reader.read(ALICE, BOB, 'chunk-000001.dfc');
          reads += 1;
          if (read === undefined) {
            assert.equal(everPresent, false, 'the file vanished while it was being replaced');
            await new Promise((resolve) => setImmediate(resolve));
            continue;
          }
          everPresent = true;
          const index = (read.data[0] ?? 0) - 1;
          const expected = versions[index];
          assert.ok(expected, `read starts with an unknown byte ${read.data[0]}`);
          assert.ok(read.data.equals(expected), `partial or mixed read: ${read.data.length} bytes, version ${index}`);
          seen.add(index);
        }
      })();
      try {
        for (const data of versions) await writer.publish(BOB, [{ name: 'chunk-000001.dfc', data }]);
      } finally {
        done = true;
        await readLoop;
      }
      assert.ok(reads > 0);
      assert.ok(seen.size >= 2, `the reader saw only ${seen.size} versions in ${reads} reads: no overlap was tested`);
      const last = await reader.read(ALICE, BOB, 'chunk-000001.dfc');
      assert.ok(last?.data.equals(versions.at(-1) ?? Buffer.alloc(0)));
    });
  }

  test('hostile owner names in the relay root are never accepted as peers', async () => {
    const hostile = [
      'UPPER',
      'Alice',
      'a b',
      '.hidden',
      '.stfolder',
      '.dropbox.cache',
      '..hidden',
      '~syncthing~x.tmp',
      'a:b',
      'a.b',
      'a_b',
      'ümlaut',
      'x'.repeat(33),
      'alice (conflicted copy 2020)',
      'bob (Case Conflict)',
      'bob.sync-conflict-20200101-010101-ABCDEFG',
      'x.tmp',
      'x.part',
    ];
    for (const name of hostile) {
      await mkdir(join(base, name, 'alice'), { recursive: true });
      await writeFile(join(base, name, 'alice', 'msg-000000000001.dmp'), 'x');
    }
    const alice = new FolderRelay({ root: base, self: ALICE });
    const bob = new FolderRelay({ root: base, self: BOB });
    await alice.open();
    await bob.open();
    assert.deepEqual(await alice.peers(), [ALICE, BOB]);
    // The boundary of the alphabet is accepted: 32 characters, digits and '-'.
    await mkdir(join(base, 'x'.repeat(32)));
    await mkdir(join(base, '0-peer-9'));
    assert.deepEqual(await alice.peers(), ['0-peer-9', ALICE, BOB, 'x'.repeat(32)]);
  });

  test('a plain file with a peer-id name in the relay root is not a peer', async () => {
    const alice = new FolderRelay({ root: base, self: ALICE });
    await alice.open();
    await writeFile(join(base, 'carol'), 'a file, not a folder');
    assert.deepEqual(await alice.peers(), [ALICE]);
  });

  test('list of a peer path that is a file, not a folder, is empty', async () => {
    const alice = new FolderRelay({ root: base, self: ALICE });
    await alice.open();
    await mkdir(join(base, 'bob'));
    await writeFile(join(base, 'bob', 'alice'), 'a file where a folder should be');
    assert.deepEqual(await alice.list(BOB, ALICE), []);
    // Either "not there" or a typed error; never a raw errno escaping the relay layer.
    const outcome = await alice.read(BOB, ALICE, 'msg-000000000001.dmp').then(
      (read) => read,
      (error: unknown) => error,
    );
    assert.ok(outcome === undefined || outcome instanceof DmpError, `read gave ${String(outcome)}`);
  });
});
