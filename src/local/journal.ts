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

/** What `batches` reads at a time. */
const BATCH_BYTES = 1024 * 1024;

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

  /**
   * Reads records from byte offset `from`: all of them, or with `maxBytes`, the whole lines in
   * about that many bytes (at least one line when there is one, however long), so that a reader
   * keeping a cursor goes through a journal of any size in steps of bounded memory.
   */
  async read(from = 0, options: { maxBytes?: number } = {}): Promise<JournalRead<T>> {
    let buffer: Buffer;
    try {
      const handle = await open(this.path, 'r');
      try {
        const { size } = await handle.stat();
        const available = Math.max(0, size - from);
        let length = Math.min(available, options.maxBytes ?? available);
        buffer = Buffer.alloc(length);
        if (length > 0) await handle.read(buffer, 0, length, from);
        // One line longer than maxBytes: read on until it ends (or the file does).
        while (length < available && buffer.indexOf(0x0a) < 0) {
          const more = Math.min(available - length, Math.max(length, 64 * 1024));
          const grown = Buffer.alloc(length + more);
          buffer.copy(grown);
          await handle.read(grown, length, more, from + length);
          buffer = grown;
          length += more;
        }
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

  /**
   * Every record from `from` on, in batches of about `maxBytes` (1 MiB by default): memory stays
   * bounded however long the journal is.
   */
  async *batches(from = 0, maxBytes = BATCH_BYTES): AsyncGenerator<T[]> {
    let offset = from;
    for (;;) {
      const { records, size } = await this.read(offset, { maxBytes });
      if (size <= offset) return;
      offset = size;
      if (records.length > 0) yield records;
    }
  }

  /** The last complete record, read backwards from the end (a torn last line is skipped). */
  async last(): Promise<T | undefined> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(this.path, 'r');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw new DmpError('IO', `cannot read ${this.path}: ${(error as Error).message}`, { cause: error });
    }
    try {
      let position = (await handle.stat()).size;
      // The bytes from `position` to the end, read in growing windows until one holds a whole
      // line that parses: usually the first 4 KiB.
      let tail = Buffer.alloc(0);
      let window = 4096;
      while (position > 0) {
        const length = Math.min(window, position);
        position -= length;
        const chunk = Buffer.alloc(length);
        await handle.read(chunk, 0, length, position);
        tail = Buffer.concat([chunk, tail]);
        const record = lastRecord<T>(tail, position === 0);
        if (record !== undefined) return record;
        window = Math.min(window * 2, 1024 * 1024);
      }
      return undefined;
    } finally {
      await handle.close();
    }
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

/**
 * The last whole line of `tail` that parses. Only lines ending in a newline count (a torn last
 * line does not), and the first line only when `tail` starts at the beginning of the file.
 */
function lastRecord<T>(tail: Buffer, fromStart: boolean): T | undefined {
  let end = tail.lastIndexOf(0x0a);
  while (end >= 0) {
    const start = end === 0 ? -1 : tail.lastIndexOf(0x0a, end - 1);
    if (start < 0 && !fromStart) return undefined;
    const line = tail.subarray(start + 1, end).toString('utf8');
    if (line.trim() !== '') {
      try {
        return JSON.parse(line) as T;
      } catch {
        // A damaged line: the one before may do.
      }
    }
    end = start;
  }
  return undefined;
}
