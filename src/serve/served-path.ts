/**
 * Paths in a served folder. A path comes from a client and names something that must already be
 * inside the folder, so nothing is cleaned here: a path that is not plainly a relative path of
 * visible names is refused, and the walk to it never follows a link. What is served is only ever
 * a regular file or a folder reached through real folders; links (wherever they lead), FIFOs,
 * devices, sockets, hidden names and partial files are neither listed nor served.
 */
import { constants, type Stats } from 'node:fs';
import { type FileHandle, lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DmpError, errnoCode } from '../errors.js';
import { MAX_PATH_LENGTH } from './control.js';

/** A file system allows 255 bytes in one name. */
const MAX_COMPONENT_BYTES = 255;
/** Characters no served name has: controls, and the separators of other systems. */
const FORBIDDEN = /[\p{Cc}\\]/u;
/** The receiver's partial files (`.name.tid.dftp-part`), hidden anyway; and nothing like them. */
const PARTIAL = /\.dftp-part$/;

/** Why a path is not served (`data.reason` of the error). */
export type PathProblem = 'bad-path' | 'not-found' | 'not-served';

function problem(reason: PathProblem, message: string): DmpError {
  return new DmpError(reason === 'not-found' ? 'NOT_FOUND' : 'DENIED', message, { data: { reason } });
}

/** A hidden name (`.profile`), or a partial file: never listed, served or written by a client. */
export function isHiddenName(name: string): boolean {
  return name.startsWith('.') || PARTIAL.test(name);
}

/**
 * The components of a relative path given by a client: '' (the folder itself, when `allowRoot`)
 * or names separated by single '/'. Refused (DENIED, reason 'bad-path'): an absolute path, '.'
 * or '..', empty components, controls or '\', a component over 255 bytes, a hidden name.
 */
export function parseServedPath(raw: string, options: { allowRoot?: boolean } = {}): string[] {
  const shown = raw.length > 80 ? `${raw.slice(0, 80)}...` : raw;
  if (raw === '' || raw === '/') {
    if (options.allowRoot) return [];
    throw problem('bad-path', 'give the name of a file');
  }
  if (raw.length > MAX_PATH_LENGTH) throw problem('bad-path', 'the path is too long');
  if (raw.startsWith('/')) throw problem('bad-path', 'give a path inside the served folder, not an absolute one');
  const parts = raw.replace(/\/$/, '').split('/');
  for (const part of parts) {
    if (part === '' || part === '.' || part === '..') throw problem('bad-path', `${shown}: not a plain relative path`);
    if (FORBIDDEN.test(part)) throw problem('bad-path', 'the path holds control characters or a backslash');
    if (Buffer.byteLength(part, 'utf8') > MAX_COMPONENT_BYTES)
      throw problem('bad-path', 'a name in the path is too long');
    if (isHiddenName(part)) throw problem('not-served', `${shown}: hidden names are not served`);
  }
  return parts;
}

export type { Stats } from 'node:fs';

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'EACCES' || code === 'EPERM')
      throw problem('not-served', 'it cannot be read here (permission denied)');
    throw error;
  }
}

/** What a path names in the served folder, reached without following a link. */
export interface Resolved {
  /** The absolute path. */
  path: string;
  /** The path relative to the folder, '/'-separated ('' for the folder itself). */
  rel: string;
  info: Stats;
}

/**
 * Walks from `root` (the served folder's real path) to `parts`, looking at every component with
 * lstat: a link anywhere is refused ('not-served'), a missing component is 'not-found'. The end
 * must be what `want` says: a regular file ('not-served' for a FIFO, a device, a socket), or a
 * folder.
 */
export async function resolveServed(
  root: string,
  parts: readonly string[],
  want: 'file' | 'folder',
): Promise<Resolved> {
  const rel = parts.join('/');
  const shown = rel === '' ? 'the served folder' : rel;
  let path = root;
  let info = await lstatOrUndefined(root);
  if (!info?.isDirectory()) throw problem('not-found', 'the served folder is gone');
  for (const [index, part] of parts.entries()) {
    path = join(path, part);
    info = await lstatOrUndefined(path);
    if (info === undefined) throw problem('not-found', `no ${shown} here`);
    if (info.isSymbolicLink()) throw problem('not-served', `${shown} is a link: links are not served`);
    if (index < parts.length - 1 && !info.isDirectory()) throw problem('not-found', `no ${shown} here`);
  }
  if (want === 'folder' && !info.isDirectory()) {
    throw info.isFile()
      ? problem('not-served', `${shown} is a file, not a folder`)
      : problem('not-served', `${shown} is not served`);
  }
  if (want === 'file' && !info.isFile()) {
    throw info.isDirectory()
      ? problem('not-served', `${shown} is a folder: give the files in it`)
      : problem('not-served', `${shown} is not a regular file: not served`);
  }
  return { path, rel, info };
}

/**
 * Like resolveServed for a file that may not exist yet (a put): the folders on the way must be
 * real folders where they exist; returns what is at the end, or undefined.
 */
export async function lookInto(root: string, parts: readonly string[]): Promise<Stats | undefined> {
  let path = root;
  for (const [index, part] of parts.entries()) {
    path = join(path, part);
    const info = await lstatOrUndefined(path);
    if (info === undefined) return undefined;
    if (info.isSymbolicLink())
      throw problem('not-served', `${parts.slice(0, index + 1).join('/')} is a link: not written through`);
    if (index < parts.length - 1 && !info.isDirectory()) {
      throw problem('not-served', `${parts.slice(0, index + 1).join('/')} is in the way: it is not a folder`);
    }
    if (index === parts.length - 1) return info;
  }
  return undefined;
}

/** One thing in a listed folder. */
export interface FolderEntry {
  name: string;
  type: 'file' | 'folder';
  size: number;
  mtimeMs: number;
  path: string;
  info: Stats;
}

/**
 * The visible regular files and folders in `folder`, sorted by name, at most `limit` (then
 * `truncated`). Links, special files and hidden names are left out; an entry that vanishes while
 * it is looked at is simply not there (a race, not a failure).
 */
export async function listServedFolder(
  folder: string,
  limit: number,
): Promise<{ entries: FolderEntry[]; truncated: boolean }> {
  const dirents = await readdir(folder, { withFileTypes: true }).catch((error: unknown) => {
    const code = errnoCode(error);
    if (code === 'EACCES' || code === 'EPERM')
      throw problem('not-served', 'the folder cannot be read here (permission denied)');
    if (code === 'ENOENT' || code === 'ENOTDIR') throw problem('not-found', 'the folder is gone');
    throw error;
  });
  const names = dirents
    .filter((dirent) => !isHiddenName(dirent.name) && (dirent.isFile() || dirent.isDirectory() || isUnknown(dirent)))
    .map((dirent) => dirent.name)
    .sort();
  const entries: FolderEntry[] = [];
  let truncated = false;
  for (const name of names) {
    if (entries.length >= limit) {
      truncated = true;
      break;
    }
    const path = join(folder, name);
    const info = await lstatOrUndefined(path);
    if (!info || !(info.isFile() || info.isDirectory())) continue;
    entries.push({
      name,
      type: info.isFile() ? 'file' : 'folder',
      size: info.isFile() ? info.size : 0,
      mtimeMs: info.mtimeMs,
      path,
      info,
    });
  }
  return { entries, truncated };
}

/** Some file systems do not say the type in a listing: lstat decides then. */
function isUnknown(dirent: {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
  isBlockDevice(): boolean;
  isCharacterDevice(): boolean;
}): boolean {
  return !(
    dirent.isFile() ||
    dirent.isDirectory() ||
    dirent.isSymbolicLink() ||
    dirent.isFIFO() ||
    dirent.isSocket() ||
    dirent.isBlockDevice() ||
    dirent.isCharacterDevice()
  );
}

/**
 * Opens a served file for reading: never through a link, never waiting (a FIFO swapped in would
 * block a thread), and only when it is still the regular file that was looked at.
 */
export async function openServedFile(path: string, expected: Stats): Promise<FileHandle> {
  const flags = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
  const handle = await open(path, flags).catch((error: unknown) => {
    throw errnoCode(error) === 'ENOENT'
      ? problem('not-found', 'the file is gone')
      : problem('not-served', 'the file cannot be opened');
  });
  const info = await handle.stat();
  if (!info.isFile() || info.ino !== expected.ino || info.dev !== expected.dev) {
    await handle.close();
    throw problem('not-served', 'the file changed while it was looked at');
  }
  return handle;
}
