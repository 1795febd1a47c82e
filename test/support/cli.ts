/**
 * The one way tests run the compiled `dmp` and `dftp`: as real child processes, each peer with
 * its own DMP_HOME, output collected, exit status and signal reported. No child outlives the
 * test: every child has a hard time limit, and a registry of live children is killed by
 * `killAll()` and when the test process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { access, chmod, cp, mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, removeTree } from './files.js';

/** The repository root, from dist/test/support/cli.js. */
export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

export type Program = 'dmp' | 'dftp';

/** The compiled entry point of `program` in a checkout (or a copy made by `copyRunnable`). */
export function cliPath(program: Program, root = REPO_ROOT): string {
  return join(root, 'dist', 'src', 'cli', `${program}.js`);
}

export interface RunOptions {
  /** DMP_HOME of the child; omitted: DMP_HOME is not set at all. */
  home?: string;
  /** Extra environment; a value of undefined removes the variable. DMP_* of the test runner never leak in. */
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed (closed at once when omitted). */
  input?: string;
  /** Hard limit: the child is killed with SIGKILL after this many ms (default 60 s). */
  timeoutMs?: number;
  /** Run the child as this user and group (tests running as root). */
  uid?: number;
  gid?: number;
  /** Working folder of the child (default: `root`). */
  cwd?: string;
  /** Where the compiled CLI lives (default: this checkout); see `copyRunnable`. */
  root?: string;
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
  /** Wall time from spawn to exit, ms. */
  elapsedMs: number;
}

export interface Background {
  readonly child: ChildProcess;
  readonly command: string;
  /** Resolves when the child has exited (by itself, on kill, or at the hard timeout). */
  readonly done: Promise<RunResult>;
  /** Output collected so far. */
  stdout(): string;
  stderr(): string;
  /** Sends a signal if the child still runs (default SIGTERM). */
  kill(signal?: NodeJS.Signals): void;
  /** True until the child has exited. */
  running(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs` (default 10 s); resolves with the result. */
  stop(graceMs?: number): Promise<RunResult>;
}

const live = new Set<ChildProcess>();
let exitHooked = false;

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Kills every child still running (for after/finally hooks). */
export function killAll(): void {
  for (const child of live) if (isRunning(child)) child.kill('SIGKILL');
  live.clear();
}

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const child of live) if (isRunning(child)) child.kill('SIGKILL');
  });
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

/** An argument as a shell would need it, for messages only. */
function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg);
}

/** Starts `dmp|dftp ...args` in the background. */
export function startCli(program: Program, args: readonly string[], options: RunOptions = {}): Background {
  const root = options.root ?? REPO_ROOT;
  return spawnChild(process.execPath, [cliPath(program, root), ...args], { cwd: root, ...options }, [program, ...args]);
}

/** Starts any program in the background, with the same environment rules, limits and reports as the CLI. */
export function startProcess(file: string, args: readonly string[], options: RunOptions = {}): Background {
  return spawnChild(file, args, options, [file, ...args]);
}

/** `shown` is the command as messages show it. */
function spawnChild(file: string, args: readonly string[], options: RunOptions, shown: readonly string[]): Background {
  hookExit();
  const home = options.home === undefined ? '' : `DMP_HOME=${quote(options.home)} `;
  const command = `${home}${shown.map(quote).join(' ')}`;
  const started = Date.now();
  const child = spawn(file, args, {
    cwd: options.cwd ?? options.root ?? REPO_ROOT,
    env: childEnv(options),
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(options.uid === undefined ? {} : { uid: options.uid }),
    ...(options.gid === undefined ? {} : { gid: options.gid }),
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
  // A child that exits before reading its stdin must not crash the test with EPIPE.
  child.stdin?.on('error', () => {});
  child.stdin?.end(options.input ?? '');
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
      resolve({ code, signal, stdout, stderr, timedOut, command, elapsedMs: Date.now() - started });
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
  const kill = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (isRunning(child)) child.kill(signal);
  };
  const stop = async (graceMs = 10_000): Promise<RunResult> => {
    kill('SIGTERM');
    const killer = setTimeout(() => kill('SIGKILL'), graceMs);
    try {
      return await done;
    } finally {
      clearTimeout(killer);
    }
  };
  return {
    child,
    command,
    done,
    stdout: () => stdout,
    stderr: () => stderr,
    kill,
    running: () => !exited,
    stop,
  };
}

/** Runs any program to the end; see `startProcess`. */
export function runProcess(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return startProcess(file, args, options).done;
}

/** Runs `dmp|dftp ...args` to the end. */
export function runCli(program: Program, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return startCli(program, args, options).done;
}

export function startDmp(args: readonly string[], options: RunOptions = {}): Background {
  return startCli('dmp', args, options);
}

export function startDftp(args: readonly string[], options: RunOptions = {}): Background {
  return startCli('dftp', args, options);
}

export function runDmp(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return runCli('dmp', args, options);
}

export function runDftp(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return runCli('dftp', args, options);
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

/** Describes a result for assertion messages: the command, how it ended, the end of its output. */
export function describeResult(result: RunResult, limit = 3000): string {
  return `${result.command} -> code ${result.code}${result.signal ? ` signal ${result.signal}` : ''}${
    result.timedOut ? ' (killed at the hard timeout)' : ''
  } after ${result.elapsedMs} ms\n--- stdout ---\n${result.stdout.slice(-limit)}\n--- stderr ---\n${result.stderr.slice(-limit)}`;
}

/** Describes a child that may still run, for assertion messages. */
export function describeBackground(child: Background, limit = 3000): string {
  return `${child.command} (running: ${child.running()})\n--- stdout ---\n${child.stdout().slice(-limit)}\n--- stderr ---\n${child.stderr().slice(-limit)}`;
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
  /** Deletes the temp folder (kills nothing). */
  cleanup(): Promise<void>;
}

/**
 * A temp relay and two peers made through the real CLI: `dmp init` for alice generates the key,
 * bob is initialised with the same key; each has its own DMP_HOME.
 */
export async function makePeers(prefix = 'dmp-cli-'): Promise<Peers> {
  const root = await makeTempDir(prefix);
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

/**
 * Copies what the compiled CLI needs to run (package.json, dist/src and the packages it loads)
 * into a new temp folder that every user may read, and returns it for `RunOptions.root`. Tests
 * that run the CLI as another user use it, so they do not depend on that user being able to enter
 * the folder of the checkout (a clone in root's home folder, mode 700).
 */
export async function copyRunnable(): Promise<{ root: string; cleanup(): Promise<void> }> {
  const root = await makeTempDir('dmp-runnable-');
  try {
    await cp(join(REPO_ROOT, 'package.json'), join(root, 'package.json'));
    await cp(join(REPO_ROOT, 'dist', 'src'), join(root, 'dist', 'src'), { recursive: true });
    for (const name of await runtimePackages()) {
      await cp(join(REPO_ROOT, 'node_modules', name), join(root, 'node_modules', name), {
        recursive: true,
        dereference: true,
      });
    }
    await openToEveryone(root);
    return { root, cleanup: () => removeTree(root) };
  } catch (error) {
    await removeTree(root);
    throw error;
  }
}

/**
 * The package folders that the published CLI loads: its dependencies, transitively, resolved as
 * Node resolves them (a package's own node_modules first, then the ones above it). Only folders
 * directly under the checkout's node_modules are returned; nested ones come along with them.
 */
async function runtimePackages(): Promise<string[]> {
  const top = join(REPO_ROOT, 'node_modules');
  const seen = new Set<string>();
  const base = resolvePath(REPO_ROOT);
  const find = async (name: string, from: string): Promise<string> => {
    for (let dir = resolvePath(from); ; dir = dirname(dir)) {
      const candidate = join(dir, 'node_modules', name);
      if (await exists(join(candidate, 'package.json'))) return candidate;
      if (dir === base || !dir.startsWith(base)) break;
    }
    throw new Error(`cannot find the package ${name} needed from ${from}`);
  };
  const visit = async (dir: string): Promise<void> => {
    const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
    };
    for (const name of Object.keys(manifest.dependencies ?? {})) {
      const found = await find(name, dir);
      if (seen.has(found)) continue;
      seen.add(found);
      await visit(found);
    }
  };
  await visit(REPO_ROOT);
  return [...seen]
    .map((dir) => relative(top, dir))
    .filter((path) => !path.startsWith('..') && !path.includes(`${sep}node_modules${sep}`))
    .sort();
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Folders 0755 and files 0644 under `dir` (mkdtemp makes 0700). */
async function openToEveryone(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await openToEveryone(path);
    else await chmod(path, 0o644);
  }
}
