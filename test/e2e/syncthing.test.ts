/**
 * End to end through a real sync engine: alice and bob each run `dmp daemon` on their own copy
 * of a relay folder, and two Syncthing instances on loopback keep the copies in sync. Everything
 * goes through the compiled CLIs as child processes: ping, 100 messages, a 16 MiB file through
 * a 2 MiB quota handed to the daemon's spool, and no sync conflicts. Once with native file-system
 * events, once with `--poll 200` everywhere.
 *
 * Needs `syncthing` (Debian's package; .ci/run installs it). Without it the suite is skipped,
 * except in CI (CI set), where it must run.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type Background,
  describeResult,
  jsonLines,
  killAll,
  type RunResult,
  runDftp,
  runDmp,
  startDmp,
} from '../support/cli.js';
import { sleep, waitFor } from '../support/wait.js';
import { type SyncthingPair, startSyncthingPair, syncthingInstalled, syncthingVersion } from './syncthing.js';

const IN_CI = Boolean(process.env.CI);
const INSTALLED = syncthingInstalled();
const SKIP =
  !INSTALLED && !IN_CI
    ? 'syncthing is not installed (apt-get install syncthing); these tests are required, not skipped, when CI is set'
    : false;

const MiB = 1024 * 1024;
const QUOTA = '2m';
const QUOTA_BYTES = 2 * MiB;
/** A little over 16 MiB, and not a multiple of any block size. */
const FILE_SIZE = 16 * MiB + 12_345;
const MESSAGES = 100;

interface Mode {
  name: string;
  /** Extra arguments for every dmp/dftp command of this mode. */
  args: string[];
}

const MODES: Mode[] = [
  { name: 'native file-system events', args: [] },
  { name: 'polling (--poll 200)', args: ['--poll', '200'] },
];

/** Figures for the report, printed at the end. */
const figures: string[] = [];

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Bytes in regular files under `dir` (what a peer holds in its relay folder), and the largest file. */
async function filesUnder(dir: string): Promise<{ total: number; largest: number }> {
  let total = 0;
  let largest = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const below = await filesUnder(path);
      total += below.total;
      largest = Math.max(largest, below.largest);
    } else if (entry.isFile()) {
      const size = (await lstat(path).catch(() => undefined))?.size ?? 0;
      total += size;
      largest = Math.max(largest, size);
    }
  }
  return { total, largest };
}

/** Every path under `dir`, relative, '/'-separated. */
async function walk(dir: string, prefix = ''): Promise<string[]> {
  const found: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const name = prefix ? `${prefix}/${entry.name}` : entry.name;
    found.push(name);
    if (entry.isDirectory()) found.push(...(await walk(join(dir, entry.name), name)));
  }
  return found;
}

/** The JSON lines of a daemon's log; anything else on its stderr is skipped. */
function logEntries(text: string): { event?: string; file?: string; relayBytes?: number }[] {
  const entries: { event?: string; file?: string; relayBytes?: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      entries.push(JSON.parse(line));
    } catch {
      // not a log line
    }
  }
  return entries;
}

function ok(result: RunResult, what: string): void {
  assert.equal(result.code, 0, `${what} failed:\n${describeResult(result)}`);
}

for (const mode of MODES) {
  describe(`dmp and dftp through two Syncthing instances on loopback, ${mode.name}`, { skip: SKIP }, () => {
    let pair: SyncthingPair | undefined;
    let homes: string | undefined;
    let key = '';
    const home = { alice: '', bob: '' };
    const relay = { alice: '', bob: '' };
    const daemons: { alice?: Background; bob?: Background } = {};

    /** Daemon and Syncthing output, for assertion messages. */
    const context = async (): Promise<string> => {
      const parts: string[] = [];
      for (const [name, daemon] of Object.entries(daemons)) {
        if (daemon) parts.push(`--- ${name}'s daemon (${daemon.command}) stderr ---\n${daemon.stderr().slice(-3000)}`);
      }
      if (pair) parts.push(await pair.logs(30));
      return parts.join('\n');
    };

    const startDaemon = async (name: 'alice' | 'bob', extra: string[]): Promise<Background> => {
      const daemon = startDmp(['daemon', ...extra, ...mode.args], { home: home[name], timeoutMs: 900_000 });
      await waitFor(
        `${name}'s daemon to start`,
        () => daemon.stderr().includes('"daemon-started"') || daemon.child.exitCode !== null,
        60_000,
        { everyMs: 100 },
      );
      assert.equal(daemon.child.exitCode, null, `${name}'s daemon exited at once:\n${daemon.stderr()}`);
      return daemon;
    };

    before(async () => {
      if (!INSTALLED)
        throw new Error('syncthing is not installed, and CI requires this suite: apt-get install syncthing');
      pair = await startSyncthingPair();
      relay.alice = pair.a.folder;
      relay.bob = pair.b.folder;
      homes = await mkdtemp(join(tmpdir(), 'dmp-e2e-homes-'));
      home.alice = join(homes, 'alice');
      home.bob = join(homes, 'bob');
      const keygen = await runDmp(['keygen'], { home: home.alice });
      ok(keygen, 'dmp keygen');
      key = keygen.stdout.trim();
      for (const name of ['alice', 'bob'] as const) {
        // `--key=KEY`: a key may start with '-'.
        ok(
          await runDmp(['init', '--relay', relay[name], '--id', name, `--key=${key}`], { home: home[name] }),
          `dmp init ${name}`,
        );
      }
      // Each peer's folder reaches the other copy before anyone talks.
      await waitFor('bob/ to appear in copy A', () => exists(join(relay.alice, 'bob')), 60_000, { everyMs: 100 });
      await waitFor('alice/ to appear in copy B', () => exists(join(relay.bob, 'alice')), 60_000, { everyMs: 100 });
      daemons.alice = await startDaemon('alice', ['--quota', QUOTA]);
      daemons.bob = await startDaemon('bob', []);
    });

    after(async () => {
      for (const daemon of [daemons.alice, daemons.bob]) await daemon?.stop().catch(() => {});
      killAll();
      await pair?.stop();
      if (homes) await rm(homes, { recursive: true, force: true, maxRetries: 3 });
    });

    it('ping: 3 replies through Syncthing', { timeout: 180_000 }, async (t) => {
      const ping = await runDmp(['ping', 'bob', '-c', '3', '-i', '0.5', '--timeout', '30', '--json', ...mode.args], {
        home: home.alice,
        timeoutMs: 150_000,
      });
      ok(ping, 'dmp ping');
      const replies = jsonLines<{ seq: number; rttMs?: number; timeout?: boolean }>(ping.stdout);
      assert.equal(replies.length, 3, `expected 3 replies:\n${describeResult(ping)}`);
      for (const reply of replies) {
        assert.notEqual(reply.timeout, true, `a ping timed out:\n${describeResult(ping)}`);
        assert.equal(typeof reply.rttMs, 'number', `no rttMs in ${JSON.stringify(reply)}`);
        assert.ok((reply.rttMs ?? -1) > 0, `rttMs must be positive: ${JSON.stringify(reply)}`);
      }
      assert.deepEqual(
        replies.map((reply) => reply.seq),
        [1, 2, 3],
      );
      const rtts = replies.map((reply) => reply.rttMs ?? 0);
      const line = `${mode.name}: ping rtt ms ${rtts.map((rtt) => rtt.toFixed(1)).join(', ')} (command ${ping.elapsedMs} ms)`;
      figures.push(line);
      t.diagnostic(line);
    });

    it(`${MESSAGES} messages arrive in order, exactly once`, { timeout: 240_000 }, async (t) => {
      const texts = Array.from({ length: MESSAGES }, (_, i) => `message ${String(i + 1).padStart(3, '0')} from alice`);
      const started = Date.now();
      const sent = await runDmp(['send', 'bob', '--lines', '--json', ...mode.args], {
        home: home.alice,
        input: `${texts.join('\n')}\n`,
        timeoutMs: 120_000,
      });
      ok(sent, 'dmp send --lines');
      const summary = jsonLines<{ event: string; count: number }>(sent.stdout);
      assert.equal(summary[0]?.count, MESSAGES, describeResult(sent));

      const listen = await runDmp(['listen', '--count', String(MESSAGES), '--json', '--timeout', '120', ...mode.args], {
        home: home.bob,
        timeoutMs: 180_000,
      });
      const elapsed = Date.now() - started;
      ok(listen, `dmp listen --count ${MESSAGES}\n${await context()}`);
      const received = jsonLines<{ from: string; seq: number; text: string }>(listen.stdout);
      assert.equal(received.length, MESSAGES, describeResult(listen));
      assert.deepEqual(
        received.map((message) => message.text),
        texts,
        'every message once, in order',
      );
      assert.ok(
        received.every((message) => message.from === 'alice'),
        'all from alice',
      );
      for (let i = 1; i < received.length; i++) {
        assert.ok(received[i]!.seq > received[i - 1]!.seq, `sequence numbers increase: ${JSON.stringify(received)}`);
      }

      // Exactly once: nothing more is waiting (a repeat would show here). Without --count, listen
      // listens for its timeout and ends with 0.
      const more = await runDmp(['listen', '--json', '--timeout', '5', ...mode.args], {
        home: home.bob,
        timeoutMs: 60_000,
      });
      assert.equal(more.stdout.trim(), '', `no message may be shown twice:\n${describeResult(more)}`);
      assert.equal(more.code, 0, `listen without --count ends at its timeout with 0:\n${describeResult(more)}`);

      const line = `${mode.name}: ${MESSAGES} messages sent and listed in ${elapsed} ms`;
      figures.push(line);
      t.diagnostic(line);
    });

    it('a 16 MiB file through a 2 MiB quota, queued for the daemon', { timeout: 420_000 }, async (t) => {
      assert.ok(homes);
      const source = join(homes, 'source');
      await mkdir(source, { recursive: true });
      const file = join(source, 'big-file.bin');
      await writeFile(file, randomBytes(FILE_SIZE));
      const digest = await sha256(file);

      // Sample what alice holds in her relay folder (copy A) all along.
      let maxHeld = 0;
      let largestFile = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const held = await filesUnder(join(relay.alice, 'alice'));
          maxHeld = Math.max(maxHeld, held.total);
          largestFile = Math.max(largestFile, held.largest);
          await sleep(50);
        }
      })();

      const started = Date.now();
      try {
        const queued = await runDftp(['send', '--queue', 'bob', file, '--json', ...mode.args], {
          home: home.alice,
          timeoutMs: 60_000,
        });
        ok(queued, 'dftp send --queue');
        assert.equal(jsonLines<{ event: string }>(queued.stdout)[0]?.event, 'queued', describeResult(queued));

        const sent = join(home.alice, 'sent', 'bob', 'big-file.bin');
        const arrived = join(home.bob, 'inbox', 'alice', 'big-file.bin');
        await waitFor('the daemon to move the file to sent/bob/', () => exists(sent), 360_000, { everyMs: 200 }).catch(
          async (error: Error) => {
            throw new Error(`${error.message}\n${await context()}`);
          },
        );
        const elapsed = Date.now() - started;
        await waitFor('the file in bob/inbox/alice/', () => exists(arrived), 60_000, { everyMs: 100 });
        assert.equal((await stat(arrived)).size, FILE_SIZE);
        assert.equal(await sha256(arrived), digest, 'the received file is byte-identical');
        assert.equal(await sha256(sent), digest, 'sent/ holds the file that was queued');
        assert.deepEqual(await walk(join(home.alice, 'outbox', 'bob')), [], 'the spool is empty');
        assert.ok(!(await exists(join(home.alice, 'failed', 'bob', 'big-file.bin'))), 'nothing failed');
        sampling = false;
        await sampler;
        assert.ok(
          maxHeld <= QUOTA_BYTES,
          `alice held ${maxHeld} bytes in the relay, more than the ${QUOTA_BYTES}-byte quota`,
        );
        const mib = FILE_SIZE / MiB;
        // What alice's daemon logged when the transfer finished (relayBytes: offer and chunks written, resends included).
        const done = logEntries(daemons.alice?.stderr() ?? '').find(
          (entry) => entry.event === 'send-done' && entry.file === 'big-file.bin',
        );
        const written = done?.relayBytes === undefined ? '' : `, ${done.relayBytes} bytes written to the relay`;
        const line = `${mode.name}: ${mib.toFixed(2)} MiB through a ${QUOTA} quota in ${(elapsed / 1000).toFixed(1)} s (${(mib / (elapsed / 1000)).toFixed(2)} MiB/s); alice held at most ${maxHeld} bytes in the relay, largest file ${largestFile} bytes${written}`;
        figures.push(line);
        t.diagnostic(line);
      } finally {
        sampling = false;
        await sampler;
      }
    });

    it('no sync conflicts, and Syncthing’s own files are left alone', { timeout: 60_000 }, async () => {
      assert.ok(pair);
      for (const copy of [pair.a.folder, pair.b.folder]) {
        const names = await walk(copy);
        const conflicts = names.filter((name) => /sync-conflict|conflicted copy/i.test(name));
        assert.deepEqual(conflicts, [], `conflict copies in ${copy}:\n${names.join('\n')}`);
        assert.ok(await exists(join(copy, '.stfolder')), `.stfolder must stay in ${copy}`);
      }
    });

    it('both daemons exit 0 on SIGTERM', { timeout: 60_000 }, async () => {
      for (const name of ['alice', 'bob'] as const) {
        const daemon = daemons[name];
        assert.ok(daemon);
        const result = await daemon.stop(20_000);
        assert.equal(result.code, 0, `${name}'s daemon on SIGTERM:\n${describeResult(result)}`);
      }
    });
  });
}

after(() => {
  if (figures.length > 0) {
    process.stderr.write(`\nsyncthing e2e figures (${INSTALLED ? syncthingVersion() : 'no syncthing'}):\n`);
    for (const line of figures) process.stderr.write(`  ${line}\n`);
  }
});
