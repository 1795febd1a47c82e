/**
 * The SHA-256 of every file a server has listed, kept in DMP_HOME (never in the served folder)
 * and keyed by size and modification time, as rsync's quick check: a file whose size and mtime
 * are unchanged is not read again, so listing a large folder costs a stat per file once its
 * checksums are known. A file that changed is hashed again when it is next listed.
 */
import { createHash } from 'node:crypto';
import { readJsonFile, writeJsonFile } from '../local/files.js';
import { openServedFile, type Stats } from './served-path.js';

/** Read buffer for hashing: large enough to keep the disk busy, small enough to keep memory flat. */
const READ_BYTES = 1024 * 1024;

interface Stored {
  v: 1;
  /** By path relative to the served folder: [size, mtimeMs, sha256]. */
  files: Record<string, [number, number, string]>;
}

export class ChecksumIndex {
  private files = new Map<string, [number, number, string]>();
  private dirty = false;

  private constructor(private readonly path: string) {}

  /** The index stored at `path` (a new one when there is none, or it is unreadable). */
  static async load(path: string): Promise<ChecksumIndex> {
    const index = new ChecksumIndex(path);
    const stored = await readJsonFile<Stored>(path).catch(() => undefined);
    if (stored?.v === 1 && typeof stored.files === 'object' && stored.files !== null) {
      for (const [rel, value] of Object.entries(stored.files)) {
        if (Array.isArray(value) && value.length === 3 && typeof value[2] === 'string') index.files.set(rel, value);
      }
    }
    return index;
  }

  /** The checksum of `rel` when the index holds one for this size and mtime. */
  known(rel: string, info: { size: number; mtimeMs: number }): string | undefined {
    const entry = this.files.get(rel);
    return entry && entry[0] === info.size && entry[1] === info.mtimeMs ? entry[2] : undefined;
  }

  /**
   * The checksum of the regular file at `path` (`rel` in the folder), as `info` saw it: from the
   * index, or read now (never through a link, never from anything but that same file).
   */
  async digest(rel: string, path: string, info: Stats): Promise<string> {
    const known = this.known(rel, info);
    if (known !== undefined) return known;
    const handle = await openServedFile(path, info);
    try {
      const hash = createHash('sha256');
      const buffer = Buffer.allocUnsafe(READ_BYTES);
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
      }
      const after = await handle.stat();
      const sha256 = hash.digest('hex');
      // Changed while it was read: the checksum is of no version that lasted. Not remembered.
      if (after.size === info.size && after.mtimeMs === info.mtimeMs) this.record(rel, info, sha256);
      return sha256;
    } finally {
      await handle.close();
    }
  }

  /** Records a checksum known otherwise (a file just received and verified). */
  record(rel: string, info: { size: number; mtimeMs: number }, sha256: string): void {
    this.files.set(rel, [info.size, info.mtimeMs, sha256]);
    this.dirty = true;
  }

  /** Forgets `rel`, and everything under it when it is a folder. */
  forget(rel: string): void {
    for (const key of [...this.files.keys()]) {
      if (key === rel || key.startsWith(`${rel}/`)) {
        this.files.delete(key);
        this.dirty = true;
      }
    }
  }

  /** Forgets the files directly in folder `folderRel` that are not in `present` (they are gone). */
  prune(folderRel: string, present: ReadonlySet<string>): void {
    const prefix = folderRel === '' ? '' : `${folderRel}/`;
    for (const key of [...this.files.keys()]) {
      if (!key.startsWith(prefix)) continue;
      const rest = key.slice(prefix.length);
      if (rest.includes('/') || present.has(rest)) continue;
      this.files.delete(key);
      this.dirty = true;
    }
  }

  /** Writes the index when it changed. */
  async save(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const stored: Stored = { v: 1, files: Object.fromEntries(this.files) };
    await writeJsonFile(this.path, stored);
  }
}
