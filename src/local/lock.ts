/**
 * Locks between local processes of one peer (sequence allocation, one receiver per channel,
 * one daemon). proper-lockfile is sound on a local disk but not across machines, so locks live
 * in DMP_HOME and never in the relay.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';
import { DmpError } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';

export interface LockOptions {
  /** Wait for the lock this long in ms (0: fail at once). Default 30 s. */
  waitMs?: number;
  /** Named in the error when the lock is held: "another dmp listen". */
  purpose?: string;
  logger?: Logger;
}

export type Release = () => Promise<void>;

/** Takes the lock at `path` (a file name in DMP_HOME/locks). Records our pid beside it. */
export async function acquireLock(path: string, options: LockOptions = {}): Promise<Release> {
  const waitMs = options.waitMs ?? 30_000;
  const logger = options.logger ?? silentLogger;
  await mkdir(dirname(path), { recursive: true });
  let release: () => Promise<void>;
  try {
    // proper-lockfile tracks locks per target path in-process, so each lock gets its own target.
    release = await lockfile.lock(path, {
      lockfilePath: `${path}.lock`,
      realpath: false,
      stale: 10_000,
      update: 2_000,
      retries: waitMs <= 0 ? 0 : { retries: Math.ceil(waitMs / 50), factor: 1, minTimeout: 5, maxTimeout: 50 },
      // The default throws inside a timer and kills the process. A compromised lock (the
      // machine slept past `stale`) is logged; the state it guards is written atomically anyway.
      onCompromised: (error) => logger.log('warn', 'lock-compromised', { path, error: error.message }),
    });
  } catch (error) {
    if ((error as { code?: string }).code === 'ELOCKED') {
      const holder = await readFile(`${path}.pid`, 'utf8').catch(() => '');
      const who = holder.trim() ? ` (pid ${holder.trim()})` : '';
      throw new DmpError('LOCKED', `${options.purpose ?? 'another process'} is already running${who}`, {
        data: { path, pid: Number(holder.trim()) || undefined },
        cause: error,
      });
    }
    throw new DmpError('IO', `cannot lock ${path}: ${(error as Error).message}`, { cause: error });
  }
  await writeFile(`${path}.pid`, `${process.pid}\n`).catch(() => {});
  return async () => {
    await release().catch(() => {});
  };
}

/** Runs `fn` holding the lock. */
export async function withLock<T>(path: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const release = await acquireLock(path, options);
  try {
    return await fn();
  } finally {
    await release();
  }
}
