/**
 * Local files the dftp commands handle themselves: standard input saved to a file before it is
 * sent, a received file written to standard output, and the check that a folder can take files.
 *
 * Standard input is saved under DMP_HOME/tmp/stdin/ with a name made from its SHA-256, and kept
 * until it was sent: the same input given again after an interruption finds the same file (same
 * path, size and mtime), so the send resumes like any other.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DmpError } from '../index.js';

/** Where standard input waits to be sent, under DMP_HOME. */
export function stdinFolder(home: string): string {
  return join(home, 'tmp', 'stdin');
}

/** Where a file for standard output is received first, under DMP_HOME. */
export function stdoutFolder(home: string): string {
  return join(home, 'tmp', 'stdout');
}

/** Saves all of `input` into DMP_HOME/tmp/stdin/ and returns the file's path. */
export async function saveStdin(home: string, input: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const folder = stdinFolder(home);
  await mkdir(folder, { recursive: true });
  const temp = join(folder, `.saving-${process.pid}-${randomBytes(4).toString('hex')}`);
  const hash = createHash('sha256');
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(input, hashing, createWriteStream(temp, { flags: 'wx' }));
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw new DmpError('IO', `cannot save standard input in ${folder}: ${(error as Error).message}`, { cause: error });
  }
  const saved = join(folder, `${hash.digest('hex').slice(0, 32)}.stdin`);
  if (await stat(saved).catch(() => undefined)) {
    // The same input was saved by an interrupted run: keep that copy (and its mtime) to resume.
    await unlink(temp);
  } else {
    await rename(temp, saved);
  }
  return saved;
}

/** Copies a file to standard output; a reader that went away (EPIPE) is not an error. */
export async function copyToStdout(path: string): Promise<void> {
  try {
    await pipeline(createReadStream(path), process.stdout, { end: false });
  } catch (error) {
    if ((error as { code?: string }).code !== 'EPIPE') throw error;
  }
}

/**
 * Fails with one line unless files can be created in `folder` (made when missing): a receiver
 * that cannot write would otherwise keep the sender waiting for ever.
 */
export async function checkWritableFolder(folder: string): Promise<void> {
  const probe = join(folder, `.dftp-probe-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(folder, { recursive: true });
    const handle = await open(probe, 'wx');
    await handle.close();
    await unlink(probe);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why =
      code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EROFS'
          ? 'read-only file system'
          : code === 'ENOSPC'
            ? 'no space left'
            : (code ?? (error as Error).message);
    throw new DmpError('IO', `cannot write into ${folder}: ${why}`, { cause: error });
  }
}
