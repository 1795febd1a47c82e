/**
 * dftp commands that used to do nothing, or the wrong thing, through real processes: standard
 * input and standard output, an empty folder, a queue nobody serves, block sizes out of bounds
 * and changed between runs, folders and files that cannot be written or read, and the transfers
 * one can list and cancel. Every child is killed in the hooks, whatever happens.
 */
import assert from 'node:assert/strict';
import { chmod, chown, lstat, mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  type Background,
  copyRunnable,
  describeBackground,
  describeResult,
  jsonLines,
  lines,
  type Peers,
  type RunOptions,
  type RunResult,
  runDftp,
  runProcess,
  settleAll,
  stackLines,
  type startDftp,
} from '../support/cli.js';
import { fileSha256, KiB, listTree, MiB, writeRandomFile } from '../support/files.js';
import { processFixture } from '../support/fixture.js';
import { waitFor } from '../support/wait.js';

interface Listed {
  id: string;
  direction: string;
  peer: string;
  file: string;
  path: string;
  bytes: number;
  total: number;
  blockSize: number;
  state: string;
  reason?: string;
  active: boolean;
  startedAt: string;
  lastActivity: string;
}

const fx = processFixture('dftp-transfers-');
const { peers } = fx;

function bg(...args: Parameters<typeof startDftp>): Background {
  return fx.bg('dftp', ...args);
}

function assertExit(result: RunResult, code: number): void {
  assert.equal(result.timedOut, false, `hard timeout: ${describeResult(result)}`);
  assert.equal(result.code, code, describeResult(result));
  assert.deepEqual(stackLines(result.stderr), [], `stack trace printed: ${describeResult(result)}`);
}

/** Exit `code` with exactly one line on stderr, matching `pattern`. */
function assertOneLine(result: RunResult, code: number, pattern: RegExp): void {
  assertExit(result, code);
  const errorLines = lines(result.stderr);
  assert.equal(errorLines.length, 1, `expected one line on stderr: ${describeResult(result)}`);
  assert.match(errorLines[0] ?? '', pattern, describeResult(result));
}

async function listed(home: string): Promise<Listed[]> {
  const result = await runDftp(['list', '--json'], { home, timeoutMs: 30_000 });
  assertExit(result, 0);
  return jsonLines<Listed>(result.stdout);
}

/**
 * Runs the CLI as nobody when the tests run as root (root reads and writes through any mode):
 * a copy of the CLI everyone can read, and the peers' homes and relay folders handed to nobody.
 */
async function asNobody(p: Peers, homes: string[]): Promise<RunOptions> {
  if (process.getuid?.() !== 0) return {};
  const runnable = await copyRunnable();
  fx.onEnd(runnable.cleanup);
  const chownTree = async (path: string): Promise<void> => {
    await chown(path, 65534, 65534);
    if ((await lstat(path)).isDirectory()) {
      for (const name of await readdir(path)) await chownTree(join(path, name));
    }
  };
  await chmod(p.root, 0o755);
  for (const home of homes) await chownTree(home);
  await chownTree(p.relay);
  return { uid: 65534, gid: 65534, root: runnable.root };
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const result = await runProcess(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(result.stdout);
}

describe('dftp and standard input and output', { timeout: 120_000 }, () => {
  test('echo hi | dftp send bob - sends stdin as "stdin"; dftp receive --stdout writes it to stdout', async () => {
    const p = await peers();
    const receiver = bg(['receive', '--from', 'alice', '--stdout'], { home: p.bob, timeoutMs: 60_000 });
    const [sent, got] = await settleAll([
      bg(['send', 'bob', '-'], { home: p.alice, input: 'hi\n', timeoutMs: 60_000 }),
      receiver,
    ] as const);
    assertExit(sent, 0);
    assertExit(got, 0);
    assert.equal(got.stdout, 'hi\n', describeResult(got));
    assert.match(got.stderr, /stdin: 3 B verified/, describeResult(got));
    assert.match(sent.stderr, /stdin: 3 B verified/, describeResult(sent));
    // Nothing is left behind: not the copy of stdin, not the received file.
    assert.deepEqual(await listTree(join(p.alice, 'tmp', 'stdin')), []);
    assert.deepEqual(await listTree(join(p.bob, 'tmp', 'stdout')), []);
  });

  test('--name names the file; binary data arrives byte for byte', async () => {
    const p = await peers();
    const data = Buffer.alloc(300 * KiB);
    for (let i = 0; i < data.length; i += 1) data[i] = (i * 7919) % 251;
    const source = join(p.root, 'data.bin');
    await writeFile(source, data);
    const out = join(p.root, 'out');
    const receiver = bg(['receive', '--from', 'alice', '--out', out, '--count', '1'], {
      home: p.bob,
      timeoutMs: 60_000,
    });
    const sender = bg(['send', 'bob', '-', '--name', 'from-a-pipe.bin'], {
      home: p.alice,
      input: data.toString('latin1'),
      timeoutMs: 60_000,
    });
    // input is written as UTF-8 by the harness: compare with what was really piped.
    const [sent, got] = await settleAll([sender, receiver] as const);
    assertExit(sent, 0);
    assertExit(got, 0);
    assert.deepEqual(await listTree(out), ['from-a-pipe.bin']);
    const piped = Buffer.from(data.toString('latin1'), 'utf8');
    assert.deepEqual(await readFile(join(out, 'from-a-pipe.bin')), piped);
  });

  test('usage errors: --stdout with --out, --json or --count 2; --name without -; - with other files', async () => {
    const p = await peers();
    const cases: [string[], RegExp][] = [
      [['receive', '--stdout', '--out', p.root], /--stdout and --out/],
      [['receive', '--stdout', '--json'], /--stdout and --json/],
      [['receive', '--stdout', '--count', '2'], /--stdout writes one file/],
      [['send', 'bob', join(p.root, 'x'), '--name', 'y'], /--name names standard input/],
      [['send', 'bob', '-', join(p.root, 'x')], /'-' sends standard input alone/],
    ];
    for (const [args, pattern] of cases) assertOneLine(await runDftp(args, { home: p.alice }), 2, pattern);
  });
});

describe('dftp send of nothing, and to a daemon that does not run', { timeout: 120_000 }, () => {
  test('dftp send bob emptydir/ says "nothing to send in emptydir/" and exits 1', async () => {
    const p = await peers();
    const empty = join(p.root, 'emptydir');
    await mkdir(join(empty, 'sub'), { recursive: true });
    const result = await runDftp(['send', 'bob', `${empty}/`], { home: p.alice, cwd: p.root });
    assertOneLine(result, 1, /^dftp: nothing to send in .*emptydir\/$/);
    const queued = await runDftp(['send', '--queue', 'bob', `${empty}/`], { home: p.alice });
    assertOneLine(queued, 1, /^dftp: nothing to send in /);
  });

  test('dftp send --queue with no daemon running says so, and how to start one', async () => {
    const p = await peers();
    const file = join(p.root, 'report.txt');
    await writeFile(file, 'report\n');
    const result = await runDftp(['send', '--queue', 'bob', file], { home: p.alice });
    assertExit(result, 0);
    assert.deepEqual(lines(result.stderr), [
      'dftp: 1 file queued for bob',
      'dftp: no daemon is running for alice: start `dmp daemon` to send it',
    ]);
    assert.deepEqual(await readdir(join(p.alice, 'outbox', 'bob')), ['report.txt']);
  });
});

describe('dftp block sizes', { timeout: 120_000 }, () => {
  test('-bs below 1k or above 256m is a usage error', async () => {
    const p = await peers();
    const file = join(p.root, 'f.txt');
    await writeFile(file, 'x');
    for (const size of ['1', '1023', '512m']) {
      const result = await runDftp(['send', 'bob', file, '-bs', size], { home: p.alice });
      assertOneLine(result, 2, /^dftp send: block size \d+ is too (small: give at least 1k|large: give at most 256m)/);
    }
    assertOneLine(await runDftp(['send', '--queue', 'bob', file, '-bs', '1'], { home: p.alice }), 2, /too small/);
  });

  test('a rerun with another -bs resumes with the block size of the interrupted send and says so', async () => {
    const p = await peers();
    const file = join(p.root, 'big.bin');
    await writeRandomFile(file, 2 * MiB);
    // Nobody receives: the send waits for bob, and is interrupted.
    const first = bg(['send', 'bob', file, '-bs', '64k', '--quota', '512k'], { home: p.alice, timeoutMs: 60_000 });
    await waitFor('the first send to wait for bob', () => /waiting for bob/.test(first.stderr()), 30_000, {
      describe: () => describeBackground(first),
    });
    first.kill('SIGINT');
    assertExit(await first.done, 130);
    const [transfer] = await listed(p.alice);
    assert.ok(transfer, 'the interrupted send is not listed');
    assert.equal(transfer.blockSize, 64 * KiB);

    const second = bg(['send', 'bob', file, '-bs', '128k', '--quota', '512k'], { home: p.alice, timeoutMs: 60_000 });
    const line = `dftp: big.bin: resuming with the block size of the interrupted send, 64 KiB; use dftp cancel ${transfer.id} to start over`;
    await waitFor('the block size notice', () => lines(second.stderr()).includes(line), 30_000, {
      describe: () => describeBackground(second),
    });
    second.kill('SIGINT');
    assertExit(await second.done, 130);
  });
});

describe('dftp with folders and files it cannot write or read', { timeout: 120_000 }, () => {
  test('receiving into a folder it cannot write fails at once with one line, exit 1', async () => {
    const p = await peers();
    const user = await asNobody(p, [p.bob]);
    const locked = join(p.root, 'locked');
    await mkdir(locked);
    await chmod(locked, 0o555);
    // A sender already waiting is told why, and stops, instead of waiting for ever.
    const file = join(p.root, 'waiting.txt');
    await writeFile(file, 'waiting\n');
    const sender = bg(['send', 'bob', file], { home: p.alice, timeoutMs: 60_000 });
    await waitFor(
      'the offer',
      async () =>
        (await readdir(join(p.relay, 'alice', 'bob')).catch(() => [] as string[])).some((name) =>
          name.startsWith('offer-'),
        ),
      30_000,
      { describe: () => describeBackground(sender) },
    );
    const result = await runDftp(['receive', '--out', locked], { home: p.bob, ...user, timeoutMs: 30_000 });
    assertOneLine(result, 1, /^dftp: cannot write into .*locked: permission denied$/);
    const stopped = await sender.done;
    assertExit(stopped, 1);
    assert.match(stopped.stderr, /bob cannot write into .*locked: permission denied/, describeResult(stopped));
    // A path through a file is refused the same way, by root too.
    const aFile = join(p.root, 'a-file');
    await writeFile(aFile, '');
    assertOneLine(
      await runDftp(['receive', '--out', join(aFile, 'sub')], { home: p.bob, timeoutMs: 30_000 }),
      1,
      /^dftp: cannot write into .*a-file\/sub: ENOTDIR$/,
    );
  });

  test('an output folder that stops taking files mid-way pauses the transfer, tells the sender why, and goes on', async () => {
    const p = await peers();
    const out = join(p.root, 'out');
    await mkdir(out);
    const user = await asNobody(p, [p.bob, out]);
    const file = join(p.root, 'later.bin');
    await writeRandomFile(file, 256 * 1024);
    const receiver = bg(['receive', '--from', 'alice', '--out', out, '--count', '1'], {
      home: p.bob,
      ...user,
      timeoutMs: 90_000,
    });
    // The receiver checked the folder at start and runs; then the folder is made read-only.
    await waitFor(
      'the receiver to run',
      async () => (await readdir(join(p.bob, 'locks')).catch(() => [] as string[])).includes('receive-files.lock'),
      30_000,
      { describe: () => describeBackground(receiver) },
    );
    await chmod(out, 0o555);
    try {
      const sender = bg(['send', 'bob', file, '--json'], { home: p.alice, timeoutMs: 90_000 });
      await waitFor(
        'the sender to be told',
        () => sender.stdout().includes(`cannot write into ${out}: permission denied`),
        30_000,
        { describe: () => describeBackground(sender) },
      );
      await chmod(out, 0o755);
      assertExit(await sender.done, 0);
      assertExit(await receiver.done, 0);
      assert.deepEqual(await readFile(join(out, 'later.bin')), await readFile(file));
    } finally {
      await chmod(out, 0o755);
    }
  });

  test('an unreadable file inside a folder is skipped with a warning, the rest is sent, exit 1 naming it', async () => {
    const p = await peers();
    const user = await asNobody(p, [p.alice]);
    const folder = join(p.root, 'docs');
    await mkdir(join(folder, 'private'), { recursive: true });
    await writeFile(join(folder, 'a.txt'), 'a\n');
    await writeFile(join(folder, 'secret.txt'), 'secret\n');
    await writeFile(join(folder, 'z.txt'), 'z\n');
    await writeFile(join(folder, 'private', 'inside.txt'), 'inside\n');
    await chmod(join(folder, 'secret.txt'), 0o000);
    await chmod(join(folder, 'private'), 0o000);
    const out = join(p.root, 'out');
    try {
      const receiver = bg(['receive', '--from', 'alice', '--out', out, '--count', '2'], {
        home: p.bob,
        timeoutMs: 60_000,
      });
      const sent = await runDftp(['send', 'bob', folder], { home: p.alice, ...user, timeoutMs: 60_000 });
      assertExit(sent, 1);
      assertExit(await receiver.done, 0);
      const said = lines(sent.stderr);
      assert.ok(said.includes(`dftp: skipped ${join(folder, 'private')}: permission denied`), describeResult(sent));
      assert.ok(said.includes(`dftp: skipped ${join(folder, 'secret.txt')}: permission denied`), describeResult(sent));
      assert.equal(
        said.at(-1),
        `dftp: 2 files could not be read and were not sent: ${join(folder, 'private')}, ${join(folder, 'secret.txt')}`,
      );
      assert.deepEqual(await listTree(out), ['docs/a.txt', 'docs/z.txt']);
    } finally {
      await chmod(join(folder, 'private'), 0o755);
    }
  });
});

describe('dftp list and cancel', { timeout: 180_000 }, () => {
  /** Alice sends 4 MiB slowly to bob until bob holds part of it; then both are stopped. */
  async function interruptedTransfer(p: Peers) {
    const file = join(p.root, 'movie.bin');
    await writeRandomFile(file, 4 * MiB);
    const out = join(p.root, 'out');
    const receiver = bg(['receive', '--from', 'alice', '--out', out, '--json'], { home: p.bob, timeoutMs: 60_000 });
    const sender = bg(['send', 'bob', file, '-bs', '64k', '--quota', '256k', '--json'], {
      home: p.alice,
      timeoutMs: 60_000,
    });
    await waitFor('bob to hold part of the file', () => /"event":"progress"/.test(receiver.stdout()), 30_000, {
      describe: () => `${describeBackground(sender)}\n${describeBackground(receiver)}`,
    });
    sender.kill('SIGINT');
    receiver.kill('SIGINT');
    assertExit(await sender.done, 130);
    assertExit(await receiver.done, 130);
    const partials = (await readdir(out)).filter((name) => name.endsWith('.dftp-part'));
    assert.equal(partials.length, 1, 'no partial file');
    return { file, out, partial: join(out, partials[0]!) };
  }

  test('dftp list shows an interrupted transfer on both sides, with the same bytes; --json has every field', async () => {
    const p = await peers();
    const { file, out } = await interruptedTransfer(p);
    const [sent] = await listed(p.alice);
    const [got] = await listed(p.bob);
    assert.ok(sent && got, 'not listed on both sides');
    assert.equal(sent.id, got.id);
    assert.deepEqual(
      {
        direction: sent.direction,
        peer: sent.peer,
        file: sent.file,
        path: sent.path,
        total: sent.total,
        active: sent.active,
      },
      { direction: 'send', peer: 'bob', file: 'movie.bin', path: file, total: 4 * MiB, active: false },
    );
    assert.deepEqual(
      {
        direction: got.direction,
        peer: got.peer,
        file: got.file,
        path: got.path,
        total: got.total,
        active: got.active,
      },
      {
        direction: 'receive',
        peer: 'alice',
        file: 'movie.bin',
        path: join(out, 'movie.bin'),
        total: 4 * MiB,
        active: false,
      },
    );
    // Both sides count what bob holds durably.
    assert.equal(sent.bytes, got.bytes);
    assert.ok(got.bytes > 0 && got.bytes < 4 * MiB, JSON.stringify(got));
    for (const entry of [sent, got]) {
      assert.equal(entry.blockSize, 64 * KiB);
      assert.ok(Date.parse(entry.lastActivity) >= Date.parse(entry.startedAt), JSON.stringify(entry));
    }
    const human = await runDftp(['list'], { home: p.alice });
    assertExit(human, 0);
    const [header, row] = lines(human.stdout);
    assert.match(header ?? '', /^ID +PEER +FILE +DONE +STATE +LAST ACTIVITY$/, human.stdout);
    assert.match(
      row ?? '',
      new RegExp(`^${sent.id.slice(0, 8)} +to bob +movie\\.bin +[\\d.]+ \\w+/4 MiB \\d+% +interrupted +\\d+ s ago$`),
      human.stdout,
    );
  });

  test('dftp cancel ID of a send withdraws it; the receiver deletes its partial; locks are gone', async () => {
    const p = await peers();
    const { file, out, partial } = await interruptedTransfer(p);
    const [sent] = await listed(p.alice);
    assert.ok(sent);
    const cancelled = await runDftp(['cancel', sent.id.slice(0, 6)], { home: p.alice });
    assertOneLine(
      cancelled,
      0,
      new RegExp(`^dftp: cancelled movie\\.bin to bob \\(${sent.id}\\): withdrawn from the relay`),
    );
    assert.deepEqual(await listed(p.alice), []);
    assert.deepEqual(await readdir(join(p.relay, 'alice', 'bob')), [], 'chunks or offer left in the relay');
    // The receiver, when it runs again, drops the partial and its state.
    const receiver = bg(['receive', '--from', 'alice', '--out', out, '--json'], { home: p.bob, timeoutMs: 60_000 });
    await waitFor('the partial to go', async () => !(await readdir(out)).includes(partial.split('/').at(-1)!), 30_000, {
      describe: () => describeBackground(receiver),
    });
    await waitFor('bob to forget the transfer', async () => (await listed(p.bob)).length === 0, 30_000);
    receiver.kill('SIGINT');
    await receiver.done;
    assert.deepEqual(await readdir(join(p.alice, 'locks')), [], 'locks left behind');
    // Sending the file again starts over, and works.
    const again = bg(['receive', '--from', 'alice', '--out', out, '--count', '1'], { home: p.bob, timeoutMs: 60_000 });
    const [resent, got] = await settleAll([
      bg(['send', 'bob', file], { home: p.alice, timeoutMs: 60_000 }),
      again,
    ] as const);
    assertExit(resent, 0);
    assertExit(got, 0);
    assert.equal(await fileSha256(join(out, 'movie.bin')), await fileSha256(file));
  });

  test('dftp cancel of a receive deletes the partial and tells the sender, which stops with one line', async () => {
    const p = await peers();
    const { file, partial } = await interruptedTransfer(p);
    const cancelled = await runDftp(['cancel', join(p.root, 'out', 'movie.bin')], { home: p.bob });
    assertOneLine(cancelled, 0, /^dftp: cancelled movie\.bin from alice \([0-9a-f]{16}\): partial file deleted/);
    await assert.rejects(lstat(partial), 'the partial file is still there');
    const rerun = await runDftp(['send', 'bob', file, '-bs', '64k', '--quota', '256k'], {
      home: p.alice,
      timeoutMs: 60_000,
    });
    assertExit(rerun, 1);
    assert.equal(lines(rerun.stderr).at(-1), 'dftp: bob rejected movie.bin: cancelled by bob', describeResult(rerun));
    assert.deepEqual(await listed(p.alice), []);
    assert.deepEqual(await listed(p.bob), [], 'the cancelled transfer is still listed once its sender withdrew it');
  });

  test('dftp cancel of an unknown transfer exits 1 with one line; none at all is a usage error', async () => {
    const p = await peers();
    assertOneLine(
      await runDftp(['cancel', 'abcd1234'], { home: p.alice }),
      1,
      /no transfer in flight matches 'abcd1234'/,
    );
    assertOneLine(await runDftp(['cancel'], { home: p.alice }), 2, /give the id of a transfer/);
  });

  test('a finished send leaves no lock or pid file in DMP_HOME/locks, and clears those of dead senders', async () => {
    const p = await peers();
    // What a sender killed long ago left (and every finished send, in earlier versions); and the
    // lock of a sender that still runs (this test process stands in for it).
    const locks = join(p.alice, 'locks');
    await mkdir(join(locks, 'send-0123456789abcdef.lock'), { recursive: true });
    await utimes(join(locks, 'send-0123456789abcdef.lock'), 1_000_000, 1_000_000);
    await writeFile(join(locks, 'send-0123456789abcdef.pid'), `${await deadPid()}\n`);
    await writeFile(join(locks, 'send-00000000000000aa.pid'), `${await deadPid()}\n`);
    await writeFile(join(locks, 'send-fedcba9876543210.pid'), `${process.pid}\n`);
    const file = join(p.root, 'small.bin');
    const other = join(p.root, 'other.bin');
    await writeRandomFile(file, 200 * KiB);
    await writeRandomFile(other, 100 * KiB);
    const receiver = bg(['receive', '--from', 'alice', '--out', join(p.root, 'out'), '--count', '2'], {
      home: p.bob,
      timeoutMs: 60_000,
    });
    const [sent, got] = await settleAll([
      bg(['send', 'bob', file, other], { home: p.alice, timeoutMs: 60_000 }),
      receiver,
    ] as const);
    assertExit(sent, 0);
    assertExit(got, 0);
    assert.deepEqual(await readdir(join(p.alice, 'locks')), ['send-fedcba9876543210.pid']);
    assert.deepEqual(await readdir(join(p.bob, 'locks')), []);
  });
});
