/**
 * `dmp daemon` through real processes: alice and bob each have their own DMP_HOME (made by
 * `dmp init` with one key) and a daemon each, talking through a temporary relay folder. What is
 * checked is the contract of the unattended service: messages, pings, the outbox spool (what it
 * takes, what it leaves alone, sent/ and failed/), one daemon per peer, signals, kill -9 and
 * resume, the JSON log and its rotation, a relay folder that goes away for a while, and
 * `dmp status`. Every child is killed in the hooks, whatever happens.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { jsonLogger } from '../../src/daemon/log-file.js';
import { isDmpError } from '../../src/errors.js';
import { FolderRelay } from '../../src/relay/folder-relay.js';
import { ACK_NAME } from '../../src/stream/names.js';
import { parsePeerId } from '../../src/util/peer-id.js';
import {
  type Background,
  describeBackground,
  describeResult,
  jsonLines,
  killAll,
  lines,
  makePeers,
  type Peers,
  runDftp,
  runDmp,
  startDmp,
} from '../support/cli.js';
import { fileSha256, KiB, listTree, MiB, writeRandomFile } from '../support/files.js';
import { sleep, waitFor } from '../support/wait.js';

/** One line of the daemon's JSON log. */
interface LogLine {
  time: string;
  level: string;
  event: string;
  peer?: string;
  file?: string;
  bytes?: number;
  total?: number;
  resumed?: boolean;
  reason?: string;
  code?: string;
  error?: string;
  relayBytes?: number;
  movedTo?: string;
  [field: string]: unknown;
}

interface StatusJson {
  self: string;
  at: string;
  daemon: { running: boolean; pid?: number };
  relay: { reachable: boolean; error?: string };
  peers: { peer: string; lastHeard?: string; outgoing?: number; incoming?: number }[];
  transfers: {
    id: string;
    direction: string;
    peer: string;
    file: string;
    bytes: number;
    total: number;
    rate: number;
    state: string;
    active: boolean;
    startedAt: string;
    lastActivity: string;
  }[];
  spool: { peer: string; file: string; size: number; since: string }[];
  relayBytes: number;
  quota: number;
}

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  killAll();
  for (const cleanup of cleanups.splice(0)) await cleanup().catch(() => {});
});

after(() => killAll());

async function peers(): Promise<Peers> {
  const made = await makePeers('dmp-daemon-');
  cleanups.push(made.cleanup);
  return made;
}

/** The complete JSON lines of a daemon's stderr; anything else (a crash message) is skipped. */
function logOf(daemon: Background): LogLine[] {
  return parseLog(daemon.stderr());
}

function parseLog(text: string): LogLine[] {
  const end = text.lastIndexOf('\n');
  const found: LogLine[] = [];
  for (const line of lines(end < 0 ? '' : text.slice(0, end))) {
    try {
      found.push(JSON.parse(line) as LogLine);
    } catch {
      // Not a log line.
    }
  }
  return found;
}

/** Starts `dmp daemon` for the peer living in `home` and waits until it says it runs. */
async function startDaemon(home: string, args: readonly string[] = []): Promise<Background> {
  const daemon = startDmp(['daemon', ...args], { home, timeoutMs: 180_000 });
  await waitFor(
    'the daemon to start',
    () => !daemon.running() || logOf(daemon).some((line) => line.event === 'daemon-started'),
    30_000,
    { describe: () => describeBackground(daemon) },
  );
  assert.ok(daemon.running(), `the daemon exited at start\n${describeBackground(daemon)}`);
  return daemon;
}

/** Stops a daemon with `signal` and returns how it ended; SIGKILL (and a failure) after `graceMs`. */
async function stopDaemon(daemon: Background, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) {
  daemon.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), graceMs);
  });
  const outcome = await Promise.race([daemon.done, late]);
  clearTimeout(timer);
  if (outcome === 'late') {
    daemon.kill('SIGKILL');
    await daemon.done;
    assert.fail(`the daemon did not stop within ${graceMs} ms of ${signal}\n${describeBackground(daemon)}`);
  }
  return outcome;
}

async function waitForLog(daemon: Background, what: string, predicate: (line: LogLine) => boolean, timeoutMs = 30_000) {
  await waitFor(`${what} in the daemon's log`, () => logOf(daemon).some(predicate), timeoutMs, {
    describe: () => describeBackground(daemon),
  });
}

/** Visible files (no dot-names: partials are hidden) under `dir`, '/'-separated, sorted. */
async function visibleFiles(dir: string): Promise<string[]> {
  return (await listTree(dir)).filter((path) => !path.split('/').some((part) => part.startsWith('.')));
}

/** Waits until `path` exists with `size` bytes, then checks its content against `sha256`. */
async function waitForCopy(path: string, size: number, sha256: string, timeoutMs = 45_000, context = () => '') {
  await waitFor(
    `${path} (${size} bytes)`,
    async () => (await stat(path).catch(() => undefined))?.size === size,
    timeoutMs,
    { describe: context },
  );
  assert.equal(await fileSha256(path), sha256, `${path} differs from what was sent`);
}

/** Every entry under `dir` with its size and mtime: a fingerprint of the folder. */
async function snapshot(dir: string): Promise<string[]> {
  const found: string[] = [];
  const visit = async (path: string): Promise<void> => {
    for (const entry of await readdir(path, { withFileTypes: true }).catch(() => [])) {
      const full = join(path, entry.name);
      const name = relative(dir, full).split(sep).join('/');
      if (entry.isDirectory()) {
        found.push(`${name}/`);
        await visit(full);
      } else {
        // A file that went between the listing and the stat is recorded as such.
        const info = await stat(full).catch(() => undefined);
        found.push(info ? `${name} ${info.size} ${info.mtimeMs}` : `${name} (gone)`);
      }
    }
  };
  await visit(dir);
  return found.sort();
}

async function statusJson(home: string): Promise<StatusJson> {
  const result = await runDmp(['status', '--json'], { home, timeoutMs: 30_000 });
  assert.equal(result.code, 0, describeResult(result));
  const reports = jsonLines<StatusJson>(result.stdout);
  assert.equal(reports.length, 1, describeResult(result));
  return reports[0]!;
}

describe('dmp daemon', { timeout: 300_000 }, () => {
  test('answers pings and keeps messages for dmp listen, each shown once and in order', async () => {
    const { alice, bob } = await peers();
    await startDaemon(alice);
    const bobDaemon = await startDaemon(bob);

    const ping = await runDmp(['ping', 'bob', '-c', '2', '-i', '0.2', '-W', '15'], { home: alice });
    assert.equal(ping.code, 0, describeResult(ping));
    assert.match(ping.stdout, /reply from bob: seq=1/, describeResult(ping));
    assert.match(ping.stdout, /2 received/, describeResult(ping));

    for (const text of ['first', 'second', 'third']) {
      const sent = await runDmp(['send', 'bob', text], { home: alice });
      assert.equal(sent.code, 0, describeResult(sent));
    }
    // The daemon receives them into bob's inbox; listen shows them while the daemon keeps running.
    await waitForLog(bobDaemon, 'the three messages', (line) => line.event === 'messages-received' && line.last === 3);
    const listen = await runDmp(['listen', '--count', '3', '--json'], { home: bob, timeoutMs: 30_000 });
    assert.equal(listen.code, 0, describeResult(listen));
    const shown = jsonLines<{ from: string; seq: number; text: string }>(listen.stdout);
    assert.deepEqual(
      shown.map(({ from, seq, text }) => ({ from, seq, text })),
      [
        { from: 'alice', seq: 1, text: 'first' },
        { from: 'alice', seq: 2, text: 'second' },
        { from: 'alice', seq: 3, text: 'third' },
      ],
      describeResult(listen),
    );
    assert.ok(bobDaemon.running(), 'dmp listen stopped the daemon');

    const again = await runDmp(['listen', '--timeout', '3'], { home: bob, timeoutMs: 30_000 });
    assert.equal(again.timedOut, false, describeResult(again));
    assert.equal(again.stdout, '', `a message was shown twice\n${describeResult(again)}`);
    assert.ok(bobDaemon.running(), 'dmp listen stopped the daemon');
  });

  test('dftp send --queue returns at once; the daemon delivers, moves the file to sent/ and empties the outbox', async () => {
    const { root, alice, bob } = await peers();
    await startDaemon(alice);
    await startDaemon(bob);
    const source = join(root, 'report.bin');
    await writeRandomFile(source, 4 * MiB + 123);
    const sha = await fileSha256(source);
    const tree = join(root, 'photos');
    await mkdir(join(tree, '2024'), { recursive: true });
    await writeFile(join(tree, '2024', 'beach.txt'), 'sand\n');

    const queued = await runDftp(['send', '--queue', 'bob', source, tree], { home: alice, timeoutMs: 30_000 });
    assert.equal(queued.code, 0, describeResult(queued));
    assert.match(queued.stderr, /2 files queued for bob/, describeResult(queued));

    await waitForCopy(join(bob, 'inbox', 'alice', 'report.bin'), 4 * MiB + 123, sha);
    await waitFor(
      'the file queued with its folder',
      () => existsSync(join(bob, 'inbox', 'alice', 'photos', '2024', 'beach.txt')),
      45_000,
    );
    assert.equal(await readFile(join(bob, 'inbox', 'alice', 'photos', '2024', 'beach.txt'), 'utf8'), 'sand\n');
    await waitFor(
      "both files in alice's sent/bob",
      async () => (await visibleFiles(join(alice, 'sent', 'bob'))).length === 2,
      30_000,
    );
    assert.deepEqual(await listTree(join(alice, 'sent', 'bob')), ['photos/2024/beach.txt', 'report.bin']);
    assert.equal(await fileSha256(join(alice, 'sent', 'bob', 'report.bin')), sha);
    // The outbox is empty: no file, and no folder the move left behind.
    assert.deepEqual(await readdir(join(alice, 'outbox', 'bob')), []);
    assert.deepEqual(await visibleFiles(join(bob, 'inbox', 'alice')), ['photos/2024/beach.txt', 'report.bin']);
  });

  test('the spool leaves dot and temp names alone and takes a file being written only once complete', async () => {
    const { root, alice, bob } = await peers();
    await startDaemon(alice);
    const bobDaemon = await startDaemon(bob);
    const spool = join(alice, 'outbox', 'bob');
    await mkdir(spool, { recursive: true });
    const ignored = ['.hidden.bin', 'x.part', 'y.tmp'];
    for (const name of ignored) await writeFile(join(spool, name), `not for sending: ${name}\n`);

    // A file written slowly, as a download or a slow cp would: a chunk every 300 ms for ~2 s.
    const slow = join(spool, 'slow.bin');
    const chunks: Buffer[] = [];
    for (let i = 0; i < 7; i += 1) {
      const chunk = Buffer.alloc(64 * KiB, i + 1);
      chunks.push(chunk);
      await appendFile(slow, chunk);
      await sleep(300);
    }
    const whole = Buffer.concat(chunks);

    const source = join(root, 'after.bin');
    await writeRandomFile(source, 200 * KiB);
    const queued = await runDftp(['send', '--queue', 'bob', source], { home: alice, timeoutMs: 30_000 });
    assert.equal(queued.code, 0, describeResult(queued));

    const inbox = join(bob, 'inbox', 'alice');
    await waitForCopy(join(inbox, 'after.bin'), 200 * KiB, await fileSha256(source), 45_000, () =>
      describeBackground(bobDaemon),
    );
    await waitFor(
      "two files in alice's sent/bob",
      async () => (await visibleFiles(join(alice, 'sent', 'bob'))).length >= 2,
      30_000,
    );
    assert.ok(
      (await readFile(join(inbox, 'slow.bin'))).equals(whole),
      'bob did not receive the final content of the slowly written file',
    );
    assert.deepEqual(await visibleFiles(inbox), ['after.bin', 'slow.bin'], 'a file arrived twice or was left out');
    assert.deepEqual(await visibleFiles(join(alice, 'sent', 'bob')), ['after.bin', 'slow.bin']);
    assert.equal(existsSync(join(alice, 'failed')), false, 'a file went to failed/');
    assert.deepEqual((await readdir(spool)).sort(), [...ignored].sort(), 'the dot and temp names must stay');
    for (const name of ignored) assert.equal(existsSync(join(inbox, name)), false, `${name} was sent`);
  });

  test('a file that changes while it is sent fails for good: failed/ with a reason beside it', async () => {
    const { root, alice, bob } = await peers();
    // A small quota and no daemon at bob yet: the transfer fills the quota and waits there.
    const aliceDaemon = await startDaemon(alice, ['--quota', '2m', '--verbose']);
    const source = join(root, 'moving.bin');
    await writeRandomFile(source, 8 * MiB);
    const queued = await runDftp(['send', '--queue', 'bob', source], { home: alice, timeoutMs: 30_000 });
    assert.equal(queued.code, 0, describeResult(queued));
    await waitForLog(
      aliceDaemon,
      'the transfer waiting for room in the quota',
      (line) => line.event === 'send-waiting' && line.file === 'moving.bin' && /quota/.test(line.reason ?? ''),
    );

    // While the transfer waits, status shows it in flight without disturbing it.
    const inFlight = await statusJson(alice);
    const transfer = inFlight.transfers.find((t) => t.file === 'moving.bin');
    assert.ok(transfer, `no transfer in ${JSON.stringify(inFlight)}`);
    assert.equal(transfer.direction, 'send');
    assert.equal(transfer.peer, 'bob');
    assert.equal(transfer.total, 8 * MiB);
    assert.ok(transfer.bytes >= 0 && transfer.bytes < transfer.total, JSON.stringify(transfer));
    assert.equal(typeof transfer.rate, 'number');

    // Messages do not wait behind the file: one from bob reaches alice's daemon meanwhile.
    const message = await runDmp(['send', 'alice', 'not stuck'], { home: bob });
    assert.equal(message.code, 0, describeResult(message));
    await waitForLog(aliceDaemon, "bob's message", (line) => line.event === 'messages-received' && line.peer === 'bob');

    // The spool file changes under the transfer (in place: same file, another size).
    await appendFile(join(alice, 'outbox', 'bob', 'moving.bin'), 'changed!');
    const bobDaemon = await startDaemon(bob);
    const failed = join(alice, 'failed', 'bob');
    await waitFor('the reason file in failed/bob', () => existsSync(join(failed, 'moving.bin.reason.txt')), 45_000, {
      describe: () => `${describeBackground(aliceDaemon)}\n${describeBackground(bobDaemon)}`,
    });
    assert.deepEqual((await readdir(failed)).sort(), ['moving.bin', 'moving.bin.reason.txt']);
    assert.equal((await stat(join(failed, 'moving.bin'))).size, 8 * MiB + 'changed!'.length);
    const reason = await readFile(join(failed, 'moving.bin.reason.txt'), 'utf8');
    assert.match(reason, /changed/, reason);
    assert.ok(
      logOf(aliceDaemon).some((line) => line.event === 'send-failed' && line.level === 'error'),
      describeBackground(aliceDaemon),
    );
    assert.deepEqual(await readdir(join(alice, 'outbox', 'bob')), []);
    assert.equal(existsSync(join(alice, 'sent', 'bob', 'moving.bin')), false);
    assert.equal(existsSync(join(bob, 'inbox', 'alice', 'moving.bin')), false, 'bob kept a file that failed');

    // The daemon carries on with the next file.
    const next = join(root, 'next.bin');
    await writeRandomFile(next, 100 * KiB);
    const queuedNext = await runDftp(['send', '--queue', 'bob', next], { home: alice, timeoutMs: 30_000 });
    assert.equal(queuedNext.code, 0, describeResult(queuedNext));
    await waitForCopy(join(bob, 'inbox', 'alice', 'next.bin'), 100 * KiB, await fileSha256(next));
  });

  test('one daemon per peer; SIGTERM and SIGINT stop it gracefully, even mid-transfer (SIGTERM exit 0, SIGINT 130)', async () => {
    const { root, alice, bob } = await peers();
    // A transfer in flight: bob runs no daemon yet, so it fills the small quota and waits.
    const daemonArgs = ['--quota', '2m', '--verbose'];
    const first = await startDaemon(alice, daemonArgs);
    const source = join(root, 'pending.bin');
    await writeRandomFile(source, 8 * MiB);
    const sha = await fileSha256(source);
    const queued = await runDftp(['send', '--queue', 'bob', source], { home: alice, timeoutMs: 30_000 });
    assert.equal(queued.code, 0, describeResult(queued));
    await waitForLog(
      first,
      'the transfer waiting for room in the quota',
      (line) => line.event === 'send-waiting' && line.file === 'pending.bin' && /quota/.test(line.reason ?? ''),
    );

    const second = await runDmp(['daemon'], { home: alice, timeoutMs: 30_000 });
    assert.equal(second.code, 1, describeResult(second));
    const said = lines(second.stderr);
    assert.equal(said.length, 1, `expected one line\n${describeResult(second)}`);
    assert.match(said[0]!, new RegExp(`\\b${first.child.pid}\\b`), describeResult(second));
    assert.match(said[0]!, /daemon/, describeResult(second));
    assert.ok(first.running(), 'the refused daemon stopped the running one');
    const status = await statusJson(alice);
    assert.deepEqual(status.daemon, { running: true, pid: first.child.pid });

    const stopped = await stopDaemon(first, 'SIGTERM', 10_000);
    assert.equal(stopped.signal, null, describeResult(stopped));
    assert.equal(stopped.code, 0, describeResult(stopped));
    assert.equal(parseLog(stopped.stderr).at(-1)?.event, 'daemon-stopped', describeResult(stopped));
    assert.equal((await statusJson(alice)).daemon.running, false);
    // Stopping is not a failure: the file waits in the spool for the next run.
    assert.deepEqual(await readdir(join(alice, 'outbox', 'bob')), ['pending.bin']);
    assert.equal(existsSync(join(alice, 'failed')), false, 'a stopped transfer went to failed/');

    // The lock went with it: a new daemon starts at once, resumes the transfer, and SIGINT stops it.
    const again = await startDaemon(alice, daemonArgs);
    const bobDaemon = await startDaemon(bob);
    await waitForCopy(join(bob, 'inbox', 'alice', 'pending.bin'), 8 * MiB, sha, 45_000, () =>
      [describeBackground(again), describeBackground(bobDaemon)].join('\n'),
    );
    const offer = logOf(again).find((line) => line.event === 'send-offer' && line.file === 'pending.bin');
    assert.equal(offer?.resumed, true, `the transfer started over\n${describeBackground(again)}`);
    const ping = await runDmp(['ping', 'alice', '-c', '1', '-W', '15'], { home: bob });
    assert.equal(ping.code, 0, describeResult(ping));
    const interrupted = await stopDaemon(again, 'SIGINT', 10_000);
    assert.equal(interrupted.signal, null, describeResult(interrupted));
    // Ctrl-C ends every command with 130 and one line; the daemon still stops cleanly first.
    assert.equal(interrupted.code, 130, describeResult(interrupted));
    assert.equal(lines(interrupted.stderr).at(-1), 'dmp: interrupted', describeResult(interrupted));
    assert.equal(parseLog(interrupted.stderr).at(-1)?.event, 'daemon-stopped', describeResult(interrupted));
    const bobStopped = await stopDaemon(bobDaemon);
    assert.equal(bobStopped.code, 0, describeResult(bobStopped));
  });

  test('kill -9 mid-transfer loses nothing: a restarted daemon resumes and delivers the file whole', async () => {
    const { root, alice, bob } = await peers();
    const bobDaemon = await startDaemon(bob);
    let aliceDaemon = await startDaemon(alice, ['--quota', '2m', '--verbose']);
    // Messages the daemon took in before it was killed are kept for dmp listen.
    for (const text of ['kept 1', 'kept 2']) {
      const sent = await runDmp(['send', 'alice', text], { home: bob });
      assert.equal(sent.code, 0, describeResult(sent));
    }
    await waitForLog(aliceDaemon, "bob's messages", (line) => line.event === 'messages-received' && line.last === 2);
    const source = join(root, 'big.bin');
    const size = 32 * MiB;
    await writeRandomFile(source, size);
    const sha = await fileSha256(source);
    const queued = await runDftp(['send', '--queue', 'bob', source], { home: alice, timeoutMs: 30_000 });
    assert.equal(queued.code, 0, describeResult(queued));

    await waitForLog(
      aliceDaemon,
      'progress of the transfer',
      (line) =>
        line.event === 'send-progress' && line.file === 'big.bin' && (line.bytes ?? 0) > 0 && (line.bytes ?? 0) < size,
      60_000,
    );
    aliceDaemon.kill('SIGKILL');
    const killed = await aliceDaemon.done;
    assert.equal(killed.signal, 'SIGKILL', describeResult(killed));
    assert.ok(
      existsSync(join(alice, 'outbox', 'bob', 'big.bin')),
      'the transfer had already finished when the daemon was killed',
    );

    aliceDaemon = await startDaemon(alice, ['--quota', '2m', '--verbose']);
    await waitForCopy(join(bob, 'inbox', 'alice', 'big.bin'), size, sha, 60_000, () =>
      [describeBackground(aliceDaemon), describeBackground(bobDaemon)].join('\n'),
    );
    await waitFor("big.bin in alice's sent/bob", () => existsSync(join(alice, 'sent', 'bob', 'big.bin')), 30_000, {
      describe: () => describeBackground(aliceDaemon),
    });
    assert.deepEqual(await readdir(join(alice, 'outbox', 'bob')), []);
    assert.deepEqual(await visibleFiles(join(bob, 'inbox', 'alice')), ['big.bin']);
    const log = logOf(aliceDaemon);
    const offer = log.find((line) => line.event === 'send-offer' && line.file === 'big.bin');
    assert.equal(offer?.resumed, true, `the restarted daemon started over\n${describeBackground(aliceDaemon)}`);
    const done = log.find((line) => line.event === 'send-done' && line.file === 'big.bin');
    assert.ok(
      done && (done.relayBytes ?? Number.POSITIVE_INFINITY) < size,
      `sent everything again: ${done?.relayBytes}`,
    );
    const listen = await runDmp(['listen', '--count', '2', '--json', '--timeout', '20'], {
      home: alice,
      timeoutMs: 30_000,
    });
    assert.equal(listen.code, 0, describeResult(listen));
    assert.deepEqual(
      jsonLines<{ text: string }>(listen.stdout).map((message) => message.text),
      ['kept 1', 'kept 2'],
    );
  });

  test('logs JSON lines to stderr and DMP_HOME/daemon.log; --verbose adds debug lines', async () => {
    const { root, alice, bob } = await peers();
    const aliceDaemon = await startDaemon(alice, ['--verbose']);
    // --inbox DIR stands in for DMP_HOME/inbox: files from alice land in DIR/alice/.
    const inbox = join(root, 'bob-files');
    const bobDaemon = await startDaemon(bob, ['--inbox', inbox]);
    const source = join(root, 'logged.bin');
    await writeRandomFile(source, 300 * KiB);
    const queued = await runDftp(['send', '--queue', 'bob', source], { home: alice, timeoutMs: 30_000 });
    assert.equal(queued.code, 0, describeResult(queued));
    await waitForCopy(join(inbox, 'alice', 'logged.bin'), 300 * KiB, await fileSha256(source), 45_000, () =>
      describeBackground(bobDaemon),
    );
    assert.deepEqual(await listTree(join(bob, 'inbox')), [], 'with --inbox, nothing lands in DMP_HOME/inbox');
    await waitForLog(aliceDaemon, 'spool-sent', (line) => line.event === 'spool-sent');
    const aliceEnd = await stopDaemon(aliceDaemon);
    const bobEnd = await stopDaemon(bobDaemon);

    for (const [who, home, end] of [
      ['alice', alice, aliceEnd],
      ['bob', bob, bobEnd],
    ] as const) {
      const text = await readFile(join(home, 'daemon.log'), 'utf8');
      assert.ok(text.endsWith('\n'), `${who}: the log ends mid-line`);
      const logged = jsonLines<LogLine>(text);
      assert.ok(logged.length >= 3, `${who}: ${text}`);
      for (const line of logged) {
        assert.equal(typeof line.time, 'string', JSON.stringify(line));
        assert.ok(!Number.isNaN(Date.parse(line.time)), JSON.stringify(line));
        assert.ok(['debug', 'info', 'warn', 'error'].includes(line.level), JSON.stringify(line));
        assert.equal(typeof line.event, 'string', JSON.stringify(line));
        assert.notEqual(line.event, '', JSON.stringify(line));
      }
      // The same lines went to stderr.
      assert.deepEqual(lines(end.stderr), lines(text), `${who}: stderr and daemon.log differ`);
    }
    const aliceLog = jsonLines<LogLine>(await readFile(join(alice, 'daemon.log'), 'utf8'));
    const bobLog = jsonLines<LogLine>(await readFile(join(bob, 'daemon.log'), 'utf8'));
    assert.ok(
      aliceLog.some((line) => line.level === 'debug'),
      'no debug line with --verbose',
    );
    assert.deepEqual(
      bobLog.filter((line) => line.level === 'debug'),
      [],
      'debug lines without --verbose',
    );
    assert.ok(bobLog.some((line) => line.event === 'receive-done'));

    // A restarted daemon appends to the log.
    const before = await readFile(join(bob, 'daemon.log'), 'utf8');
    await stopDaemon(await startDaemon(bob));
    const afterRestart = await readFile(join(bob, 'daemon.log'), 'utf8');
    assert.ok(afterRestart.startsWith(before), 'the restart replaced the log');
    assert.ok(lines(afterRestart).length > lines(before).length);
  });

  test('carries on when the relay folder disappears for a while', async () => {
    const { root, relay, alice, bob } = await peers();
    const aliceDaemon = await startDaemon(alice);
    const bobDaemon = await startDaemon(bob);
    const away = join(root, 'relay.away');

    const during = join(root, 'during.bin');
    const later = join(root, 'later.bin');
    await writeRandomFile(during, 150 * KiB);
    await writeRandomFile(later, 250 * KiB);

    await rename(relay, away);
    try {
      // Queued while the relay is gone: the spool holds it until the relay is back.
      const queued = await runDftp(['send', '--queue', 'bob', during], { home: alice, timeoutMs: 30_000 });
      assert.equal(queued.code, 0, describeResult(queued));
      await sleep(3000);
    } finally {
      // A daemon must never make a relay folder of its own where the real one went missing (on
      // an unmounted share that would be the bare mount point): the rename back then fails.
      const made = existsSync(relay) ? await listTree(relay).catch(() => []) : undefined;
      await rename(away, relay).catch((error: unknown) => {
        assert.fail(
          `a daemon re-created the relay folder while it was gone (${String(error)}); it holds ${JSON.stringify(made)}\n` +
            `${describeBackground(aliceDaemon)}\n${describeBackground(bobDaemon)}`,
        );
      });
    }
    assert.ok(aliceDaemon.running(), `alice's daemon died\n${describeBackground(aliceDaemon)}`);
    assert.ok(bobDaemon.running(), `bob's daemon died\n${describeBackground(bobDaemon)}`);

    const message = await runDmp(['send', 'alice', 'back again'], { home: bob });
    assert.equal(message.code, 0, describeResult(message));
    const queuedLater = await runDftp(['send', '--queue', 'bob', later], { home: alice, timeoutMs: 30_000 });
    assert.equal(queuedLater.code, 0, describeResult(queuedLater));

    const listen = await runDmp(['listen', '--count', '1', '--json', '--timeout', '30'], {
      home: alice,
      timeoutMs: 45_000,
    });
    assert.equal(listen.code, 0, `${describeResult(listen)}\n${describeBackground(aliceDaemon)}`);
    assert.deepEqual(
      jsonLines<{ from: string; text: string }>(listen.stdout).map(({ from, text }) => ({ from, text })),
      [{ from: 'bob', text: 'back again' }],
    );
    const context = () => `${describeBackground(aliceDaemon)}\n${describeBackground(bobDaemon)}`;
    await waitForCopy(join(bob, 'inbox', 'alice', 'during.bin'), 150 * KiB, await fileSha256(during), 60_000, context);
    await waitForCopy(join(bob, 'inbox', 'alice', 'later.bin'), 250 * KiB, await fileSha256(later), 60_000, context);

    const trouble = logOf(aliceDaemon).filter(
      (line) =>
        line.level === 'warn' &&
        (line.code === 'RELAY_MISSING' || /relay/i.test(line.event) || /relay/i.test(String(line.error ?? ''))),
    );
    assert.ok(trouble.length > 0, `no warning about the relay\n${describeBackground(aliceDaemon)}`);
  });

  test('dmp status reports the daemon, peers, messages waiting, the spool and the quota, and changes nothing', async () => {
    const { root, relay, alice, bob } = await peers();
    const aliceDaemon = await startDaemon(alice);
    // bob runs no daemon: what alice sends him stays in the relay, unacknowledged.
    const out = await runDmp(['send', 'bob', 'one'], { home: alice });
    assert.equal(out.code, 0, describeResult(out));
    const out2 = await runDmp(['send', 'bob', 'two'], { home: alice });
    assert.equal(out2.code, 0, describeResult(out2));
    // A message from bob reaches alice's daemon and waits in her inbox, not yet shown.
    const incoming = await runDmp(['send', 'alice', 'for later'], { home: bob });
    assert.equal(incoming.code, 0, describeResult(incoming));
    await waitForLog(aliceDaemon, "bob's message", (line) => line.event === 'messages-received');
    // carol has no folder in the relay: a file for her stays queued.
    const forCarol = join(root, 'for-carol.bin');
    await writeRandomFile(forCarol, 5000);
    const queued = await runDftp(['send', '--queue', 'carol', forCarol], { home: alice, timeoutMs: 30_000 });
    assert.equal(queued.code, 0, describeResult(queued));
    await waitForLog(aliceDaemon, 'a retry for carol', (line) => line.event === 'send-retry' && line.peer === 'carol');

    // Wait until the relay is quiet (the ack of bob's message is out), then look around it.
    let before = await snapshot(relay);
    await waitFor(
      'a quiet relay',
      async () => {
        await sleep(500);
        const now = await snapshot(relay);
        const same = JSON.stringify(now) === JSON.stringify(before);
        before = now;
        return same;
      },
      20_000,
    );
    const report = await statusJson(alice);
    const human = await runDmp(['status'], { home: alice, timeoutMs: 30_000 });
    // alice's daemon republishes her ack of bob's message on its own schedule (1 s, 2 s, 4 s, ...)
    // while bob, who runs nothing, leaves the acknowledged file in place: the same file again,
    // so only its time may differ. Everything status could write would show otherwise.
    const ownAckTime = (entries: string[]) =>
      entries.map((entry) => entry.replace(/^(alice\/bob\/ack\.dmp \d+) .*$/, '$1'));
    assert.deepEqual(ownAckTime(await snapshot(relay)), ownAckTime(before), 'dmp status changed the relay');
    assert.ok(aliceDaemon.running(), 'dmp status stopped the daemon');

    assert.equal(report.self, 'alice');
    assert.deepEqual(report.daemon, { running: true, pid: aliceDaemon.child.pid });
    const bobReport = report.peers.find((entry) => entry.peer === 'bob');
    assert.ok(bobReport, JSON.stringify(report));
    assert.equal(bobReport.outgoing, 2, JSON.stringify(report));
    assert.equal(bobReport.incoming, 1, JSON.stringify(report));
    assert.deepEqual(
      report.spool.map(({ peer, file, size }) => ({ peer, file, size })),
      [{ peer: 'carol', file: 'for-carol.bin', size: 5000 }],
    );
    assert.ok(!Number.isNaN(Date.parse(report.spool[0]?.since ?? '')), JSON.stringify(report.spool));
    assert.deepEqual(report.relay, { reachable: true });
    assert.deepEqual(report.transfers, []);
    assert.equal(typeof report.relayBytes, 'number');
    assert.ok(report.relayBytes > 0, JSON.stringify(report));
    assert.equal(typeof report.quota, 'number');
    assert.ok(report.quota > 0, JSON.stringify(report));

    assert.equal(human.code, 0, describeResult(human));
    assert.match(human.stdout, /alice/, describeResult(human));
    assert.match(human.stdout, new RegExp(`running \\(pid ${aliceDaemon.child.pid}\\)`), describeResult(human));
    assert.match(
      human.stdout,
      /^ {2}bob +.*2 messages sent, not yet read by bob; 1 new message from bob \(dmp listen shows it\)$/m,
      describeResult(human),
    );
    assert.match(human.stdout, /queued for carol: for-carol\.bin \(4\.9 KiB\), since \d+ s ago/, describeResult(human));
    // Times are relative for people; the ISO form is for --json only.
    assert.doesNotMatch(human.stdout, /\d{4}-\d\d-\d\dT\d\d:/, describeResult(human));

    // When it last heard from bob (the daemon records it a few seconds after the fact).
    let heard: string | undefined;
    await waitFor(
      'lastHeard for bob',
      async () => {
        heard = (await statusJson(alice)).peers.find((entry) => entry.peer === 'bob')?.lastHeard;
        return heard !== undefined;
      },
      30_000,
    );
    assert.ok(!Number.isNaN(Date.parse(heard ?? '')), String(heard));

    // The queued file is still there, untouched; status never took it.
    assert.deepEqual(await readdir(join(alice, 'outbox', 'carol')), ['for-carol.bin']);
    await stopDaemon(aliceDaemon);
    assert.deepEqual((await statusJson(alice)).daemon, { running: false });
  });
});

describe('dmp status in words', { timeout: 120_000 }, () => {
  test('a file the daemon is sending is one line "to bob", not also listed as queued', async () => {
    const { root, alice } = await peers();
    const aliceDaemon = await startDaemon(alice);
    // bob runs nothing: the daemon offers the file and waits for him.
    const source = join(root, 'waiting.bin');
    await writeRandomFile(source, 200 * KiB);
    const queued = await runDftp(['send', '--queue', 'bob', source], { home: alice, timeoutMs: 30_000 });
    assert.equal(queued.code, 0, describeResult(queued));
    assert.doesNotMatch(queued.stderr, /no daemon is running/, describeResult(queued));
    await waitForLog(aliceDaemon, 'the offer', (line) => line.event === 'send-offer');
    const report = await statusJson(alice);
    assert.deepEqual(report.spool, [], JSON.stringify(report));
    assert.equal(report.transfers.length, 1, JSON.stringify(report));
    const [transfer] = report.transfers;
    assert.deepEqual(
      { direction: transfer?.direction, peer: transfer?.peer, file: transfer?.file, active: transfer?.active },
      { direction: 'send', peer: 'bob', file: 'waiting.bin', active: true },
    );
    const human = await runDmp(['status'], { home: alice, timeoutMs: 30_000 });
    assert.equal(human.code, 0, describeResult(human));
    const mentions = lines(human.stdout).filter((line) => line.includes('waiting.bin'));
    assert.equal(mentions.length, 1, describeResult(human));
    assert.match(
      mentions[0] ?? '',
      new RegExp(
        `^ {2}to bob +waiting\\.bin +0 B/200 KiB 0% +waiting +last activity \\d+ s ago, id ${transfer?.id.slice(0, 8)}$`,
      ),
      describeResult(human),
    );
    await stopDaemon(aliceDaemon);
    // With no process on it, the same transfer reads as interrupted, and says how to drop it.
    const after = await runDmp(['status'], { home: alice, timeoutMs: 30_000 });
    assert.match(
      after.stdout,
      /to bob +waiting\.bin +.* interrupted .*\(dftp cancel [0-9a-f]{8} drops it\)/,
      describeResult(after),
    );
  });

  test('with the relay folder gone it shows what DMP_HOME knows and says the relay is unreachable', async () => {
    const { root, relay, alice } = await peers();
    const file = join(root, 'later.txt');
    await writeFile(file, 'later\n');
    const queued = await runDftp(['send', '--queue', 'bob', file], { home: alice, timeoutMs: 30_000 });
    assert.equal(queued.code, 0, describeResult(queued));
    await rename(relay, join(root, 'relay.away'));
    const human = await runDmp(['status'], { home: alice, timeoutMs: 30_000 });
    assert.equal(human.code, 0, describeResult(human));
    assert.match(
      human.stdout,
      /^alice: daemon not running; relay unreachable \(.*\); showing what this machine knows$/m,
    );
    assert.match(human.stdout, /queued for bob: later\.txt \(6 B\), since \d+ s ago/, describeResult(human));
    const report = await statusJson(alice);
    assert.equal(report.relay.reachable, false);
    assert.match(report.relay.error ?? '', /relay/);
    assert.deepEqual(
      report.spool.map((entry) => entry.file),
      ['later.txt'],
    );
    const listed = await runDftp(['list'], { home: alice, timeoutMs: 30_000 });
    assert.equal(listed.code, 0, describeResult(listed));
  });
});

describe('the relay folder gone, at the storage layer the daemon relies on', () => {
  test('publishing while the relay folder is missing fails with RELAY_MISSING and creates nothing', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dmp-gone-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const relay = join(root, 'relay');
    await mkdir(relay);
    const storage = new FolderRelay({ root: relay, self: parsePeerId('alice', 'id') });
    await storage.open();
    await rename(relay, join(root, 'relay.away'));
    // The first publish towards a peer (the daemon's first ack to a new peer, a pong, an offer)
    // happens after a listing of that peer's folder, which reads a missing folder as empty.
    const outcome = await storage
      .publish(parsePeerId('bob', 'peer'), [{ name: ACK_NAME, data: Buffer.from('x') }])
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    const made = existsSync(relay) ? await listTree(relay) : undefined;
    assert.equal(made, undefined, `publish re-created the missing relay folder, holding ${JSON.stringify(made)}`);
    assert.ok(isDmpError(outcome, 'RELAY_MISSING'), `publish ended with ${String(outcome)}`);
  });
});

describe('jsonLogger (the daemon log file)', () => {
  async function tempLog(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'dmp-log-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return join(dir, 'daemon.log');
  }

  function fileLines(path: string): string[] {
    return existsSync(path) ? lines(readFileSync(path, 'utf8')) : [];
  }

  test('rotates past maxBytes into one old generation, losing no line of the last two files', async () => {
    const path = await tempLog();
    const echoed: string[] = [];
    const logger = jsonLogger({ path, maxBytes: 4096, echo: (line) => echoed.push(line) });
    const written: number[] = [];
    // About 6 KB: exactly one rotation.
    for (let n = 0; n < 60; n += 1) {
      logger.log('info', 'tick', { n, pad: 'x'.repeat(40) });
      written.push(n);
    }
    assert.ok(existsSync(`${path}.1`), 'no daemon.log.1');
    assert.ok(statSync(path).size <= 4096, `daemon.log is ${statSync(path).size} bytes`);
    assert.ok(statSync(`${path}.1`).size <= 4096, `daemon.log.1 is ${statSync(`${path}.1`).size} bytes`);
    const all = [...fileLines(`${path}.1`), ...fileLines(path)].map((line) => JSON.parse(line) as LogLine);
    assert.deepEqual(
      all.map((line) => line.n),
      written,
    );
    for (const line of all) {
      assert.equal(line.level, 'info');
      assert.equal(line.event, 'tick');
      assert.ok(!Number.isNaN(Date.parse(line.time)));
    }
    assert.equal(echoed.length, 60, 'every line goes to the echo as well');
    assert.equal(echoed.join(''), [...fileLines(`${path}.1`), ...fileLines(path)].map((l) => `${l}\n`).join(''));
  });

  test('after many rotations the two files hold the newest lines, in order, each under maxBytes', async () => {
    const path = await tempLog();
    const logger = jsonLogger({ path, maxBytes: 2048, echo: () => {} });
    for (let n = 0; n < 500; n += 1) logger.log('warn', 'tick', { n });
    assert.ok(statSync(path).size <= 2048);
    assert.ok(statSync(`${path}.1`).size <= 2048);
    assert.equal(existsSync(`${path}.2`), false, 'only one old generation is kept');
    const kept = [...fileLines(`${path}.1`), ...fileLines(path)].map((line) => (JSON.parse(line) as LogLine).n);
    assert.ok(kept.length > 0);
    assert.equal(kept.at(-1), 499);
    const first = kept[0] as number;
    assert.deepEqual(
      kept,
      Array.from({ length: kept.length }, (_, i) => first + i),
    );
  });

  test('counts bytes, not characters: non-ASCII fields do not push the file past maxBytes', async () => {
    const path = await tempLog();
    const logger = jsonLogger({ path, maxBytes: 4096, echo: () => {} });
    // File names in Chinese: three bytes per character in UTF-8.
    for (let n = 0; n < 60; n += 1) logger.log('info', 'send-offer', { n, file: '报告文件'.repeat(10) });
    const size = statSync(path).size;
    const old = existsSync(`${path}.1`) ? statSync(`${path}.1`).size : 0;
    assert.ok(size <= 4096, `daemon.log grew to ${size} bytes with maxBytes 4096`);
    assert.ok(old <= 4096, `daemon.log.1 grew to ${old} bytes with maxBytes 4096`);
  });

  test('takes the size of an existing log into account, and drops debug lines unless verbose', async () => {
    const path = await tempLog();
    writeFileSync(path, `${'#'.repeat(4000)}\n`);
    const quiet = jsonLogger({ path, maxBytes: 4096, echo: () => {} });
    quiet.log('debug', 'hidden', {});
    assert.equal(statSync(path).size, 4001, 'a debug line was written without verbose');
    quiet.log('info', 'first', { pad: 'y'.repeat(100) });
    assert.ok(existsSync(`${path}.1`), 'the old content was not rotated away');
    assert.equal(readFileSync(`${path}.1`, 'utf8'), `${'#'.repeat(4000)}\n`);
    const verbose = jsonLogger({ path, verbose: true, echo: () => {} });
    verbose.log('debug', 'shown', { x: 1 });
    assert.deepEqual(
      fileLines(path).map((line) => (JSON.parse(line) as LogLine).event),
      ['first', 'shown'],
    );
    // A log line that cannot be written must not throw (the daemon goes on).
    const broken = jsonLogger({ path: join(path, 'not-a-dir', 'x.log'), echo: () => {} });
    assert.doesNotThrow(() => broken.log('error', 'nowhere', {}));
  });
});
