/**
 * Locks between local processes of one peer (sequence allocation, one receiver per channel,
 * one daemon). proper-lockfile is sound on a local disk but not across machines, so locks live
 * in DMP_HOME and never in the relay.
 */
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
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

/** A lock not updated for this long belongs to a process that died (proper-lockfile's `stale`). */
const STALE_MS = 10_000;

/** Takes the lock at `path` (a file name in DMP_HOME/locks). Records our pid beside it. */
export async function acquireLock(path: string, options: LockOptions = {}): Promise<Release> {
  const waitMs = options.waitMs ?? 30_000;
  const logger = options.logger ?? silentLogger;
  await mkdir(dirname(path), { recursive: true });
  const take = () =>
    // proper-lockfile tracks locks per target path in-process, so each lock gets its own target.
    lockfile.lock(path, {
      lockfilePath: `${path}.lock`,
      realpath: false,
      stale: STALE_MS,
      update: 2_000,
      // Quick first retries for the usual short wait, then 100 ms apart until waitMs has passed:
      // long enough for a lock left by a killed process to go stale (10 s) and be taken over.
      retries: waitMs <= 0 ? 0 : { retries: Math.ceil(waitMs / 100) + 10, factor: 1.5, minTimeout: 5, maxTimeout: 100 },
      // The default throws inside a timer and kills the process. A compromised lock (the
      // machine slept past `stale`) is logged; the state it guards is written atomically anyway.
      onCompromised: (error) => logger.log('warn', 'lock-compromised', { path, error: error.message }),
    });
  let release: () => Promise<void>;
  try {
    release = await take();
  } catch (error) {
    if ((error as { code?: string }).code !== 'ELOCKED') {
      throw new DmpError('IO', `cannot lock ${path}: ${(error as Error).message}`, { cause: error });
    }
    const pid = Number((await readFile(`${path}.pid`, 'utf8').catch(() => '')).trim()) || undefined;
    // The holder of a long-held lock (a receiver, the daemon) was killed: its lock would only go
    // stale after 10 s, but a process that does not exist holds nothing. DMP_HOME is local, so
    // the pid is ours to check. Short locks just wait for staleness: between two holders the
    // pid file can name the previous one.
    if (waitMs <= 0 && pid !== undefined && pid !== process.pid && !isAlive(pid)) {
      logger.log('info', 'lock-recovered', { path, deadPid: pid });
      await rm(`${path}.lock`, { recursive: true, force: true });
      try {
        release = await take();
      } catch (retryError) {
        throw lockedError(path, options, undefined, retryError);
      }
    } else {
      throw lockedError(path, options, pid, error);
    }
  }
  const pidFile = `${path}.pid`;
  const wrotePid =
    waitMs <= 0 &&
    (await writeFile(pidFile, `${process.pid}\n`).then(
      () => true,
      () => false,
    ));
  return async () => {
    // The pid file goes first, while the lock is still ours: once it is released, the next
    // holder may already have written its own. Per-transfer locks would otherwise leave one
    // pid file per transfer behind for ever.
    if (wrotePid) await removeOwnPidFile(pidFile);
    await release().catch(() => {});
  };
}

/** Deletes a pid file if it still names this process. */
async function removeOwnPidFile(path: string): Promise<void> {
  const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
  if (pid === process.pid) await rm(path, { force: true }).catch(() => {});
}

function lockedError(path: string, options: LockOptions, pid: number | undefined, cause: unknown): DmpError {
  const who = pid ? ` (pid ${pid})` : '';
  const purpose = options.purpose ?? `another process holding the lock ${basename(path)}`;
  return new DmpError('LOCKED', `${purpose} is already running${who}`, {
    data: { path, pid },
    cause,
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as { code?: string }).code === 'EPERM';
  }
}

/**
 * Removes what locks named `<prefix>...` in `dir` left behind when their holder was killed (a
 * pid file naming a process that no longer runs, and its lock): earlier versions also left the
 * pid file of every finished transfer. Locks of live processes are left alone.
 */
export async function removeDeadLocks(dir: string, prefix: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.pid')) continue;
    const pidFile = join(dir, name);
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || isAlive(pid)) continue;
    const path = pidFile.slice(0, -'.pid'.length);
    // A lock updated lately has a live holder that has not written its pid yet.
    const lock = await stat(`${path}.lock`).catch(() => undefined);
    if (lock && Date.now() - lock.mtimeMs < STALE_MS) continue;
    await rm(`${path}.lock`, { recursive: true, force: true }).catch(() => {});
    await rm(pidFile, { force: true }).catch(() => {});
  }
}

/**
 * Whether a long-held lock (the daemon's, a receiver's) is held now, and by which pid, without
 * taking it: what `dmp status` shows.
 */
export async function lockHolder(path: string): Promise<{ held: boolean; pid?: number }> {
  const held = await lockfile
    .check(path, { lockfilePath: `${path}.lock`, realpath: false, stale: 10_000 })
    .catch(() => false);
  if (!held) return { held };
  const pid = Number((await readFile(`${path}.pid`, 'utf8').catch(() => '')).trim()) || undefined;
  return pid === undefined ? { held } : { held, pid };
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
