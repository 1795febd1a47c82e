/**
 * Helpers for the `dftp` CLI tests: run the compiled `dftp` and `dmp` as real child processes,
 * each with its own DMP_HOME, collect their output, and never let a child outlive the test
 * (hard timeouts and a registry of live children that `killAll()` ends). Also: random files,
 * streaming SHA-256, and a sampler that measures a relay folder while a transfer runs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from dist/test/cli/dftp-helpers.js. */
export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const DMP = join(REPO_ROOT, 'dist', 'src', 'cli', 'dmp.js');
export const DFTP = join(REPO_ROOT, 'dist', 'src', 'cli', 'dftp.js');

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export interface RunOptions {
  /** DMP_HOME of the child. */
  home?: string;
  /** Extra environment; undefined removes a variable. DMP_* of the test runner never leak in. */
  env?: Record<string, string | undefined>;
  /** Hard limit: the child is killed with SIGKILL after this many ms (default 60 s). */
  timeoutMs?: number;
  cwd?: string;
}

export interface RunResult {
  /** Exit status, or null when the child died of a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the hard timeout killed the child. */
  timedOut: boolean;
  command: string;
}

export interface Background {
  readonly child: ChildProcess;
  readonly command: string;
  /** Resolves when the child has exited (by itself, on kill, or at the hard timeout). */
  readonly done: Promise<RunResult>;
  stdout(): string;
  stderr(): string;
  /** Sends a signal if the child still runs. */
  kill(signal?: NodeJS.Signals): void;
  /** True until the child has exited. */
  running(): boolean;
}

const live = new Set<ChildProcess>();

/** Kills every child still running (after/finally hooks). */
export function killAll(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  live.clear();
}

function childEnv(options: RunOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('DMP_') && name !== 'NODE_OPTIONS' && name !== 'NODE_TEST_CONTEXT') env[name] = value;
  }
  if (options.home !== undefined) env.DMP_HOME = options.home;
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

function start(program: 'dmp' | 'dftp', args: readonly string[], options: RunOptions = {}): Background {
  const command = `${program} ${args.map((arg) => JSON.stringify(arg)).join(' ')}`;
  const child = spawn(process.execPath, [program === 'dmp' ? DMP : DFTP, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: childEnv(options),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  let exited = false;
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 60_000);
  const done = new Promise<RunResult>((resolve) => {
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr, timedOut, command });
    };
    child.on('exit', () => {
      exited = true;
    });
    child.on('error', (error) => {
      stderr += `spawn error: ${error.message}\n`;
      exited = true;
      finish(null, null);
    });
    // 'close' waits for the output streams to end, so nothing written is lost.
    child.on('close', finish);
  });
  return {
    child,
    command,
    done,
    stdout: () => stdout,
    stderr: () => stderr,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    running: () => !exited,
  };
}

export function startDftp(args: readonly string[], options: RunOptions = {}): Background {
  return start('dftp', args, options);
}

export function startDmp(args: readonly string[], options: RunOptions = {}): Background {
  return start('dmp', args, options);
}

export function runDftp(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return startDftp(args, options).done;
}

export function runDmp(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return startDmp(args, options).done;
}

/**
 * Waits for every child; as soon as one fails (exits non-zero by itself), kills the others so
 * that nothing waits for a hard timeout on a peer that will never come.
 */
export function settleAll<T extends readonly Background[]>(children: T): Promise<{ [K in keyof T]: RunResult }> {
  return Promise.all(
    children.map((child) =>
      child.done.then((result) => {
        if (result.code !== 0 && result.signal === null) for (const other of children) other.kill('SIGKILL');
        return result;
      }),
    ),
  ) as Promise<{ [K in keyof T]: RunResult }>;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `predicate` every 10 ms until it holds; throws after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  describe?: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${describe ? `\n${describe()}` : ''}`);
    await sleep(10);
  }
}

/** Non-empty lines of a text. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

/** Parses one JSON object per non-empty line (throws on a line that is not JSON). */
export function jsonLines<T = Record<string, unknown>>(text: string): T[] {
  return lines(text).map((line) => {
    try {
      return JSON.parse(line) as T;
    } catch {
      throw new Error(`not a JSON line: ${JSON.stringify(line)}`);
    }
  });
}

/** Like jsonLines, but ignores a last line that is still being written. */
export function completeJsonLines<T = Record<string, unknown>>(text: string): T[] {
  const end = text.lastIndexOf('\n');
  return end < 0 ? [] : jsonLines<T>(text.slice(0, end));
}

/** Lines that look like a JavaScript stack trace. */
export function stackLines(text: string): string[] {
  return text.split('\n').filter((line) => /^\s{4}at /.test(line));
}

export function describeResult(result: RunResult): string {
  return `${result.command} -> code ${result.code}${result.signal ? ` signal ${result.signal}` : ''}${
    result.timedOut ? ' (killed at the hard timeout)' : ''
  }\n--- stdout ---\n${result.stdout.slice(-3000)}\n--- stderr ---\n${result.stderr.slice(-3000)}`;
}

export function describeBackground(child: Background): string {
  return `${child.command} (running: ${child.running()})\n--- stdout ---\n${child.stdout().slice(-3000)}\n--- stderr ---\n${child.stderr().slice(-3000)}`;
}

export interface Peers {
  /** The temp folder holding everything below. */
  root: string;
  relay: string;
  key: string;
  /** DMP_HOME of alice and bob. */
  alice: string;
  bob: string;
  /** Deletes the temp folder (kills nothing). */
  cleanup(): Promise<void>;
}

/**
 * A temp relay and two peers made through the real CLI: `dmp init` for alice generates the
 * key, bob is initialised with the same key; each has its own DMP_HOME.
 */
export async function makePeers(prefix = 'dftp-cli-'): Promise<Peers> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const relay = join(root, 'relay');
  const alice = join(root, 'home-alice');
  const bob = join(root, 'home-bob');
  await mkdir(relay);
  const first = await runDmp(['init', '--relay', relay, '--id', 'alice'], { home: alice });
  if (first.code !== 0) throw new Error(`init alice failed: ${describeResult(first)}`);
  const key = first.stdout.trim();
  if (!/^[A-Za-z0-9_-]{43}=$/.test(key)) throw new Error(`init alice printed no key: ${describeResult(first)}`);
  // `--key=KEY`: a key may start with '-', which yargs would take for an option after `--key KEY`.
  const second = await runDmp(['init', '--relay', relay, '--id', 'bob', `--key=${key}`], { home: bob });
  if (second.code !== 0) throw new Error(`init bob failed: ${describeResult(second)}`);
  return { root, relay, key, alice, bob, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** Writes `size` random bytes to `path`, 1 MiB at a time. */
export async function writeRandomFile(path: string, size: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    for (let done = 0; done < size; ) {
      const length = Math.min(MiB, size - done);
      await handle.write(randomBytes(length), 0, length, done);
      done += length;
    }
  } finally {
    await handle.close();
  }
}

/** SHA-256 of a file, streamed (never the whole file in memory). */
export function fileSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, { highWaterMark: 4 * MiB })
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** Every regular file under `dir`, by '/'-separated relative path, hidden files included. */
export async function listTree(dir: string): Promise<string[]> {
  const found: string[] = [];
  const visit = async (path: string) => {
    const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) await visit(full);
      else found.push(relative(dir, full).split(sep).join('/'));
    }
  };
  await visit(dir);
  return found.sort();
}

/** Total size of the files under `dir`; files that vanish while it looks count 0. */
export async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  const visit = async (path: string): Promise<void> => {
    const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
    await Promise.all(
      entries.map(async (entry) => {
        const full = join(path, entry.name);
        if (entry.isDirectory()) return visit(full);
        const info = await lstat(full).catch(() => undefined);
        if (info?.isFile()) total += info.size;
      }),
    );
  };
  await visit(dir);
  return total;
}

export interface SampleSummary {
  samples: number;
  /** Samples that saw at least one byte. */
  positive: number;
  peak: number;
}

/** Measures the bytes under `dir` every `everyMs` until stopped. */
export function sampleTree(dir: string, everyMs: number): { stop(): Promise<SampleSummary> } {
  const summary: SampleSummary = { samples: 0, positive: 0, peak: 0 };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const bytes = await treeBytes(dir);
      summary.samples += 1;
      if (bytes > 0) summary.positive += 1;
      summary.peak = Math.max(summary.peak, bytes);
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return summary;
    },
  };
}
