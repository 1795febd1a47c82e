/**
 * The last step of receiving a file: the verified partial takes its final name, never replacing
 * an existing file unless the user said so, and the folder entry is made durable.
 */
import { constants } from 'node:fs';
import { type FileHandle, link, lstat, open, rename, unlink } from 'node:fs/promises';
import { DmpError, errnoCode } from '../errors.js';
import { freeName } from '../local/free-name.js';
import { pathRefused } from './safe-path.js';

/** Never through a link (the flag does not exist on Windows, where links need privileges). */
const NO_FOLLOW = constants.O_NOFOLLOW ?? 0;
/** A new partial: created here and now, never whatever already sits under its name. */
const NEW_PARTIAL = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | NO_FOLLOW;
const RESUMED_PARTIAL = constants.O_RDWR | NO_FOLLOW;

/**
 * Opens the partial file at `path` for writing, never through a link: a new one with O_EXCL
 * (a name that exists as a link is refused; a regular file is what an earlier run left before it
 * recorded any chunk, and is started afresh), a resumed one with O_NOFOLLOW and checked to be a
 * regular file. `shown` names it in a refusal. Other errors are thrown as they come (ENOENT
 * when a resumed partial vanished).
 */
export async function openPartial(path: string, resume: boolean, shown: string): Promise<FileHandle> {
  if (resume) {
    let handle: FileHandle;
    try {
      handle = await open(path, RESUMED_PARTIAL);
    } catch (error) {
      if (errnoCode(error) === 'ELOOP') throw pathRefused(shown, 'link', path);
      throw error;
    }
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw pathRefused(shown, 'not-a-file', path);
    }
    return handle;
  }
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await open(path, NEW_PARTIAL, 0o666);
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST' || attempt > 0) throw error;
      const info = await lstat(path).catch(() => undefined);
      if (info?.isSymbolicLink()) throw pathRefused(shown, 'link', path);
      if (info !== undefined && !info.isFile()) throw pathRefused(shown, 'not-a-file', path);
      await unlink(path).catch((cause: unknown) => {
        if (errnoCode(cause) !== 'ENOENT') throw cause;
      });
    }
  }
}

/**
 * Moves the verified partial to its final name; never replaces a file unless told to. `target`
 * is in a folder checked by outputFolder; link() and rename() act on the names themselves, so a
 * link at the target is replaced (with --overwrite) or counts as taken, never written through.
 */
export async function placeFile(partial: string, target: string, overwrite: boolean, shown = target): Promise<string> {
  if (overwrite) {
    const existing = await lstat(target).catch(() => undefined);
    if (existing?.isDirectory()) throw pathRefused(shown, 'not-a-file', target);
    await rename(partial, target);
    return target;
  }
  for (;;) {
    const candidate = await freeName(target);
    try {
      // link() fails if the name was taken meanwhile: no window in which a file is replaced.
      await link(partial, candidate);
      await unlink(partial);
      return candidate;
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'EEXIST') continue;
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EXDEV' || code === 'EMLINK') {
        // File systems without hard links (FAT, some SMB shares): check-then-rename.
        await rename(partial, candidate);
        return candidate;
      }
      throw localWriteError(error, candidate);
    }
  }
}

/** A failed local write as a DmpError: DISK_FULL for ENOSPC, IO otherwise. */
export function localWriteError(error: unknown, path: string): DmpError {
  const code = errnoCode(error);
  if (code === 'ENOSPC') return new DmpError('DISK_FULL', `no space left to write ${path}`, { cause: error });
  return new DmpError('IO', `cannot write ${path}: ${code ?? (error as Error).message}`, { cause: error });
}

/** Makes a rename durable: on Linux a folder's entries reach the disk only when it is fsynced. */
export async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r').catch(() => undefined);
  await handle?.sync().catch(() => {});
  await handle?.close();
}
