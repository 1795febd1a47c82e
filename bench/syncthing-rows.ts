/**
 * Rows through a real sync engine: two Syncthing instances on loopback (test/e2e/syncthing.ts:
 * loopback only, no discovery, no relays, fsWatcherDelayS=1), alice on copy A, bob on copy B.
 *
 * One random file is carried, in the same run and interleaved so that drift hits all alike:
 *   engine   Syncthing alone: the file renamed into copy A, until copy B holds it whole;
 *   defaults `dftp send` (sender on A) to `dftp receive --count 1` (on B), until the file is in
 *            place, and until the receiver exits;
 *   quota    the same with `--quota 256m`, so the whole file fits in the relay at once.
 * Then one more transfer of each kind, watched closely (bench/timeline.ts), says where the
 * time goes.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DEFAULT_QUOTA, parseSize } from '../src/index.js';
import {
  FOLDER_ID,
  type SyncthingPair,
  startSyncthingPair,
  syncthingInstalled,
  syncthingVersion,
} from '../test/e2e/syncthing.js';
import {
  DFTP,
  DMP,
  exists,
  finishOrKill,
  initPeers,
  MiB,
  makeRandomFile,
  mib,
  must,
  onCleanup,
  type RowOptions,
  range,
  run,
  secs,
  sequence,
  sha256File,
  sleep,
  summarize,
  verdict,
} from './common.js';
import { formatTimeline, type Timeline, TimelineProbe } from './timeline.js';

/**
 * Targets of issue 14, as ratios to the engine alone measured in the same run: 2x with defaults,
 * 1.25x with a quota at least the file's size. The default quota (256 MiB) holds the 128 MiB
 * file, so the defaults row is held to the stricter one. The old default, 64 MiB, half the file,
 * is a row of its own with no target: it shows the window model (quota / round trip).
 */
const TARGET_DEFAULTS = 1.25;
const SMALL_QUOTA = '64m';
/** Polling interval of the copies, ms: fine enough for a 1 s watcher delay, light on 2 cores. */
const POLL_MS = 5;
/** No single carry may take longer than this (a stuck transfer fails the row, not the machine). */
const CARRY_TIMEOUT_MS = 300_000;

export interface Peers {
  pair: SyncthingPair;
  alice: string;
  bob: string;
  key: string;
  /** The pair key of alice and bob: offers and statuses are sealed under it. */
  pairKey: string;
  /** Holds the source file, staging copies and the receiver's output: outside both copies. */
  work: string;
  /** Stops both instances and removes everything. */
  stop: () => Promise<void>;
}

interface DftpSample {
  /** From the sender's start to the receiver's `done`: the file in place. */
  place: number;
  /** From the sender's start until `dftp receive --count 1` exited. */
  receiverExit: number;
  senderExit: number;
}

async function waitUntil(what: string, predicate: () => Promise<boolean>, timeoutMs: number, everyMs = 100) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await predicate().catch(() => false)) return;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Names in a folder, none when it does not exist (yet). */
async function names(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

/**
 * Nothing of a transfer is left in either copy and both instances are idle with nothing to pull,
 * so the next carry starts from the same state as the first.
 */
export async function waitQuiet(peers: Peers): Promise<void> {
  const { pair } = peers;
  const leftovers = async () => {
    const found: string[] = [];
    for (const copy of [pair.a.folder, pair.b.folder]) {
      for (const dir of [join(copy, 'alice', 'bob'), join(copy, 'bob', 'alice')]) {
        found.push(...(await names(dir)).filter((name) => /^(chunk|offer|status)-/.test(name)));
      }
      found.push(...(await names(copy)).filter((name) => name.startsWith('engine-')));
    }
    return found;
  };
  const idle = async () => {
    for (const instance of [pair.a, pair.b]) {
      const status = (await pair.rest(instance, `/rest/db/status?folder=${FOLDER_ID}`)) as {
        state?: string;
        needTotalItems?: number;
      };
      if (status.state !== 'idle' || (status.needTotalItems ?? 0) !== 0) return false;
    }
    return true;
  };
  await waitUntil(
    'both Syncthing copies to settle after a carry',
    async () => (await leftovers()).length === 0 && (await idle()),
    120_000,
    200,
  ).catch(async (error: Error) => {
    throw new Error(`${error.message}; left: ${(await leftovers()).join(', ') || 'nothing'}`);
  });
}

/** Syncthing alone: the file renamed into copy A (one atomic step), until copy B holds it whole. */
export async function engineAlone(peers: Peers, source: string, size: number, expected: string): Promise<number> {
  const { pair } = peers;
  const stage = join(peers.work, 'engine-stage.bin');
  await copyFile(source, stage);
  const name = `engine-${randomBytes(4).toString('hex')}.bin`;
  const arrived = join(pair.b.folder, name);
  const started = performance.now();
  await rename(stage, join(pair.a.folder, name));
  let seconds = 0;
  await waitUntil(
    'Syncthing to carry the file from copy A to copy B',
    async () => {
      // Syncthing pulls into a temp name and renames it into place when it is whole.
      const info = await stat(arrived).catch(() => undefined);
      if (info?.size !== size) return false;
      seconds = (performance.now() - started) / 1000;
      return true;
    },
    CARRY_TIMEOUT_MS,
    POLL_MS,
  );
  if ((await sha256File(arrived)) !== expected) throw new Error('Syncthing delivered another file');
  await rm(join(pair.a.folder, name));
  await waitUntil('the deletion to reach copy B', async () => !(await exists(arrived)), 60_000);
  await waitQuiet(peers);
  return seconds;
}

/** `dftp send` on copy A to `dftp receive --count 1` on copy B. */
export async function dftpCarry(
  peers: Peers,
  source: string,
  expected: string,
  extra: string[],
  probe?: TimelineProbe,
): Promise<DftpSample> {
  const out = join(peers.work, `out-${randomBytes(4).toString('hex')}`);
  const receiver = run(DFTP, peers.bob, ['receive', '--out', out, '--count', '1', '--json']);
  // Let the receiver start watching before the clock starts.
  await sleep(500);
  let doneAt = 0;
  let received = '';
  receiver.onLine((line, at) => {
    const event = JSON.parse(line) as { event: string; sha256?: string; bytes?: number };
    if (event.event === 'done') {
      doneAt = at;
      received = event.sha256 ?? '';
    }
    probe?.receiverEvent(event, at);
  });
  const started = performance.now();
  probe?.start(started);
  const sender = run(DFTP, peers.alice, ['send', 'bob', source, '--json', ...extra]);
  sender.onLine((line, at) => probe?.senderEvent(JSON.parse(line) as { event: string; bytes?: number }, at));
  try {
    await finishOrKill([sender, receiver], `dftp send ${extra.join(' ')}`.trim(), CARRY_TIMEOUT_MS);
    await must(sender, 'dftp send');
    await must(receiver, 'dftp receive');
  } finally {
    await probe?.stop();
  }
  if (received !== expected) throw new Error('received file has another checksum');
  probe?.ended(sender.exitedAt(), receiver.exitedAt());
  await rm(out, { recursive: true, force: true });
  await waitQuiet(peers);
  return {
    place: (doneAt - started) / 1000,
    receiverExit: (receiver.exitedAt() - started) / 1000,
    senderExit: (sender.exitedAt() - started) / 1000,
  };
}

/**
 * Two instances, configured by test/e2e/syncthing.ts. STMONITORED makes each a single process:
 * Syncthing's monitor parent, once killed, leaves the real instance running as an orphan, while
 * a single process is also gone when the bench's last-resort exit hook kills it.
 */
export async function startPeers(): Promise<Peers> {
  const monitored = process.env.STMONITORED;
  process.env.STMONITORED = '1';
  let pair: SyncthingPair;
  try {
    pair = await startSyncthingPair({ fsWatcherDelayS: 1 });
  } finally {
    if (monitored === undefined) delete process.env.STMONITORED;
    else process.env.STMONITORED = monitored;
  }
  const stop = onCleanup(() => pair.stop());
  try {
    const work = join(pair.root, 'work');
    await mkdir(work);
    const { alice, bob, key } = await initPeers(join(pair.root, 'homes'), pair.a.folder, pair.b.folder);
    // Each peer's folder reaches the other copy before anyone talks.
    await waitUntil('bob/ to appear in copy A', () => exists(join(pair.a.folder, 'bob')), 60_000);
    await waitUntil('alice/ to appear in copy B', () => exists(join(pair.b.folder, 'alice')), 60_000);
    const pairKeyProc = run(DMP, alice, ['pair-key', 'bob']);
    await must(pairKeyProc, 'dmp pair-key');
    const pairKey = pairKeyProc.lines[0]?.trim() ?? '';
    return { pair, alice, bob, key, pairKey, work, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export async function syncthingRows(options: RowOptions): Promise<Record<string, unknown>> {
  const { quick, say } = options;
  if (!syncthingInstalled()) {
    say('through Syncthing: skipped: syncthing not installed');
    return { skipped: 'syncthing not installed' };
  }
  const size = quick ? 64 * MiB : 128 * MiB;
  const runs = options.runs ?? (quick ? 1 : 3);
  const peers = await startPeers();
  try {
    const source = join(peers.work, 'source.bin');
    await makeRandomFile(source, size);
    const expected = await sha256File(source);
    const engine: number[] = [];
    const defaults: DftpSample[] = [];
    const smallQuota: DftpSample[] = [];
    await sequence(runs, async () => {
      engine.push(await engineAlone(peers, source, size, expected));
      defaults.push(await dftpCarry(peers, source, expected, []));
      smallQuota.push(await dftpCarry(peers, source, expected, ['--quota', SMALL_QUOTA]));
    });
    // One more transfer of each kind, watched closely: where the time goes.
    const timelines: Timeline[] = [];
    for (const [label, extra, quota] of [
      ['defaults', [], DEFAULT_QUOTA],
      [`--quota ${SMALL_QUOTA}`, ['--quota', SMALL_QUOTA], parseSize(SMALL_QUOTA)],
    ] as const) {
      const probe = new TimelineProbe({
        copyA: peers.pair.a.folder,
        copyB: peers.pair.b.folder,
        bobHome: peers.bob,
        pairKey: peers.pairKey,
        pollMs: POLL_MS,
        quota,
        label,
      });
      await dftpCarry(peers, source, expected, [...extra], probe);
      timelines.push(probe.result(size));
    }

    const engineStat = summarize(engine);
    const describe = (samples: DftpSample[], target?: number) => {
      const place = summarize(samples.map((sample) => sample.place));
      const receiverExit = summarize(samples.map((sample) => sample.receiverExit));
      const ratio = summarize(samples.map((sample, i) => sample.place / (engine[i] ?? Number.NaN)));
      const exitRatio = summarize(samples.map((sample, i) => sample.receiverExit / (engine[i] ?? Number.NaN)));
      return {
        place,
        receiverExit,
        senderExit: summarize(samples.map((sample) => sample.senderExit)),
        ratio,
        exitRatio,
        target,
        met: target === undefined ? null : ratio.median <= target,
      };
    };
    const rows = {
      defaults: describe(defaults, TARGET_DEFAULTS),
      smallQuota: describe(smallQuota),
    };
    const x = (v: number) => `${v.toFixed(2)}x`;
    say(
      `through Syncthing (${syncthingVersion().split(' ').slice(0, 2).join(' ')}, two instances on loopback, ` +
        `fsWatcherDelayS=1), ${mib(size)} MiB, median [min–max] of ${runs}:`,
    );
    say(`  engine alone (rename into A until B has it)  ${range(engineStat, secs)} s`);
    for (const [label, row] of [
      ['dftp defaults          ', rows.defaults],
      [`dftp --quota ${SMALL_QUOTA}       `, rows.smallQuota],
    ] as const) {
      say(
        `  ${label}file in place ${range(row.place, secs)} s = ${range(row.ratio, x)} the engine ` +
          `(${row.target === undefined ? 'no target' : `target <= ${row.target}x: ${verdict(row.met === true)}`}); receiver exits ${range(row.receiverExit, secs)} s ` +
          `= ${x(row.exitRatio.median)}`,
      );
    }
    for (const timeline of timelines) for (const line of formatTimeline(timeline)) say(`  ${line}`);
    return { size, runs, engine: engineStat, ...rows, timelines };
  } finally {
    await peers.stop();
  }
}

export type { Timeline };
