/**
 * The `dftp` command line through real processes: alice and bob each have their own DMP_HOME
 * (made by `dmp init` with one key) and talk through a temporary relay folder. Every child is
 * killed in the hooks, whatever happens.
 */
import assert from 'node:assert/strict';
import { appendFile, mkdir, open, readFile, stat, statfs, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { describe, test } from 'node:test';
import {
  type Background,
  completeJsonLines,
  describeBackground,
  describeResult,
  jsonLines,
  lines,
  type RunResult,
  runDftp,
  settleAll,
  stackLines,
  type startDftp,
  type startDmp,
} from '../support/cli.js';
import { fileSha256, GiB, KiB, listTree, MiB, sampleTree, writeRandomFile } from '../support/files.js';
import { processFixture } from '../support/fixture.js';
import { waitFor } from '../support/wait.js';

interface Event {
  event: string;
  peer?: string;
  file?: string;
  path?: string;
  tid?: string;
  bytes?: number;
  total?: number;
  sha256?: string;
  resumed?: boolean;
  reason?: string;
  relayBytes?: number;
}

/**
 * A fixed modification time in seconds, with a sub-millisecond part as real files have
 * (2026-11-21T19:57:59.9615Z). Fixed, not left to the clock, so that the check does not depend
 * on luck: about half of all times lose their last millisecond when copied through a Date.
 */
const MTIME_S = 1_795_291_079.9615;

const fx = processFixture('dftp-cli-');
const { peers } = fx;

function bgDftp(...args: Parameters<typeof startDftp>): Background {
  return fx.bg('dftp', ...args);
}

function bgDmp(...args: Parameters<typeof startDmp>): Background {
  return fx.bg('dmp', ...args);
}

/** Every result exited 0; a child that failed by itself is reported before those it took down. */
function assertAllExit0(results: RunResult[]): void {
  const failed = results.find((result) => result.code !== 0 && result.signal === null);
  if (failed) assertExit(failed, 0);
  for (const result of results) assertExit(result, 0);
}

function assertExit(result: RunResult, code: number): void {
  assert.equal(result.timedOut, false, `hard timeout: ${describeResult(result)}`);
  assert.equal(result.code, code, describeResult(result));
}

/** Exit 2 with one line on stderr and no stack trace. */
function assertUsageError(result: RunResult, pattern?: RegExp): void {
  assertExit(result, 2);
  assert.deepEqual(stackLines(result.stderr), [], `stack trace printed: ${describeResult(result)}`);
  const errorLines = lines(result.stderr);
  assert.equal(errorLines.length, 1, `expected one line on stderr: ${describeResult(result)}`);
  if (pattern) assert.match(errorLines[0] ?? '', pattern, describeResult(result));
}

/** The largest `bytes` of the progress events printed so far by a --json process. */
function progressBytes(child: Background): number {
  let most = 0;
  for (const event of completeJsonLines<Event>(child.stdout())) {
    if (event.event === 'progress') most = Math.max(most, event.bytes ?? 0);
  }
  return most;
}

function events(result: RunResult, name: string): Event[] {
  return jsonLines<Event>(result.stdout).filter((event) => event.event === name);
}

async function assertSameFile(received: string, sent: string): Promise<void> {
  const [a, b] = await Promise.all([stat(sent), stat(received).catch(() => undefined)]);
  assert.ok(b, `${received} does not exist`);
  assert.equal(b.size, a.size, `${received}: ${b.size} bytes, sent ${a.size}`);
  assert.equal(await fileSha256(received), await fileSha256(sent), `${received} differs from ${sent}`);
}

const receiveArgs = (out: string, ...more: string[]) => ['receive', '--from', 'alice', '--out', out, ...more];

/**
 * Starts a 64 MiB send, kills the sender with SIGKILL once bob holds part of the file, and runs
 * the same command again at once: it must resume and finish. The sender takes its quota lock
 * (DMP_HOME/locks/quota.lock, a proper-lockfile directory) around every publish, so a kill lands
 * inside it now and then; `insideQuotaLock` makes that case certain by leaving the lock directory
 * on disk exactly as a process killed inside it leaves it.
 */
async function killSenderAndRerun(options: { insideQuotaLock: boolean }): Promise<void> {
  const p = await peers();
  const file = join(p.root, 'resume.bin');
  await writeRandomFile(file, 64 * MiB);
  const out = join(p.root, 'out');
  const sendArgs = ['send', 'bob', file, '-bs', '1m', '--quota', '4m', '--json'];

  const receiver = bgDftp(receiveArgs(out, '--count', '1', '--json'), { home: p.bob, timeoutMs: 150_000 });
  const first = bgDftp(sendArgs, { home: p.alice, timeoutMs: 150_000 });
  await waitFor('the transfer to start', () => progressBytes(first) > 0, 60_000, {
    describe: () => describeBackground(first),
  });
  first.kill('SIGKILL');
  const killed = await first.done;
  assert.equal(killed.signal, 'SIGKILL', `the sender was not killed mid-transfer: ${describeResult(killed)}`);
  assert.ok(!(await listTree(out)).includes('resume.bin'), 'the file was complete before the kill');
  if (options.insideQuotaLock) await mkdir(join(p.alice, 'locks', 'quota.lock'), { recursive: true });
  const before = progressBytes(first);

  const [second, got] = await settleAll([bgDftp(sendArgs, { home: p.alice, timeoutMs: 150_000 }), receiver] as const);
  assertAllExit0([second, got]);
  await assertSameFile(join(out, 'resume.bin'), file);
  assert.deepEqual(await listTree(out), ['resume.bin']);

  const [firstEvent] = jsonLines<Event>(second.stdout);
  assert.equal(firstEvent?.event, 'offer', describeResult(second));
  assert.equal(firstEvent?.resumed, true, `the second run did not resume: ${describeResult(second)}`);
  // What bob already had is not sent again.
  const relayBytes = events(second, 'done')[0]?.relayBytes;
  if (relayBytes !== undefined) {
    assert.ok(
      relayBytes < 64 * MiB - before + 8 * MiB,
      `the rerun wrote ${relayBytes} bytes into the relay though bob had ${before}`,
    );
  }
}

describe('dftp send and receive', () => {
  test('a 64 MiB file with -bs 1m --quota 8m: the relay never holds more than 8 MiB of alice, the file arrives identical with its mtime', {
    timeout: 180_000,
  }, async (t) => {
    const p = await peers();
    const file = join(p.root, 'big.bin');
    await writeRandomFile(file, 64 * MiB);
    await utimes(file, MTIME_S, MTIME_S);
    const out = join(p.root, 'out');

    const sampler = sampleTree(join(p.relay, 'alice'), 20);
    const receiver = bgDftp(receiveArgs(out, '--count', '1', '--json'), { home: p.bob, timeoutMs: 150_000 });
    const sender = bgDftp(['send', 'bob', file, '-bs', '1m', '--quota', '8m', '--json'], {
      home: p.alice,
      timeoutMs: 150_000,
    });
    const [sent, got] = await settleAll([sender, receiver] as const);
    const samples = await sampler.stop();
    t.diagnostic(`relay samples: ${samples.samples}, non-empty: ${samples.positive}, peak: ${samples.peak} bytes`);
    assertAllExit0([sent, got]);
    assert.ok(samples.peak <= 8 * MiB, `alice's relay folder held ${samples.peak} bytes, quota 8 MiB`);
    assert.ok(
      samples.positive >= 3,
      `the sampler saw chunks in only ${samples.positive} of ${samples.samples} samples: it proved nothing`,
    );
    const received = join(out, 'big.bin');
    await assertSameFile(received, file);
    const sha = await fileSha256(file);
    assert.equal(events(sent, 'done')[0]?.sha256, sha);
    assert.equal(events(got, 'done')[0]?.path, received);
    assert.equal(events(got, 'done')[0]?.sha256, sha);
    // Done means cleaned up: no chunk or offer of alice left, no partial file in out.
    assert.deepEqual(
      (await listTree(join(p.relay, 'alice'))).filter((name) => /(offer|chunk)-/.test(name)),
      [],
    );
    assert.deepEqual(await listTree(out), ['big.bin']);
    const [a, b] = await Promise.all([stat(file), stat(received)]);
    assert.equal(
      Math.floor(b.mtimeMs),
      Math.floor(a.mtimeMs),
      `mtime not kept: received ${b.mtimeMs} (${b.mtime.toISOString()}), sent ${a.mtimeMs} (${a.mtime.toISOString()})`,
    );
  });

  test('kill -9 of the receiver mid-transfer: the receiver started again at once finishes, identical', {
    timeout: 180_000,
  }, async () => {
    const p = await peers();
    const file = join(p.root, 'resume.bin');
    await writeRandomFile(file, 64 * MiB);
    const out = join(p.root, 'out');
    const args = receiveArgs(out, '--count', '1', '--json');

    const first = bgDftp(args, { home: p.bob, timeoutMs: 150_000 });
    const sender = bgDftp(['send', 'bob', file, '-bs', '1m', '--quota', '4m', '--json'], {
      home: p.alice,
      timeoutMs: 150_000,
    });
    // The sender's progress means bob has written chunks durably and said so.
    await waitFor('the transfer to start', () => progressBytes(sender) > 0, 60_000, {
      describe: () => describeBackground(sender),
    });
    first.kill('SIGKILL');
    const killed = await first.done;
    assert.equal(killed.signal, 'SIGKILL', `the receiver was not killed mid-transfer: ${describeResult(killed)}`);
    assert.ok(!(await listTree(out)).includes('resume.bin'), 'the file was complete before the kill');
    assert.ok(
      (await listTree(out)).some((name) => /^\.resume\.bin\.[0-9a-f]{16}\.dftp-part$/.test(name)),
      `no partial file in out: ${JSON.stringify(await listTree(out))}`,
    );

    const second = bgDftp(args, { home: p.bob, timeoutMs: 150_000 });
    const [sent, got] = await settleAll([sender, second] as const);
    assertAllExit0([sent, got]);
    await assertSameFile(join(out, 'resume.bin'), file);
    assert.deepEqual(await listTree(out), ['resume.bin']);
    // The restarted receiver picked up its partial file.
    assert.equal(events(got, 'offer')[0]?.resumed, true, describeResult(got));
  });

  test(
    'kill -9 of the sender mid-transfer: the same command run again at once resumes, identical',
    {
      timeout: 180_000,
    },
    () => killSenderAndRerun({ insideQuotaLock: false }),
  );

  test(
    'kill -9 of the sender inside its quota lock: the same command run again at once resumes, identical',
    {
      timeout: 180_000,
    },
    () => killSenderAndRerun({ insideQuotaLock: true }),
  );

  test('a source that changes during the send: exit 1 with a one-line reason; the receiver drops its partial', {
    timeout: 120_000,
  }, async () => {
    const p = await peers();
    const file = join(p.root, 'growing.log');
    await writeRandomFile(file, 64 * MiB);
    const out = join(p.root, 'out');
    const receiver = bgDftp(receiveArgs(out, '--json'), { home: p.bob, timeoutMs: 100_000 });
    const sender = bgDftp(['send', 'bob', file, '-bs', '1m', '--quota', '4m'], { home: p.alice, timeoutMs: 100_000 });
    await waitFor(
      'the transfer to start',
      async () => (await listTree(out)).some((name) => name.endsWith('.dftp-part')),
      60_000,
      { describe: () => describeBackground(sender) },
    );
    await appendFile(file, 'one more line\n');
    const sent = await sender.done;
    assertExit(sent, 1);
    assert.deepEqual(stackLines(sent.stderr), [], describeResult(sent));
    assert.match(lines(sent.stderr).at(-1) ?? '', /changed while it was being sent/, describeResult(sent));
    // The sender withdrew the transfer: bob drops the partial and reports the failure.
    await waitFor(
      'bob to drop the withdrawn transfer',
      async () =>
        (await listTree(out)).length === 0 &&
        completeJsonLines<Event>(receiver.stdout()).some((event) => event.event === 'failed'),
      30_000,
      { describe: () => describeBackground(receiver) },
    );
    assert.deepEqual(
      (await listTree(join(p.relay, 'alice'))).filter((name) => /(offer|chunk)-/.test(name)),
      [],
    );
    assert.ok(receiver.running(), `the receiver stopped: ${describeBackground(receiver)}`);
  });

  test('hostile and Unicode names arrive inside out with clean names; no raw escape reaches the terminal', {
    timeout: 90_000,
  }, async () => {
    const p = await peers();
    const src = join(p.root, 'src');
    await mkdir(src);
    // [name on alice's disk, name expected on bob's]
    const names: [string, string][] = [
      ['ünïcødé 文件.txt', 'ünïcødé 文件.txt'],
      ['cafe\u0301 NFD.txt', 'caf\u00e9 NFD.txt'],
      ['semi;colon', 'semi;colon'],
      ['new\nline.txt', 'newline.txt'],
      ['\u001b[31mred\u001b[0m.txt', 'red.txt'],
      ['\u001b]0;pwned\u0007title.txt', ']0;pwnedtitle.txt'],
      ['bell\u0007.txt', 'bell.txt'],
      ['CON.txt', '_CON.txt'],
      ['nul', '_nul'],
      ['q?u*o"t<e>s|.txt', 'q_u_o_t_e_s_.txt'],
      ['trailing dot.', 'trailing dot'],
      ['..hidden..txt', '..hidden..txt'],
    ];
    const paths: string[] = [];
    for (const [index, [name]] of names.entries()) {
      const path = join(src, name);
      await writeFile(path, `file ${index}: ${name}\n`);
      paths.push(path);
    }
    const out = join(p.root, 'out');
    const receiver = bgDftp(receiveArgs(out, '--count', String(names.length)), { home: p.bob, timeoutMs: 60_000 });
    const sender = bgDftp(['send', 'bob', ...paths], { home: p.alice, timeoutMs: 60_000 });
    const [sent, got] = await settleAll([sender, receiver] as const);
    assertAllExit0([sent, got]);

    assert.deepEqual(await listTree(out), names.map(([, clean]) => clean).sort());
    for (const [index, [name, clean]] of names.entries()) {
      assert.equal(await readFile(join(out, clean), 'utf8'), `file ${index}: ${name}\n`, `content of ${clean}`);
    }
    for (const [who, result] of [
      ['receiver', got],
      ['sender', sent],
    ] as const) {
      assert.ok(!result.stdout.includes('\u001b'), `raw ESC on the ${who}'s stdout: ${JSON.stringify(result.stdout)}`);
      assert.ok(!result.stderr.includes('\u001b'), `raw ESC on the ${who}'s stderr: ${JSON.stringify(result.stderr)}`);
      assert.ok(!result.stderr.includes('\u0007'), `raw BEL on the ${who}'s stderr: ${JSON.stringify(result.stderr)}`);
    }
    // Nothing was written outside out (the temp root holds only what the test made).
    assert.deepEqual(
      (await listTree(p.root)).filter((name) => !/^(out|src|relay|home-alice|home-bob)\//.test(name)),
      [],
    );
  });

  test('an existing file is kept and the new one is "a (1).txt"; with --overwrite it is replaced', {
    timeout: 90_000,
  }, async () => {
    const p = await peers();
    const out = join(p.root, 'out');
    await mkdir(out);
    const old = 'bob had this a.txt first\n';
    await writeFile(join(out, 'a.txt'), old);
    const src = join(p.root, 'src');
    await mkdir(src);
    const file = join(src, 'a.txt');
    await writeRandomFile(file, 100 * KiB);

    const receiver = bgDftp(receiveArgs(out, '--count', '1', '--json'), { home: p.bob, timeoutMs: 60_000 });
    const sender = bgDftp(['send', 'bob', file], { home: p.alice, timeoutMs: 60_000 });
    const [sent, got] = await settleAll([sender, receiver] as const);
    assertAllExit0([sent, got]);
    assert.equal(await readFile(join(out, 'a.txt'), 'utf8'), old, 'the existing a.txt was changed');
    await assertSameFile(join(out, 'a (1).txt'), file);
    assert.equal(events(got, 'done')[0]?.path, join(out, 'a (1).txt'));

    await writeRandomFile(file, 120 * KiB);
    const again = bgDftp(receiveArgs(out, '--count', '1', '--overwrite', '--json'), {
      home: p.bob,
      timeoutMs: 60_000,
    });
    const sender2 = bgDftp(['send', 'bob', file], { home: p.alice, timeoutMs: 60_000 });
    const [sent2, replaced] = await settleAll([sender2, again] as const);
    assertAllExit0([sent2, replaced]);
    await assertSameFile(join(out, 'a.txt'), file);
    assert.equal(events(replaced, 'done')[0]?.path, join(out, 'a.txt'));
    assert.deepEqual(await listTree(out), ['a (1).txt', 'a.txt']);
  });

  test('a directory tree keeps its layout: nested folders, an empty file, a file of exactly 4 blocks', {
    timeout: 90_000,
  }, async () => {
    const p = await peers();
    const src = join(p.root, 'src');
    const files: [string, number][] = [
      ['tree/top.txt', 11],
      ['tree/empty.txt', 0],
      ['tree/one.byte', 1],
      ['tree/exact-4-blocks.bin', 4 * 64 * KiB],
      ['tree/sub/data.bin', 200 * KiB + 7],
      ['tree/sub/deeper/deepest/note.md', 300],
      ['tree/ünï/文件.txt', 42],
    ];
    for (const [name, size] of files) {
      await mkdir(join(src, name, '..'), { recursive: true });
      await writeRandomFile(join(src, name), size);
    }
    const out = join(p.root, 'out');
    const receiver = bgDftp(receiveArgs(out, '--count', String(files.length), '--json'), {
      home: p.bob,
      timeoutMs: 60_000,
    });
    const sender = bgDftp(['send', 'bob', join(src, 'tree'), '-bs', '64k'], { home: p.alice, timeoutMs: 60_000 });
    const [sent, got] = await settleAll([sender, receiver] as const);
    assertAllExit0([sent, got]);
    assert.deepEqual(await listTree(out), files.map(([name]) => name).sort());
    for (const [name] of files) await assertSameFile(join(out, name), join(src, name));
    for (const done of events(got, 'done')) {
      assert.ok(done.path?.startsWith(out + sep), `${done.path} is outside ${out}`);
    }
  });

  test('--json prints progress and done events with the required fields on both sides', {
    timeout: 90_000,
  }, async () => {
    const p = await peers();
    const file = join(p.root, 'data.bin');
    await writeRandomFile(file, 300 * KiB + 5);
    const sha = await fileSha256(file);
    const out = join(p.root, 'out');
    const receiver = bgDftp(receiveArgs(out, '--count', '1', '--json'), { home: p.bob, timeoutMs: 60_000 });
    // Suffixes of both families: k (x1024, any case) and MB.
    const sender = bgDftp(['send', 'bob', file, '-bs', '64K', '--quota', '1MB', '--json'], {
      home: p.alice,
      timeoutMs: 60_000,
    });
    const [sent, got] = await settleAll([sender, receiver] as const);
    assertAllExit0([sent, got]);

    for (const [side, result, path] of [
      ['sender', sent, undefined],
      ['receiver', got, join(out, 'data.bin')],
    ] as const) {
      const all = jsonLines<Event>(result.stdout);
      const progress = all.filter((event) => event.event === 'progress');
      assert.ok(progress.length > 0, `${side}: no progress event: ${describeResult(result)}`);
      for (const event of progress) {
        assert.equal(event.file, 'data.bin');
        assert.equal(typeof event.bytes, 'number');
        assert.equal(event.total, 300 * KiB + 5);
        assert.ok((event.bytes ?? -1) >= 0 && (event.bytes ?? 0) <= (event.total ?? 0), JSON.stringify(event));
      }
      assert.equal(progress.at(-1)?.bytes, 300 * KiB + 5, `${side}: progress never reached the total`);
      const done = all.filter((event) => event.event === 'done');
      assert.equal(done.length, 1, `${side}: ${describeResult(result)}`);
      assert.equal(done[0]?.file, 'data.bin');
      assert.equal(done[0]?.bytes, 300 * KiB + 5);
      assert.equal(done[0]?.sha256, sha);
      if (path) assert.equal(done[0]?.path, path);
    }
    await assertSameFile(join(out, 'data.bin'), file);
  });

  test('dmp listen and dftp receive run at once for bob without taking each other’s messages', {
    timeout: 90_000,
  }, async () => {
    const p = await peers();
    const file = join(p.root, 'photo.jpg');
    await writeRandomFile(file, 200 * KiB);
    const out = join(p.root, 'out');
    const listen = bgDmp(['listen', '--count', '2', '--json', '--timeout', '60'], { home: p.bob, timeoutMs: 70_000 });
    const receive = bgDftp(['receive', '--count', '1', '--out', out, '--json'], { home: p.bob, timeoutMs: 70_000 });
    const [one, two, sent, heard, got] = await settleAll([
      bgDmp(['send', 'bob', 'hello one'], { home: p.alice }),
      bgDmp(['send', 'bob', 'hello two'], { home: p.alice }),
      bgDftp(['send', 'bob', file], { home: p.alice, timeoutMs: 60_000 }),
      listen,
      receive,
    ] as const);
    assertAllExit0([one, two, sent, heard, got]);
    const texts = jsonLines<{ from: string; text: string }>(heard.stdout)
      .map((message) => `${message.from}:${message.text}`)
      .sort();
    assert.deepEqual(texts, ['alice:hello one', 'alice:hello two']);
    assert.equal(events(got, 'done').length, 1, describeResult(got));
    await assertSameFile(join(out, 'photo.jpg'), file);
  });
});

describe('dftp usage errors', () => {
  test('bad sizes, a quota smaller than a block, and a bad --count exit 2 with one line', {
    timeout: 90_000,
  }, async () => {
    const p = await peers();
    const file = join(p.root, 'small.txt');
    await writeFile(file, 'small\n');
    const send = (...more: string[]) => runDftp(['send', 'bob', file, ...more], { home: p.alice, timeoutMs: 20_000 });
    for (const bad of ['1x', '4mm', 'm', '-1', '0', '1.5.2', 'four']) {
      assertUsageError(await send('-bs', bad), /block size/);
    }
    for (const bad of ['1KiB', '8 MiB', '1x', '0']) assertUsageError(await send('--quota', bad), /quota/);
    // The quota must hold one block plus 1 KiB of framing.
    assertUsageError(await send('-bs', '4m', '--quota', '4m'), /quota/);
    assertUsageError(await send('-bs', '1m', '--quota', '1m'), /quota/);
    assertUsageError(await send('--block-size', '64k', '--quota', '64k'), /quota/);
    const receive = (...more: string[]) => runDftp(['receive', ...more], { home: p.bob, timeoutMs: 20_000 });
    assertUsageError(await receive('--count', '0'));
    assertUsageError(await receive('--count', 'many'));
    assertUsageError(await runDftp(['send'], { home: p.alice }));
    assertUsageError(await runDftp(['frobnicate'], { home: p.alice }));
    // Nothing was published by any of them.
    assert.deepEqual(
      (await listTree(join(p.relay, 'alice'))).filter((name) => /(offer|chunk)-/.test(name)),
      [],
    );
  });
});

const SLOW_SKIPPED = process.env.CI === undefined && process.env.DMP_SKIP_SLOW !== undefined;

describe('dftp with a file over 4 GiB', () => {
  test('a sparse 4 GiB + 3 bytes file sent with the default block size and quota arrives identical', {
    // Never skipped in CI; locally only when DMP_SKIP_SLOW is set.
    skip: SLOW_SKIPPED ? 'DMP_SKIP_SLOW is set (this test always runs when CI is set)' : false,
    timeout: 15 * 60_000,
  }, async () => {
    const free = await statfs(tmpdir());
    const freeBytes = free.bavail * free.bsize;
    assert.ok(
      freeBytes >= 10 * GiB,
      `this test needs 10 GiB free in ${tmpdir()} (the received copy is not sparse); ${(freeBytes / GiB).toFixed(1)} GiB free`,
    );
    const p = await peers();
    const size = 4 * GiB + 3;
    const file = join(p.root, 'huge.img');
    const handle = await open(file, 'w');
    try {
      await handle.truncate(size);
      await handle.write(Buffer.from('HEAD of a sparse file\n'), 0, 22, 0);
      await handle.write(Buffer.from('in the middle'), 0, 13, 2 * GiB + 12_345);
      await handle.write(Buffer.from('END'), 0, 3, size - 3);
    } finally {
      await handle.close();
    }
    const out = join(p.root, 'out');
    const receiver = bgDftp(receiveArgs(out, '--count', '1', '--json'), { home: p.bob, timeoutMs: 14 * 60_000 });
    const sender = bgDftp(['send', 'bob', file, '--json'], { home: p.alice, timeoutMs: 14 * 60_000 });
    const [sent, got] = await settleAll([sender, receiver] as const);
    assertAllExit0([sent, got]);
    const received = join(out, 'huge.img');
    assert.equal((await stat(received)).size, size);
    const sha = await fileSha256(file);
    assert.equal(await fileSha256(received), sha, 'the received file differs');
    assert.equal(events(sent, 'done')[0]?.sha256, sha);
    assert.equal(events(got, 'done')[0]?.bytes, size);
    // The default block size is 4 MiB: 1,025 chunks, the last one 3 bytes.
    assert.equal(events(sent, 'offer')[0]?.total, size);
  });
});
