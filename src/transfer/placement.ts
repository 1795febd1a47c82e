/**
 * The last step of receiving a file: the verified partial takes its final name, never replacing
 * an existing file unless the user said so, and the folder entry is made durable.
 */
import { link, open, rename, unlink } from 'node:fs/promises';
import { DmpError, errnoCode } from '../errors.js';
import { freeName } from '../local/free-name.js';

/** Moves the verified partial to its final name; never replaces a file unless told to. */
export async function placeFile(partial: string, target: string, overwrite: boolean): Promise<string> {
  if (overwrite) {
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
