/**
 * A free name for a local file, as file managers choose one: used by the receiver (never replace
 * an existing file) and by the daemon's spool (sent/, failed/).
 */
import { lstat } from 'node:fs/promises';
import { extname } from 'node:path';
import { errnoCode } from '../errors.js';

/** `name.ext`, `name (1).ext`, `name (2).ext`, ... : the first that does not exist. */
export async function freeName(path: string, taken: (candidate: string) => boolean = () => false): Promise<string> {
  const ext = extname(path);
  const stem = path.slice(0, path.length - ext.length);
  for (let n = 0; ; n += 1) {
    const candidate = n === 0 ? path : `${stem} (${n})${ext}`;
    if (taken(candidate)) continue;
    try {
      await lstat(candidate);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return candidate;
      throw error;
    }
  }
}
