/**
 * What `dftp send a.txt dir/` sends: each file under its base name, each directory recursively
 * with its relative layout ("dir/sub/file"). Symbolic links and special files are skipped, not
 * followed: a link could lead outside what the user meant to send.
 */
import { constants } from 'node:fs';
import { access, lstat, readdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { DmpError, errnoCode } from '../errors.js';

export interface SourceFile {
  path: string;
  /** Relative name sent in the offer, '/'-separated. */
  name: string;
}

export interface Skipped {
  path: string;
  reason: string;
}

export async function expandSources(paths: readonly string[]): Promise<{ files: SourceFile[]; skipped: Skipped[] }> {
  const files: SourceFile[] = [];
  const skipped: Skipped[] = [];
  const visit = async (path: string, name: string, top: boolean): Promise<void> => {
    let info: Awaited<ReturnType<typeof lstat>>;
    try {
      info = await lstat(path);
    } catch (error) {
      if (top)
        throw new DmpError(
          'USAGE',
          `cannot send ${path}: ${errnoCode(error) === 'ENOENT' ? 'no such file' : errnoCode(error)}`,
        );
      skipped.push({ path, reason: reasonOf(error) });
      return;
    }
    if (info.isFile()) {
      // Inside a directory, a file that cannot be read is left out and named, not a reason to
      // send nothing at all; a file named on the command line fails when it is opened.
      if (!top) {
        const denied = await access(path, constants.R_OK).then(
          () => undefined,
          (error: unknown) => error,
        );
        if (denied !== undefined) {
          skipped.push({ path, reason: reasonOf(denied) });
          return;
        }
      }
      files.push({ path, name });
    } else if (info.isDirectory()) {
      let entries: string[];
      try {
        entries = (await readdir(path)).sort();
      } catch (error) {
        if (top) throw new DmpError('IO', `cannot read ${path}: ${reasonOf(error)}`, { cause: error });
        skipped.push({ path, reason: reasonOf(error) });
        return;
      }
      for (const entry of entries) await visit(join(path, entry), `${name}/${entry}`, false);
    } else if (top && info.isSymbolicLink()) {
      // A link named on the command line is what the user means: send its target.
      const target = resolve(path);
      files.push({ path: target, name });
    } else {
      skipped.push({ path, reason: info.isSymbolicLink() ? 'symbolic link' : 'not a regular file' });
    }
  };
  for (const path of paths) await visit(path, basename(resolve(path)), true);
  return { files, skipped };
}

/** An errno in words, for the line that names a skipped file. */
function reasonOf(error: unknown): string {
  const code = errnoCode(error);
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOENT') return 'gone before it could be read';
  return code ?? (error instanceof Error ? error.message : String(error));
}
