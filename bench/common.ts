/**
 * What every bench row shares: child processes that are always stopped, summaries, random
 * files, and a local relay with two initialised peers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

export const root = new URL('../..', import.meta.url).pathname;
export const DMP = join(root, 'dist', 'src', 'cli', 'dmp.js');
export const DFTP = join(root, 'dist', 'src', 'cli', 'dftp.js');
export const MiB = 1024 * 1024;

export interface Stat {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function summarize(values: number[]): Stat {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return { median, min: sorted[0] ?? 0, max: sorted.at(-1) ?? 0, runs: values.length };
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/** What a bench row is given: the mode, and where to put a line of the table. */
export interface RowOptions {
  quick: boolean;
  /** Runs per figure when `--runs N` was given; else each row's own default. */
  runs?: number;
  say: (line: string) => void;
}

/** `--runs N` or `--runs=N`: how many runs each figure is the median of; undefined when absent. */
export function runsOption(argv: string[]): number | undefined {
  const index = argv.findIndex((arg) => arg === '--runs' || arg.startsWith('--runs='));
  if (index < 0) return undefined;
  const value = argv[index]?.startsWith('--runs=') ? argv[index]?.slice('--runs='.length) : argv[index + 1];
  const runs = Number(value);
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) {
    process.stderr.write('bench: --runs takes a whole number from 1 to 20\n');
    process.exit(2);
  }
  return runs;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function sequence<T>(count: number, fn: (index: number) => Promise<T>): Promise<T[]> {
  const values: T[] = [];
  for (let i = 0; i < count; i += 1) values.push(await fn(i));
  return values;
}

export const mb = (bytesPerSecond: number) => (bytesPerSecond / 1e6).toFixed(0);
export const mib = (bytes: number) => (bytes / MiB).toFixed(1);
export const secs = (seconds: number) => seconds.toFixed(2);
export const range = (stat: Stat, fmt: (v: number) => string) =>
  `${fmt(stat.median)} [${fmt(stat.min)}–${fmt(stat.max)}]`;
export const verdict = (met: boolean) => (met ? 'met' : 'MISSED');

/** Every child the bench started and that has not exited yet, so none outlives a failure. */
const children = new Set<ChildProcess>();
/**
 * Work to undo before the bench exits, however it exits (Syncthing pairs, temp folders). Each runs
 * once; whoever asks second (the row's own `finally`, or a signal) waits for the same run, so
 * the bench never exits while a stop is half done.
 */
const cleanups = new Set<() => Promise<void>>();

/** Registers `fn` and returns the one way to run it: at most once, every caller awaiting that run. */
export function onCleanup(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  const once = () => {
    running ??= fn()
      .catch((error: Error) => {
        process.stderr.write(`bench: cleanup failed: ${error.message}\n`);
      })
      .finally(() => cleanups.delete(once));
    return running;
  };
  cleanups.add(once);
  return once;
}

/** Stops every child still running (SIGTERM, then SIGKILL after `graceMs`), then runs the cleanups. */
export async function stopEverything(graceMs = 5000): Promise<void> {
  await Promise.all([...children].map((child) => stopChild(child, graceMs)));
  for (const once of [...cleanups].reverse()) await once();
}

export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = sleep(graceMs).then(() => 'timeout' as const);
  if ((await Promise.race([exited, timer])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}

let hooksInstalled = false;

/** On Ctrl-C or SIGTERM: stop every child and clean up before exiting; on any exit: kill what is left. */
export function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    // `on`, not `once`: signal-exit (loaded with proper-lockfile) raises the signal again, killing
    // the bench mid-cleanup, as soon as no listener but its own is left.
    process.on(signal, () => {
      if (stopping) {
        process.stderr.write(`bench: ${signal} again, exiting now\n`);
        process.exit(130);
      }
      stopping = true;
      process.stderr.write(`\nbench: ${signal}, stopping every child process\n`);
      void stopEverything(2000).finally(() => process.exit(130));
    });
  }
}

export interface Proc {
  child: ChildProcess;
  lines: string[];
  exit: Promise<number>;
  /** When the process exited (performance.now()), once it has. */
  exitedAt: () => number;
  /** Peak resident set (VmHWM), bytes, as last read from /proc. */
  peakRss: () => number;
  /** Reads VmHWM now (bytes; 0 when the process is gone). */
  readPeakRss: () => Promise<number>;
  stderr: () => string;
  onLine: (fn: (line: string, at: number) => void) => void;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
  /** Keep every stdout line in `lines` (default true; off for very chatty children). */
  keepLines?: boolean;
  /** Report a non-zero exit on stderr (default true). */
  quiet?: boolean;
}

async function vmHwm(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = /VmHWM:\s+(\d+) kB/.exec(text);
  return match ? Number(match[1]) * 1024 : 0;
}

/** Starts any program, tracked so that it is stopped whatever happens to the bench. */
export function runCommand(command: string, args: string[], options: RunOptions = {}): Proc {
  const { input } = options;
  const child = spawn(command, args, {
    env: options.env ?? process.env,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  const lines: string[] = [];
  const listeners: ((line: string, at: number) => void)[] = [];
  let buffered = '';
  child.stdout?.on('data', (data: Buffer) => {
    const at = performance.now();
    buffered += data.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const line of parts) {
      if (options.keepLines !== false) lines.push(line);
      for (const fn of listeners) fn(line, at);
    }
  });
  let stderr = '';
  child.stderr?.on('data', (data: Buffer) => {
    // The tail is enough for a failure's reason; a chatty child must not fill the bench's memory.
    stderr = (stderr + data.toString('utf8')).slice(-64 * 1024);
  });
  let peak = 0;
  const sampler = setInterval(() => {
    void vmHwm(child.pid).then((value) => {
      peak = Math.max(peak, value);
    });
  }, 50);
  let exitedAt = 0;
  const exit = new Promise<number>((resolve) => {
    const done = (code: number) => {
      exitedAt = performance.now();
      clearInterval(sampler);
      children.delete(child);
      if (code !== 0 && !options.quiet)
        process.stderr.write(
          `bench: ${command} ${args.join(' ')} exited ${code}: ${stderr.trim().split('\n').at(-1)}\n`,
        );
      resolve(code);
    };
    child.on('exit', (code, signal) => done(code ?? (signal ? 128 : 1)));
    child.on('error', (error) => {
      stderr += error.message;
      done(127);
    });
  });
  if (input !== undefined) {
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);
  }
  return {
    child,
    lines,
    exit,
    exitedAt: () => exitedAt,
    peakRss: () => peak,
    readPeakRss: async () => {
      peak = Math.max(peak, await vmHwm(child.pid));
      return peak;
    },
    stderr: () => stderr,
    onLine: (fn) => listeners.push(fn),
  };
}

/** Runs one of our CLIs (dist/src/cli/*.js) as the peer whose DMP_HOME is `home`. */
export function run(bin: string, home: string, args: string[], input?: string, options: RunOptions = {}): Proc {
  return runCommand(process.execPath, [bin, ...args], {
    ...options,
    env: { ...process.env, DMP_HOME: home },
    ...(input === undefined ? {} : { input }),
  });
}

/** Waits for every process to exit; after `timeoutMs` stops them all and throws, so a stuck row fails instead of hanging. */
export async function finishOrKill(procs: Proc[], what: string, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const outcome = await Promise.race([Promise.all(procs.map((proc) => proc.exit)), timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    await Promise.all(procs.map((proc) => stopChild(proc.child)));
    throw new Error(`${what} did not finish within ${timeoutMs / 1000} s`);
  }
}

export async function must(proc: Proc, what: string): Promise<void> {
  const code = await proc.exit;
  if (code !== 0) {
    // The last line is a summary ("1 transfer failed"): the reason is in a line or event before it.
    const failed = proc.lines.filter((line) => line.includes('"event":"failed"')).at(-1);
    const tail = proc.stderr().trim().split('\n').slice(-3).join(' | ');
    throw new Error(`${what} failed (exit ${code}): ${tail}${failed ? ` | ${failed}` : ''}`);
  }
}

export async function makeRandomFile(path: string, size: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    for (let done = 0; done < size; ) {
      const block = randomBytes(Math.min(16 * MiB, size - done));
      await handle.write(block);
      done += block.length;
    }
  } finally {
    await handle.close();
  }
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await folderBytes(path);
    else total += (await stat(path).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export interface Setup {
  base: string;
  relay: string;
  alice: string;
  bob: string;
  key: string;
}

/** `dmp init` for alice and bob (DMP_HOME `homes/alice`, `homes/bob`), each on its own relay copy. */
export async function initPeers(homes: string, relayAlice: string, relayBob: string): Promise<Omit<Setup, 'base'>> {
  const alice = join(homes, 'alice');
  const bob = join(homes, 'bob');
  const init = run(DMP, alice, ['init', '--relay', relayAlice, '--id', 'alice']);
  await must(init, 'init alice');
  const key = init.lines[0]?.trim() ?? '';
  // `--key=KEY`: a key may start with '-'.
  await must(run(DMP, bob, ['init', '--relay', relayBob, '--id', 'bob', `--key=${key}`]), 'init bob');
  return { relay: relayAlice, alice, bob, key };
}

/** A temp folder with a local relay and two peers; removed by stopEverything() if not before. */
export async function setup(): Promise<Setup & { remove: () => Promise<void> }> {
  const base = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'dmp-bench-'));
  const remove = onCleanup(() => rm(base, { recursive: true, force: true }));
  const relay = join(base, 'relay');
  await mkdir(relay);
  return { base, ...(await initPeers(base, relay, relay)), remove };
}

export interface TransferSample {
  /** From the sender's start to the receiver's `done` (the file in place). */
  seconds: number;
  /** From the sender's start until both processes have exited. */
  exitSeconds: number;
  senderRss: number;
  receiverRss: number;
  relayOverhead: number;
  peakHeld: number;
}

/** One `dftp send` alice -> bob through the local relay of `s`, the receiver started first. */
export async function transfer(
  s: Setup,
  file: string,
  size: number,
  extra: string[],
  expected: string,
): Promise<TransferSample> {
  const out = join(s.base, `out-${randomBytes(4).toString('hex')}`);
  const receiver = run(DFTP, s.bob, ['receive', '--out', out, '--count', '1', '--json']);
  // Let the receiver start watching before the clock starts.
  await sleep(300);
  let doneAt = 0;
  let received = '';
  receiver.onLine((line, at) => {
    const event = JSON.parse(line) as { event: string; sha256?: string };
    if (event.event === 'done') {
      doneAt = at;
      received = event.sha256 ?? '';
    }
  });
  let peakHeld = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peakHeld = Math.max(peakHeld, await folderBytes(join(s.relay, 'alice')));
      // Every 25 ms: often enough to catch the peak, rare enough not to slow what it measures.
      await sleep(25);
    }
  })();
  const started = performance.now();
  const sender = run(DFTP, s.alice, ['send', 'bob', file, '--json', ...extra]);
  let relayBytes = 0;
  sender.onLine((line) => {
    const event = JSON.parse(line) as { event: string; relayBytes?: number };
    if (event.event === 'done') relayBytes = event.relayBytes ?? 0;
  });
  try {
    await must(sender, 'dftp send');
    await must(receiver, 'dftp receive');
  } finally {
    sampling = false;
    await sampler;
  }
  if (received !== expected) throw new Error('received file has another checksum');
  await rm(out, { recursive: true, force: true });
  return {
    seconds: (doneAt - started) / 1000,
    exitSeconds: (Math.max(sender.exitedAt(), receiver.exitedAt()) - started) / 1000,
    senderRss: sender.peakRss(),
    receiverRss: receiver.peakRss(),
    relayOverhead: relayBytes / size,
    peakHeld,
  };
}
