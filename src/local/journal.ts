/**
 * An append-only file of JSON lines, fsynced per batch. Used for the sender's log of
 * unacknowledged messages and the receiver's inbox. A torn last line (crash mid-append) is
 * ignored on reading and cut off before the next append.
 */
import { mkdir, open, stat, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DmpError, errnoCode } from '../errors.js';

export interface JournalRead<T> {
  readonly records: T[];
  /** Byte offset just past each record, so a reader can keep a cursor. */
  readonly ends: number[];
  /** Bytes of complete lines. */
  readonly size: number;
}

export class Journal<T> {
  constructor(readonly path: string) {}

  async append(records: readonly T[]): Promise<void> {
    if (records.length === 0) return;
    await mkdir(dirname(this.path), { recursive: true });
    await this.repairTail();
    const text = records.map((record) => `${JSON.stringify(record)}\n`).join('');
    try {
      const handle = await open(this.path, 'a');
      try {
        await handle.write(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (error) {
      if (errnoCode(error) === 'ENOSPC') throw new DmpError('DISK_FULL', `no space left to write ${this.path}`);
      throw new DmpError('IO', `cannot write ${this.path}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Reads records from byte offset `from`. */
  async read(from = 0): Promise<JournalRead<T>> {
    // Only the part after `from` is read: a reader that keeps a cursor polls a growing file.
    let buffer: Buffer;
    try {
      const handle = await open(this.path, 'r');
      try {
        const { size } = await handle.stat();
        buffer = Buffer.alloc(Math.max(0, size - from));
        if (buffer.length > 0) await handle.read(buffer, 0, buffer.length, from);
      } finally {
        await handle.close();
      }
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return { records: [], ends: [], size: 0 };
      throw new DmpError('IO', `cannot read ${this.path}: ${(error as Error).message}`, { cause: error });
    }
    const records: T[] = [];
    const ends: number[] = [];
    let start = 0;
    for (;;) {
      const newline = buffer.indexOf(0x0a, start);
      if (newline < 0) break;
      const line = buffer.subarray(start, newline).toString('utf8');
      start = newline + 1;
      if (line.trim() === '') continue;
      try {
        records.push(JSON.parse(line) as T);
        ends.push(from + start);
      } catch {
        // A torn line can only be the last one; anything else is skipped rather than fatal.
      }
    }
    return { records, ends, size: from + start };
  }

  async size(): Promise<number> {
    try {
      return (await stat(this.path)).size;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return 0;
      throw error;
    }
  }

  /** Empties the journal (every record in it has been dealt with). */
  async clear(): Promise<void> {
    await truncate(this.path, 0).catch((error) => {
      if (errnoCode(error) !== 'ENOENT') throw error;
    });
  }

  /** Cuts a torn last line left by a crash, so the next record starts on a line of its own. */
  private async repairTail(): Promise<void> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.path, 'r');
    } catch {
      return;
    }
    try {
      const { size } = await handle.stat();
      if (size === 0) return;
      // Read backwards only as far as the last newline: usually one byte.
      const window = Buffer.alloc(Math.min(size, 64 * 1024));
      await handle.read(window, 0, window.length, size - window.length);
      if (window[window.length - 1] === 0x0a) return;
      const newline = window.lastIndexOf(0x0a);
      await truncate(this.path, newline < 0 ? Math.max(0, size - window.length) : size - window.length + newline + 1);
    } finally {
      await handle.close();
    }
  }
}
