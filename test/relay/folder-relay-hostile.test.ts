/**
 * FolderRelay against what a hostile peer or a careless sync tool can put in a relay
 * (DESIGN.md, "What the relay can throw at a reader"): links, FIFOs, sockets and folders named
 * like relay files, unreadable and sparse huge files. A reader opens only regular files, never
 * follows a link out of the relay, never blocks, checks sizes first, and treats every such
 * entry as that entry's problem alone.
 */
import assert from 'node:assert/strict';
import { constants as bufferConstants } from 'node:buffer';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  symlink,
  truncate,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { isDmpError } from '../../src/errors.js';
import type { Logger } from '../../src/log.js';
import { FolderRelay } from '../../src/relay/folder-relay.js';
import type { RelayChange } from '../../src/relay/storage.js';
import { waitFor } from '../support/wait.js';
import { ALICE, BOB, CAROL } from './storage-contract.js';

const MODULE = new URL('../../src/relay/folder-relay.js', import.meta.url).href;
const NOBODY = 65534;

interface ChildResult {
  readonly timedOut: boolean;
  readonly status: number | null;
  readonly output: unknown;
  readonly stderr: string;
}

/**
 * Runs `body` (the body of an async function that has `FolderRelay` in scope and returns
 * something JSON can carry) in a child process. A read that blocks the event loop then fails
 * the test after `timeoutMs` instead of freezing the test runner, and `uid` runs it as another
 * user (root reads a mode-000 file; nobody cannot).
 */
function inChild(body: string, options: { timeoutMs?: number; uid?: number } = {}): ChildResult {
  const script = `import { FolderRelay } from ${JSON.stringify(MODULE)};
const result = await (async () => { ${body} })();
process.stdout.write(JSON.stringify(result ?? null));
process.exit(0);`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 10_000,
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
  });
  const timedOut = (child.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT';
  let output: unknown;
  try {
    output = JSON.parse(child.stdout || 'null');
  } catch {
    output = child.stdout;
  }
  return { timedOut, status: child.status, output, stderr: child.stderr };
}

/** What a read gave: the text, 'missing', or the error's code and reason. */
async function outcome(relay: FolderRelay, owner: string, dir: string, name: string): Promise<string> {
  try {
    const read = await relay.read(owner as typeof ALICE, dir as typeof ALICE, name);
    return read === undefined ? 'missing' : `data:${read.data.toString()}`;
  } catch (error) {
    if (isDmpError(error)) return `${error.code}:${String(error.data.reason ?? '')}`;
    return `untyped:${String(error)}`;
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

class RecordingLogger implements Logger {
  readonly lines: { level: string; event: string; fields: Record<string, unknown> }[] = [];
  log(level: string, event: string, fields: Record<string, unknown> = {}): void {
    this.lines.push({ level, event, fields });
  }
}

describe('FolderRelay with hostile relay contents', () => {
  let base: string;
  let root: string;
  let outside: string;
  const servers: Server[] = [];

  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), 'dmp-hostile-'));
    root = join(base, 'relay');
    outside = join(base, 'outside');
    await mkdir(join(root, 'bob', 'alice'), { recursive: true });
    await mkdir(join(outside, 'alice'), { recursive: true });
    await writeFile(join(outside, 'secret.dmp'), 'outside the relay');
    await writeFile(join(outside, 'alice', 'msg-000000000001.dmp'), 'outside the relay');
  });

  afterEach(async () => {
    for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
    await rm(base, { recursive: true, force: true });
  });

  /** Fills bob/alice/ with one good message and one entry of every hostile kind. */
  async function plantHostileEntries(): Promise<Record<string, string>> {
    const folder = join(root, 'bob', 'alice');
    const at = (name: string) => join(folder, name);
    await writeFile(at('msg-000000000001.dmp'), 'good');
    await symlink(join(outside, 'secret.dmp'), at('msg-000000000002.dmp'));
    execFileSync('mkfifo', [at('msg-000000000003.dmp')]);
    await mkdir(at('msg-000000000004.dmp'));
    await new Promise<void>((resolve) => {
      const server = createServer().listen(at('msg-000000000005.dmp'), resolve);
      servers.push(server);
    });
    await symlink('msg-000000000006.dmp', at('msg-000000000006.dmp'));
    await symlink(join(at('msg-000000000001.dmp'), 'below-a-file'), at('msg-000000000007.dmp'));
    await symlink(at('msg-000000000003.dmp'), at('msg-000000000008.dmp'));
    await symlink(join(base, 'nowhere'), at('ack.dmp'));
    return {
      'msg-000000000002.dmp': 'BAD_ENTRY:link', // to a file outside the relay
      'msg-000000000004.dmp': 'BAD_ENTRY:not-a-file', // a folder
      'msg-000000000005.dmp': 'BAD_ENTRY:not-a-file', // a socket
      'msg-000000000006.dmp': 'BAD_ENTRY:link', // a link to itself (ELOOP when followed)
      'msg-000000000007.dmp': 'BAD_ENTRY:link', // a link that gives ENOTDIR when followed
      'msg-000000000008.dmp': 'BAD_ENTRY:link', // a link to a FIFO
      'ack.dmp': 'BAD_ENTRY:link', // a dangling link
    };
  }

  test('list() returns only regular files; links, FIFOs, folders and sockets are skipped and noted once', async () => {
    await plantHostileEntries();
    const logger = new RecordingLogger();
    const alice = new FolderRelay({ root, self: ALICE, logger });
    assert.deepEqual(await alice.list(BOB, ALICE), ['msg-000000000001.dmp']);
    assert.deepEqual(await alice.list(BOB, ALICE), ['msg-000000000001.dmp']);
    const noted = logger.lines.filter((line) => line.event === 'foreign-file');
    assert.ok(
      noted.every((line) => line.level === 'debug'),
      'foreign entries are noted at debug level',
    );
    const paths = noted.map((line) => String(line.fields.path)).sort();
    assert.equal(paths.length, 8, `each foreign entry is noted exactly once: ${paths.join(', ')}`);
    assert.equal(new Set(paths).size, 8);
  });

  test('read() refuses every entry that is not a regular file with BAD_ENTRY, and reads the good one', async () => {
    const expected = await plantHostileEntries();
    // The FIFO itself is read in a child process: a blocking open would freeze this one.
    delete expected['msg-000000000003.dmp'];
    const alice = new FolderRelay({ root, self: ALICE });
    assert.equal(await outcome(alice, BOB, ALICE, 'msg-000000000001.dmp'), 'data:good');
    for (const [name, want] of Object.entries(expected)) {
      assert.equal(await outcome(alice, BOB, ALICE, name), want, name);
    }
    // Every refusal is one line naming the path.
    await assert.rejects(alice.read(BOB, ALICE, 'msg-000000000002.dmp'), (error: unknown) => {
      assert.ok(isDmpError(error, 'BAD_ENTRY'));
      assert.equal(error.data.path, join(root, 'bob', 'alice', 'msg-000000000002.dmp'));
      assert.match(error.message, /msg-000000000002\.dmp/);
      assert.doesNotMatch(error.message, /\n/);
      return true;
    });
    // What the link pointed to was never read, nor changed.
    assert.equal(await readFile(join(outside, 'secret.dmp'), 'utf8'), 'outside the relay');
  });

  test('read() of a FIFO named like a message returns at once, and so does read() of a link to it', () => {
    const fifo = join(root, 'bob', 'alice', 'msg-000000000003.dmp');
    execFileSync('mkfifo', [fifo]);
    execFileSync('ln', ['-s', fifo, join(root, 'bob', 'alice', 'msg-000000000008.dmp')]);
    const child = inChild(
      `const relay = new FolderRelay({ root: ${JSON.stringify(root)}, self: 'alice' });
      const results = [];
      for (const name of ['msg-000000000003.dmp', 'msg-000000000008.dmp']) {
        results.push(await relay.read('bob', 'alice', name).then(
          () => 'read',
          (error) => error.code + ':' + error.data.reason,
        ));
      }
      results.push(await relay.list('bob', 'alice'));
      return results;`,
      { timeoutMs: 20_000 },
    );
    assert.equal(child.timedOut, false, 'reading a FIFO blocked the process');
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(child.output, ['BAD_ENTRY:not-a-file', 'BAD_ENTRY:link', []]);
  });

  test('a peer folder, or a folder in it, that is a link is never followed', async () => {
    // carol -> a folder outside the relay; bob/alice -> another one.
    await symlink(outside, join(root, 'carol'));
    await rm(join(root, 'bob', 'alice'), { recursive: true });
    await symlink(join(outside, 'alice'), join(root, 'bob', 'alice'));
    const alice = new FolderRelay({ root, self: ALICE });
    await alice.open();
    assert.deepEqual(await alice.peers(), [ALICE, BOB], 'a link is not a peer');
    assert.deepEqual(await alice.list(CAROL, ALICE), []);
    assert.deepEqual(await alice.list(BOB, ALICE), []);
    assert.equal(await outcome(alice, CAROL, ALICE, 'msg-000000000001.dmp'), 'BAD_ENTRY:link');
    assert.equal(await outcome(alice, BOB, ALICE, 'msg-000000000001.dmp'), 'BAD_ENTRY:link');
  });

  test('an unreadable file or folder is an error about that entry alone', async () => {
    await writeFile(join(root, 'bob', 'alice', 'msg-000000000001.dmp'), 'good');
    await writeFile(join(root, 'bob', 'alice', 'msg-000000000002.dmp'), 'locked');
    await chmod(join(root, 'bob', 'alice', 'msg-000000000002.dmp'), 0o000);
    await mkdir(join(root, 'carol', 'alice'), { recursive: true });
    await writeFile(join(root, 'carol', 'alice', 'msg-000000000001.dmp'), 'locked');
    await chmod(join(root, 'carol', 'alice'), 0o000);
    await mkdir(join(root, 'alice'));
    // Root reads anything: run the reader as an ordinary user then, who cannot.
    const asNobody = process.getuid?.() === 0;
    if (asNobody) await chmod(base, 0o755);
    const child = inChild(
      `const relay = new FolderRelay({ root: ${JSON.stringify(root)}, self: 'alice' });
      const show = (promise) => promise.then(
        (value) => value === undefined ? 'missing' : Array.isArray(value) ? value.sort() : 'data:' + value.data,
        (error) => error.code + ':' + (error.data.reason ?? ''),
      );
      return [
        await show(relay.read('bob', 'alice', 'msg-000000000002.dmp')),
        await show(relay.list('bob', 'alice')),
        await show(relay.read('bob', 'alice', 'msg-000000000001.dmp')),
        await show(relay.list('carol', 'alice')),
        await show(relay.read('carol', 'alice', 'msg-000000000001.dmp')),
        await show(relay.peers()),
      ];`,
      asNobody ? { uid: NOBODY } : {},
    );
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(child.output, [
      'BAD_ENTRY:unreadable',
      ['msg-000000000001.dmp', 'msg-000000000002.dmp'].sort(),
      'data:good',
      'BAD_ENTRY:unreadable',
      'BAD_ENTRY:unreadable',
      ['alice', 'bob', 'carol'],
    ]);
  });

  test('a sparse 1 GiB file named like a message is refused unread under maxBytes', async () => {
    const path = join(root, 'bob', 'alice', 'msg-000000000001.dmp');
    await writeFile(path, '');
    await truncate(path, 1024 ** 3);
    const alice = new FolderRelay({ root, self: ALICE });
    const before = process.memoryUsage().arrayBuffers;
    await assert.rejects(
      alice.read(BOB, ALICE, 'msg-000000000001.dmp', { maxBytes: 1024 * 1024 }),
      (error: unknown) => {
        assert.ok(isDmpError(error, 'BAD_ENTRY'), String(error));
        assert.equal(error.data.reason, 'too-large');
        assert.equal(error.data.size, 1024 ** 3);
        assert.equal(error.data.maxBytes, 1024 * 1024);
        return true;
      },
    );
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024, 'the file was read into memory');
  });

  test('a file larger than any Buffer is refused unread even without maxBytes', async () => {
    const path = join(root, 'bob', 'alice', 'chunk-000000000001.dfc');
    await writeFile(path, '');
    await truncate(path, bufferConstants.MAX_LENGTH + 1);
    const alice = new FolderRelay({ root, self: ALICE });
    assert.equal(await outcome(alice, BOB, ALICE, 'chunk-000000000001.dfc'), 'BAD_ENTRY:too-large');
  });

  test('usage() counts regular files in real folders only, never what a link points to', async () => {
    const alice = new FolderRelay({ root, self: ALICE });
    await alice.open();
    await alice.publish(BOB, [{ name: 'msg-000000000001.dmp', data: 'x'.repeat(10) }]);
    await writeFile(join(outside, 'big.dmp'), Buffer.alloc(1024 * 1024));
    await symlink(join(outside, 'big.dmp'), join(root, 'alice', 'bob', 'msg-000000000002.dmp'));
    await symlink(outside, join(root, 'alice', 'carol'));
    assert.equal(await alice.usage(), 10);
  });

  describe('the writer never writes through a link in its own folder', () => {
    const MALLORY = 'mallory' as typeof ALICE;

    /** The error is BAD_ENTRY for `path`, in one line that names it. */
    const refusedAt = (path: string, reason: string) => (error: unknown) => {
      assert.ok(isDmpError(error, 'BAD_ENTRY'), String(error));
      assert.equal(error.data.path, path);
      assert.equal(error.data.reason, reason);
      assert.ok(error.message.includes(path), error.message);
      assert.doesNotMatch(error.message, /\n/);
      return true;
    };

    for (const staging of ['dot-names in the peer folder', 'a staging folder'] as const) {
      test(`a linked sub-folder is refused for that peer only (${staging})`, async () => {
        const tempDir = staging === 'a staging folder' ? join(base, 'staging') : undefined;
        if (tempDir) await mkdir(tempDir);
        const alice = new FolderRelay({ root, self: ALICE, tempDir });
        await alice.open();
        const target = join(outside, 'target');
        await mkdir(target);
        await writeFile(join(target, 'msg-000000000001.dmp'), 'not the relay');
        await symlink(target, join(root, 'alice', 'mallory'));
        const linked = join(root, 'alice', 'mallory');
        for (const durable of [true, false]) {
          await assert.rejects(
            alice.publish(MALLORY, [{ name: 'ack.dmp', data: 'ack' }], { durable }),
            refusedAt(linked, 'link'),
          );
        }
        await assert.rejects(alice.remove(MALLORY, ['msg-000000000001.dmp']), refusedAt(linked, 'link'));
        assert.deepEqual(
          await readdir(target),
          ['msg-000000000001.dmp'],
          'something was written or removed through the link',
        );
        if (tempDir) assert.deepEqual(await readdir(tempDir), []);
        // Every other folder keeps working.
        await alice.publish(BOB, [{ name: 'ack.dmp', data: 'ack' }]);
        assert.equal(await readFile(join(root, 'alice', 'bob', 'ack.dmp'), 'utf8'), 'ack');
        // A file where the folder should be is refused the same way.
        await writeFile(join(root, 'alice', 'carol'), 'a file');
        await assert.rejects(
          alice.publish(CAROL, [{ name: 'ack.dmp', data: 'ack' }]),
          refusedAt(join(root, 'alice', 'carol'), 'not-a-folder'),
        );
      });
    }

    test('a folder replaced by a link after a first publish is refused from then on', async () => {
      const alice = new FolderRelay({ root, self: ALICE });
      await alice.open();
      await alice.publish(BOB, [{ name: 'ack.dmp', data: 'first' }]);
      await rm(join(root, 'alice', 'bob'), { recursive: true });
      await symlink(outside, join(root, 'alice', 'bob'));
      await assert.rejects(
        alice.publish(BOB, [{ name: 'ack.dmp', data: 'second' }]),
        refusedAt(join(root, 'alice', 'bob'), 'link'),
      );
      assert.deepEqual((await readdir(outside)).sort(), ['alice', 'secret.dmp']);
    });

    test("the peer's own folder being a link is refused by open, publish and usage", async () => {
      const elsewhere = join(outside, 'elsewhere');
      await mkdir(elsewhere);
      await symlink(elsewhere, join(root, 'alice'));
      const own = join(root, 'alice');
      const alice = new FolderRelay({ root, self: ALICE });
      await assert.rejects(alice.open(), refusedAt(own, 'link'));
      await assert.rejects(alice.publish(BOB, [{ name: 'ack.dmp', data: 'x' }]), refusedAt(own, 'link'));
      await assert.rejects(alice.usage(), refusedAt(own, 'link'));
      assert.deepEqual(await readdir(elsewhere), [], 'something was written through the link');
    });
  });

  describe('time', () => {
    test('the rescan runs on the injected clock, not on real timers', async () => {
      const clock = new ManualClock();
      const alice = new FolderRelay({ root, self: ALICE, rescanMs: 20, clock });
      await alice.open();
      const controller = new AbortController();
      let rescans = 0;
      alice.watch({
        signal: controller.signal,
        onChange: (change) => {
          if (change === null) rescans += 1;
        },
      });
      try {
        // Real time passes: with real timers, several rescans would have run.
        await new Promise((resolve) => setTimeout(resolve, 150));
        assert.equal(rescans, 0, 'a rescan ran on a real timer');
        await clock.advance(20);
        assert.equal(rescans, 1);
        await clock.advance(40);
        assert.equal(rescans, 3);
      } finally {
        controller.abort();
      }
      assert.equal(clock.pending, 0, 'a timer outlived the watch');
    });

    test("polling: a change is reported again after the clock's 60 ms, and the abort cancels the follow-up", async () => {
      const clock = new ManualClock();
      // chokidar, which polls, throttles changes; native events (one watch per folder) do not.
      const alice = new FolderRelay({ root, self: ALICE, rescanMs: 60_000, clock, pollMs: 20 });
      const bob = new FolderRelay({ root, self: BOB });
      await alice.open();
      await bob.open();
      // The file exists before the watch, so rewriting it is a 'change', not an 'add'.
      await bob.publish(ALICE, [{ name: 'ack.dmp', data: 'first' }]);
      const controller = new AbortController();
      const reports: string[] = [];
      alice.watch({
        signal: controller.signal,
        onChange: (change) => {
          if (change?.name) reports.push(change.name);
        },
      });
      // The native watcher may still be starting, or re-watching the replaced file: rewrite
      // until a change is reported.
      let round = 0;
      const rewriteUntilReported = () =>
        waitFor('a change of ack.dmp', async () => {
          const before = reports.length;
          round += 1;
          await bob.publish(ALICE, [{ name: 'ack.dmp', data: `again ${round}` }]);
          const deadline = Date.now() + 250;
          while (Date.now() < deadline && reports.length === before) {
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          return reports.length > before;
        });
      try {
        await rewriteUntilReported();
        assert.equal(clock.pending, 2, 'the rescan and one follow-up wait on the clock');
        const before = reports.length;
        await clock.advance(60);
        assert.ok(reports.length > before, 'the follow-up report did not come');
        assert.equal(clock.pending, 1);
        await rewriteUntilReported();
        assert.equal(clock.pending, 2);
      } finally {
        controller.abort();
      }
      assert.equal(clock.pending, 0, 'a follow-up outlived the watch');
    });
  });

  test('open() removes its own staging files older than 10 minutes, and nothing else', async () => {
    const staging = join(base, 'staging');
    await mkdir(staging);
    await mkdir(join(root, 'alice', 'bob'), { recursive: true });
    const clock = new ManualClock(Date.now());
    const minutesAgo = (minutes: number) => new Date(clock.now() - minutes * 60_000);
    const plant = async (path: string, minutes: number) => {
      await writeFile(path, Buffer.alloc(1024));
      await utimes(path, minutesAgo(minutes), minutesAgo(minutes));
    };
    const ours = '.chunk-000000000001.dfc.0123456789ab.tmp';
    const removed = [
      join(staging, ours),
      join(staging, '.msg-000000000001.dmp.fedcba987654.tmp'),
      join(root, 'alice', 'bob', ours),
      join(root, 'alice', '.probe-0123456789ab.tmp'),
    ];
    const kept = [
      // Ours, but recent: a write may still be going on.
      join(staging, '.msg-000000000002.dmp.0123456789ab.tmp'),
      join(root, 'alice', 'bob', '.ack.dmp.0123456789ab.tmp'),
      // Not our pattern, however old.
      join(staging, '.msg-000000000001.dmp.0123456789AB.tmp'),
      join(staging, '.msg-000000000001.dmp.0123456789a.tmp'),
      join(staging, '.UPPER.dmp.0123456789ab.tmp'),
      join(staging, '.syncthing.msg-000000000001.dmp.tmp'),
      join(staging, `${ours}.part`),
      join(staging, 'x.tmp'),
      join(staging, '.probe-0123456789ab.tmp'),
      join(root, 'alice', 'bob', 'msg-000000000001.dmp'),
      join(root, 'alice', 'bob', '~syncthing~x.tmp'),
      join(root, 'alice', `.ack.dmp.0123456789ab.tmp`),
      // Another peer's folder is never touched.
      join(root, 'bob', 'alice', ours),
    ];
    for (const path of removed) await plant(path, 11);
    for (const path of kept) await plant(path, kept.indexOf(path) < 2 ? 9 : 60 * 24);
    // A folder and a link with our name are not staging files either.
    await mkdir(join(staging, '.msg-000000000003.dmp.0123456789ab.tmp'));
    await symlink(join(outside, 'secret.dmp'), join(staging, '.msg-000000000004.dmp.0123456789ab.tmp'));
    await utimes(join(outside, 'secret.dmp'), minutesAgo(60), minutesAgo(60));

    const alice = new FolderRelay({ root, self: ALICE, tempDir: staging, clock });
    await alice.open();
    for (const path of removed) assert.equal(await exists(path), false, `${path} was left`);
    for (const path of kept) assert.equal(await exists(path), true, `${path} was removed`);
    assert.ok(await exists(join(staging, '.msg-000000000003.dmp.0123456789ab.tmp')));
    assert.ok(await exists(join(staging, '.msg-000000000004.dmp.0123456789ab.tmp')));
    assert.equal(await readFile(join(outside, 'secret.dmp'), 'utf8'), 'outside the relay');

    // Age is measured on the injected clock: ten more minutes there, and the recent ones go too.
    await clock.advance(10 * 60_000);
    await alice.open();
    assert.equal(await exists(kept[0] ?? ''), false);
    assert.equal(await exists(kept[1] ?? ''), false);
    for (const path of kept.slice(2)) assert.equal(await exists(path), true, `${path} was removed`);
  });

  describe('watch follows no link', () => {
    /** Watches as alice; bob publishes until alice sees one of his files. */
    async function watchUntilLive(alice: FolderRelay, bob: FolderRelay) {
      const changes: RelayChange[] = [];
      const controller = new AbortController();
      alice.watch({
        signal: controller.signal,
        onChange: (change) => {
          if (change) changes.push(change);
        },
      });
      let seq = 0;
      await waitFor('a change published by bob', async () => {
        seq += 1;
        await bob.publish(ALICE, [{ name: `msg-${String(seq).padStart(12, '0')}.dmp`, data: 'x' }]);
        const deadline = Date.now() + 250;
        while (Date.now() < deadline && !changes.some((change) => change.owner === BOB && change.name)) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        return changes.some((change) => change.owner === BOB && change.name);
      });
      return { changes, controller };
    }

    test('a relay given through a link is watched all the same', async () => {
      const linked = join(base, 'relay-link');
      await symlink(root, linked);
      const alice = new FolderRelay({ root: linked, self: ALICE });
      const bob = new FolderRelay({ root: linked, self: BOB });
      await alice.open();
      await bob.open();
      const { changes, controller } = await watchUntilLive(alice, bob);
      controller.abort();
      assert.ok(changes.every((change) => change.owner === BOB && change.dir === ALICE));
    });

    test('changes behind a peer folder that is a link are not reported', async () => {
      await symlink(outside, join(root, 'carol'));
      const alice = new FolderRelay({ root, self: ALICE });
      const bob = new FolderRelay({ root, self: BOB });
      await alice.open();
      await bob.open();
      const { changes, controller } = await watchUntilLive(alice, bob);
      try {
        for (let index = 2; index < 6; index += 1) {
          await writeFile(join(outside, 'alice', `msg-00000000000${index}.dmp`), 'outside the relay');
        }
        // A barrier: a change that must be seen, then some time for stragglers.
        await bob.publish(ALICE, [{ name: 'msg-000000000999.dmp', data: 'barrier' }]);
        await waitFor('the barrier', () => changes.some((change) => change.name === 'msg-000000000999.dmp'));
        await new Promise((resolve) => setTimeout(resolve, 300));
      } finally {
        controller.abort();
      }
      // The link itself may be reported (a reader then finds nothing there); what is behind it never.
      const behind = changes.filter((change) => change.owner === CAROL && change.name !== undefined);
      assert.deepEqual(behind, [], 'the watcher followed the link out of the relay');
    });
  });
});
