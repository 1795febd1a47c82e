/**
 * Local state lives in the peer's home (DMP_HOME), never in the relay. Everything here is
 * written atomically (temp + fsync + rename) so a crash leaves the old or the new version.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DmpError, errnoCode } from '../errors.js';

export async function readJsonFile<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw new DmpError('IO', `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new DmpError('IO', `state file ${path} is not valid JSON`, { cause: error });
  }
}

/** `mode` applies to a new file: 0o600 for anything holding a key. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o666): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'w', mode);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    const code = errnoCode(error);
    if (code === 'ENOSPC') throw new DmpError('DISK_FULL', `no space left to write ${path}`, { cause: error });
    throw new DmpError('IO', `cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
}

export async function writeJsonFile(path: string, value: unknown, mode?: number): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value)}\n`, mode);
}
