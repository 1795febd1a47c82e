/**
 * The outbox spool: `DMP_HOME/outbox/<peer>/`. Files may be dropped in by any means (cp, an
 * editor, a download), so a file is taken only once it looks complete: not a dot- or temp name,
 * and unchanged (size and mtime) for `stableMs`.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, rename, stat, unlink, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DmpError, errnoCode } from '../errors.js';
import { freeName } from '../local/free-name.js';
import { isPeerId, type PeerId } from '../util/peer-id.js';

export interface SpoolFile {
  peer: PeerId;
  /** Absolute path. */
  path: string;
  /** Path relative to the peer's spool folder, '/'-separated: the name the receiver gets. */
  name: string;
  size: number;
  mtimeMs: number;
}

/** Names a writer is still busy with, by the conventions of editors, browsers and sync tools. */
export function isTemporaryName(name: string): boolean {
  return (
    name.startsWith('.') ||
    name.startsWith('~') ||
    /\.(tmp|part|partial|crdownload|download|swp)$/i.test(name) ||
    name.endsWith('~')
  );
}

export class Spool {
  private readonly seen = new Map<string, { size: number; mtimeMs: number; since: number }>();

  constructor(
    readonly root: string,
    private readonly stableMs: number,
    private readonly now: () => number,
  ) {}

  folder(peer: PeerId): string {
    return join(this.root, peer);
  }

  /** Every file in the spool, ready or not, for status. */
  async list(): Promise<SpoolFile[]> {
    const files: SpoolFile[] = [];
    const peers = (await readdir(this.root).catch(() => [] as string[])).filter(isPeerId).sort();
    for (const peer of peers) await this.walk(peer as PeerId, this.folder(peer as PeerId), '', files);
    return files;
  }

  /** The files that have stopped changing, oldest first (then by name), per peer. */
  async ready(): Promise<SpoolFile[]> {
    const now = this.now();
    const ready: SpoolFile[] = [];
    const present = new Set<string>();
    for (const file of await this.list()) {
      present.add(file.path);
      const previous = this.seen.get(file.path);
      if (!previous || previous.size !== file.size || previous.mtimeMs !== file.mtimeMs) {
        this.seen.set(file.path, { size: file.size, mtimeMs: file.mtimeMs, since: now });
        continue;
      }
      if (now - previous.since >= this.stableMs) ready.push(file);
    }
    for (const path of this.seen.keys()) if (!present.has(path)) this.seen.delete(path);
    return ready.sort((a, b) => a.mtimeMs - b.mtimeMs || a.name.localeCompare(b.name));
  }

  forget(path: string): void {
    this.seen.delete(path);
  }

  private async walk(peer: PeerId, dir: string, prefix: string, into: SpoolFile[]): Promise<void> {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (isTemporaryName(entry.name)) continue;
      const path = join(dir, entry.name);
      const name = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await this.walk(peer, path, name, into);
      else if (entry.isFile()) {
        const info = await stat(path).catch(() => undefined);
        if (info) into.push({ peer, path, name, size: info.size, mtimeMs: info.mtimeMs });
      }
    }
  }
}

/**
 * Hands files to the daemon: copies each into the peer's spool folder under a dot-name (which
 * the daemon skips), then renames it into place, so the daemon never sees half a copy.
 */
export async function queueFiles(
  spoolRoot: string,
  peer: PeerId,
  sources: readonly { path: string; name: string }[],
): Promise<string[]> {
  const queued: string[] = [];
  for (const source of sources) {
    const target = await freeName(join(spoolRoot, peer, ...source.name.split('/')));
    await mkdir(dirname(target), { recursive: true });
    const temp = join(dirname(target), `.${basename(target)}.${randomBytes(4).toString('hex')}.queue`);
    try {
      await copyFile(source.path, temp);
      const info = await stat(source.path);
      await utimes(temp, info.atime, info.mtime);
      await rename(temp, target);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw new DmpError('IO', `cannot queue ${source.path}: ${errnoCode(error) ?? (error as Error).message}`, {
        cause: error,
      });
    }
    queued.push(target);
  }
  return queued;
}
