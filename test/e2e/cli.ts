/**
 * Runs the compiled `dmp` and `dftp` as real child processes for the end-to-end tests: each with
 * its own DMP_HOME, hard time limits, and a registry so that no child outlives the test process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from dist/test/e2e/cli.js. */
export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const CLI = {
  dmp: join(REPO_ROOT, 'dist', 'src', 'cli', 'dmp.js'),
  dftp: join(REPO_ROOT, 'dist', 'src', 'cli', 'dftp.js'),
};

export interface RunOptions {
  /** DMP_HOME of the child. */
  home: string;
  /** Written to stdin, which is then closed (closed at once when omitted). */
  input?: string;
  /** Hard limit: SIGKILL after this many ms (default 60 s). */
  timeoutMs?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  command: string;
  /** Wall time from spawn to exit, ms. */
  elapsedMs: number;
}

export interface Background {
  readonly child: ChildProcess;
  readonly command: string;
  readonly done: Promise<RunResult>;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the result. */
  stop(graceMs?: number): Promise<RunResult>;
}

const live = new Set<ChildProcess>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

/** Kills every child still running. */
export function killAllChildren(): void {
  for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  live.clear();
}

function childEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('DMP_') && name !== 'NODE_OPTIONS' && name !== 'NODE_TEST_CONTEXT') env[name] = value;
  }
  env.DMP_HOME = home;
  return env;
}

/** Starts `dmp|dftp ...args` in the background. */
export function start(program: keyof typeof CLI, args: readonly string[], options: RunOptions): Background {
  hookExit();
  const command = `DMP_HOME=${options.home} ${program} ${args.join(' ')}`;
  const started = Date.now();
  const child = spawn(process.execPath, [CLI[program], ...args], {
    cwd: REPO_ROOT,
    env: childEnv(options.home),
    stdio: ['pipe', 'pipe', 'pipe'],
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
    child.on('error', (error) => {
      stderr += `spawn error: ${error.message}\n`;
      finish(null, null);
    });
    child.on('close', finish);
  });
  const stop = async (graceMs = 10_000): Promise<RunResult> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const killer = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, graceMs);
    try {
      return await done;
    } finally {
      clearTimeout(killer);
    }
  };
  return { child, command, done, stdout: () => stdout, stderr: () => stderr, stop };
}

/** Runs `dmp|dftp ...args` to the end. */
export function run(program: keyof typeof CLI, args: readonly string[], options: RunOptions): Promise<RunResult> {
  return start(program, args, options).done;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `predicate` every `everyMs` until it holds; throws after `timeoutMs`. */
export async function waitFor(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Parses one JSON object per non-empty line. */
export function jsonLines<T = Record<string, unknown>>(text: string): T[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as T);
}

/** A result for assertion messages. */
export function describeResult(result: RunResult, limit = 3000): string {
  return `${result.command} -> code ${result.code}${result.signal ? ` signal ${result.signal}` : ''}${
    result.timedOut ? ' (killed at the hard timeout)' : ''
  } after ${result.elapsedMs} ms\n--- stdout ---\n${result.stdout.slice(-limit)}\n--- stderr ---\n${result.stderr.slice(-limit)}`;
}
