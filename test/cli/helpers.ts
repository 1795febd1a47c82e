/**
 * Helpers for CLI tests: run the compiled `dmp` as a real child process with its own DMP_HOME,
 * collect its output and exit status, and never let a child outlive the test (hard timeouts and
 * a registry of live children that `killAll()` ends).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from dist/test/cli/helpers.js. */
export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const DMP = join(REPO_ROOT, 'dist', 'src', 'cli', 'dmp.js');

export interface RunOptions {
  /** DMP_HOME of the child; omitted: DMP_HOME is not set at all. */
  home?: string;
  /** Extra environment; a value of undefined removes the variable. DMP_* of the test runner never leak in. */
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed (closed at once when omitted). */
  input?: string;
  /** Hard limit: the child is killed with SIGKILL after this many ms (default 30 s). */
  timeoutMs?: number;
  /** Run the child as this user and group (tests running as root). */
  uid?: number;
  gid?: number;
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
  /** The command, for assertion messages. */
  command: string;
}

export interface Background {
  readonly child: ChildProcess;
  /** Resolves when the child has exited (by itself, on kill, or at the hard timeout). */
  readonly done: Promise<RunResult>;
  /** Output collected so far. */
  stdout(): string;
  stderr(): string;
  /** Sends a signal if the child still runs. */
  kill(signal?: NodeJS.Signals): void;
}

const live = new Set<ChildProcess>();

/** Kills every child still running (for after/finally hooks). */
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

/** Starts `dmp ...args` in the background. */
export function startDmp(args: readonly string[], options: RunOptions = {}): Background {
  const command = `dmp ${args.join(' ')}`;
  const child = spawn(process.execPath, [DMP, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: childEnv(options),
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(options.uid === undefined ? {} : { uid: options.uid }),
    ...(options.gid === undefined ? {} : { gid: options.gid }),
  });
  live.add(child);
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  // A child that exits before reading its stdin must not crash the test with EPIPE.
  child.stdin?.on('error', () => {});
  child.stdin?.end(options.input ?? '');
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 30_000);
  const done = new Promise<RunResult>((resolve) => {
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr, timedOut, command });
    };
    child.on('error', (error) => {
      stderr += `spawn error: ${error.message}\n`;
      finish(null, null);
    });
    // 'close' waits for the output streams to end, so nothing written is lost.
    child.on('close', finish);
  });
  return {
    child,
    done,
    stdout: () => stdout,
    stderr: () => stderr,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Runs `dmp ...args` to the end. */
export function runDmp(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return startDmp(args, options).done;
}

/** Polls `predicate` every 20 ms until it holds; throws after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'a condition') {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Non-empty lines of a text. */
export function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '');
}

/** Parses one JSON object per non-empty line. */
export function jsonLines<T = Record<string, unknown>>(text: string): T[] {
  return lines(text).map((line) => JSON.parse(line) as T);
}

/** Lines that look like a JavaScript stack trace. */
export function stackLines(text: string): string[] {
  return text.split('\n').filter((line) => /^\s{4}at /.test(line));
}

/** Describes a result for assertion messages. */
export function describeResult(result: RunResult): string {
  return `${result.command} -> code ${result.code}${result.signal ? ` signal ${result.signal}` : ''}${
    result.timedOut ? ' (killed at the hard timeout)' : ''
  }\n--- stdout ---\n${result.stdout.slice(0, 2000)}\n--- stderr ---\n${result.stderr.slice(0, 2000)}`;
}

/** A fresh temporary directory; `removeTree` deletes it. */
export async function makeTempDir(prefix = 'dmp-cli-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Makes every folder under `path` writable again (tests chmod relays read-only), then deletes it. */
export async function removeTree(path: string): Promise<void> {
  const restore = async (dir: string): Promise<void> => {
    await chmod(dir, 0o755).catch(() => {});
    const entries = await readdir(dir).catch(() => [] as string[]);
    for (const name of entries) {
      const child = join(dir, name);
      const info = await lstat(child).catch(() => undefined);
      if (info?.isDirectory()) await restore(child);
    }
  };
  await restore(path);
  await rm(path, { recursive: true, force: true });
}

export interface Peers {
  /** The temp folder holding everything below. */
  root: string;
  relay: string;
  /** The relay key both peers were given. */
  key: string;
  /** DMP_HOME of alice and bob. */
  alice: string;
  bob: string;
  /** Kills nothing; deletes the temp folder. */
  cleanup(): Promise<void>;
}

/**
 * Creates a temp relay and two peers through the real CLI: `dmp init` for alice generates the
 * key, bob is initialised with it.
 */
export async function makePeers(): Promise<Peers> {
  const root = await makeTempDir();
  const relay = join(root, 'relay');
  const alice = join(root, 'home-alice');
  const bob = join(root, 'home-bob');
  try {
    await mkdir(relay);
    const first = await runDmp(['init', '--relay', relay, '--id', 'alice'], { home: alice });
    if (first.code !== 0) throw new Error(`init alice failed: ${describeResult(first)}`);
    const key = first.stdout.trim();
    if (!/^[A-Za-z0-9_-]{43}=$/.test(key)) throw new Error(`init alice printed no key: ${describeResult(first)}`);
    // `--key=KEY`: one key in 64 starts with '-', which yargs would take for options after `--key KEY`.
    const second = await runDmp(['init', '--relay', relay, '--id', 'bob', `--key=${key}`], { home: bob });
    if (second.code !== 0) throw new Error(`init bob failed: ${describeResult(second)}`);
    return { root, relay, key, alice, bob, cleanup: () => removeTree(root) };
  } catch (error) {
    await removeTree(root);
    throw error;
  }
}
