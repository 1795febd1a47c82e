/**
 * Files and folders for tests: temp folders that are removed even after a test made them
 * read-only, random files written without holding them in memory, streamed SHA-256, and a sampler
 * that measures a relay folder while a transfer runs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { sleep } from './wait.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** A fresh temporary folder; `removeTree` deletes it. */
export async function makeTempDir(prefix = 'dmp-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Makes every folder under `path` writable again (tests chmod relays read-only), then deletes it. */
export async function removeTree(path: string): Promise<void> {
  const restore = async (dir: string): Promise<void> => {
    await chmod(dir, 0o755).catch(() => {});
    const entries = await readdir(dir).catch(() => [] as string[]);
    for (const name of entries) {
      const child = join(dir, name);
      const info = await lstat(child).catch(() => undefined);
      if (info?.isDirectory()) await restore(child);
    }
  };
  await restore(path);
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

/** Writes `size` random bytes to `path`, 1 MiB at a time. */
export async function writeRandomFile(path: string, size: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    for (let done = 0; done < size; ) {
      const length = Math.min(MiB, size - done);
      await handle.write(randomBytes(length), 0, length, done);
      done += length;
    }
  } finally {
    await handle.close();
  }
}

/** SHA-256 of a file, streamed (never the whole file in memory). */
export function fileSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path, { highWaterMark: 4 * MiB })
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** Every regular file under `dir`, by '/'-separated relative path, hidden files included. */
export async function listTree(dir: string): Promise<string[]> {
  const found: string[] = [];
  const visit = async (path: string) => {
    const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) await visit(full);
      else found.push(relative(dir, full).split(sep).join('/'));
    }
  };
  await visit(dir);
  return found.sort();
}

/** Total size of the files under `dir`; files that vanish while it looks count 0. */
export async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  const visit = async (path: string): Promise<void> => {
    const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
    await Promise.all(
      entries.map(async (entry) => {
        const full = join(path, entry.name);
        if (entry.isDirectory()) return visit(full);
        const info = await lstat(full).catch(() => undefined);
        if (info?.isFile()) total += info.size;
      }),
    );
  };
  await visit(dir);
  return total;
}

export interface SampleSummary {
  samples: number;
  /** Samples that saw at least one byte. */
  positive: number;
  peak: number;
}

/** Measures the bytes under `dir` every `everyMs` until stopped. */
export function sampleTree(dir: string, everyMs: number): { stop(): Promise<SampleSummary> } {
  const summary: SampleSummary = { samples: 0, positive: 0, peak: 0 };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const bytes = await treeBytes(dir);
      summary.samples += 1;
      if (bytes > 0) summary.positive += 1;
      summary.peak = Math.max(summary.peak, bytes);
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return summary;
    },
  };
}
