/**
 * The timeline of one transfer through a sync engine, from outside: both copies of the relay
 * and the receiver's local state are polled every few ms, and the two processes' `--json`
 * events are timed as they arrive. For every chunk:
 *
 *   published      its file appears in alice's folder on copy A
 *   seen by bob    it appears on copy B (the engine renames a whole file into place)
 *   written        bob's local transfer state lists it (written and fsynced at its offset)
 *   status out     a status on copy B lists it
 *   status in      that status has reached copy A
 *   seen by alice  alice reports progress covering it (she read the status)
 *   deleted        its file is gone from copy A
 *
 * and the ends: the offer, the verdict (a `complete` status), the offer withdrawn, the exits.
 * Offers and statuses are sealed under the pair key of alice and bob (protocol version 2): the
 * probe is given it (`dmp pair-key`), as a Python reader would be.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { decryptText, type FernetKey, HomeLayout, parseKey, parsePeerId } from '../src/index.js';
import { MiB, sleep } from './common.js';

interface StatusSeen {
  at: number;
  have: Set<number>;
  state: string;
}

interface FileVersion {
  key: string;
}

/** One chunk's moments, ms on the performance clock; undefined when not seen. */
interface ChunkMoments {
  index: number;
  published?: number;
  seenByBob?: number;
  written?: number;
  statusOut?: number;
  statusIn?: number;
  seenByAlice?: number;
  deleted?: number;
}

const STAGES = [
  ['published', 'seenByBob', 'sync A->B'],
  ['seenByBob', 'written', 'write'],
  ['written', 'statusOut', 'status out'],
  ['statusOut', 'statusIn', 'sync B->A'],
  ['statusIn', 'seenByAlice', 'alice reads'],
  ['seenByAlice', 'deleted', 'delete'],
  ['published', 'deleted', 'round trip'],
] as const;

type StageName = (typeof STAGES)[number][2];

export interface WindowSummary {
  /** Chunks in this window, in the order they were published. */
  chunks: number;
  /** When its first chunk was published, s after the sender started. */
  start: number;
  /** Mean seconds per stage over the window's chunks. */
  mean: Partial<Record<StageName, number>>;
}

export interface Timeline {
  /** Which transfer: 'defaults', '--quota 256m'. */
  label: string;
  size: number;
  blockSize: number;
  chunks: number;
  /** Most chunk files alice held in copy A at once: the window as it happened. */
  window: number;
  /** Seconds after the sender started; undefined when not seen. */
  at: Record<string, number | undefined>;
  /** Median seconds per stage over all chunks. */
  median: Partial<Record<StageName, number>>;
  windows: WindowSummary[];
  model: {
    quota: number;
    roundTrip: number;
    /** quota ÷ round trip, bytes/s. */
    rate: number;
    /** size ÷ rate, s: what the data should take at that rate. */
    seconds: number;
    /** First chunk published to last chunk written, s: what the data took. */
    measured: number;
  };
}

export interface ProbeOptions {
  copyA: string;
  copyB: string;
  bobHome: string;
  /** The pair key of alice and bob (`dmp pair-key bob` as alice). */
  pairKey: string;
  pollMs: number;
  /** The sender's quota, bytes: the window of the model. */
  quota: number;
  /** Which transfer, for the table: 'defaults', '--quota 256m'. */
  label: string;
}

const CHUNK = /^chunk-([0-9a-f]+)-(\d{8})\.dfc$/;
const OFFER = /^offer-([0-9a-f]+)\.dmp$/;
const STATUS = /^status-([0-9a-f]+)\.dmp$/;

function haveSet(ranges: unknown): Set<number> {
  const have = new Set<number>();
  if (!Array.isArray(ranges)) return have;
  for (const range of ranges) {
    if (!Array.isArray(range)) continue;
    const [start, end] = range as [number, number];
    for (let i = start; i < end; i += 1) have.add(i);
  }
  return have;
}

export class TimelineProbe {
  private readonly key: FernetKey;
  private readonly aliceOut: string;
  private readonly bobSeesAlice: string;
  private readonly bobOut: string;
  private readonly aliceSeesBob: string;
  private readonly bobState: string;
  private started = 0;
  private polling = false;
  private loop: Promise<void> | undefined;
  private readonly chunks = new Map<number, ChunkMoments>();
  private readonly statusOut: StatusSeen[] = [];
  private readonly statusIn: StatusSeen[] = [];
  private readonly written: StatusSeen[] = [];
  private readonly versions = new Map<string, FileVersion>();
  private readonly aliceProgress: { at: number; bytes: number }[] = [];
  private readonly moments: Record<string, number | undefined> = {};
  private blockSize = 0;
  private maxInFlight = 0;

  constructor(private readonly options: ProbeOptions) {
    this.key = parseKey(options.pairKey);
    this.aliceOut = join(options.copyA, 'alice', 'bob');
    this.bobSeesAlice = join(options.copyB, 'alice', 'bob');
    this.bobOut = join(options.copyB, 'bob', 'alice');
    this.aliceSeesBob = join(options.copyA, 'bob', 'alice');
    this.bobState = new HomeLayout(options.bobHome, parsePeerId('bob')).transfers('in');
  }

  start(at: number): void {
    this.started = at;
    this.polling = true;
    this.loop = (async () => {
      while (this.polling) {
        await this.poll();
        await sleep(this.options.pollMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.polling = false;
    await this.loop;
  }

  ended(senderExit: number, receiverExit: number): void {
    this.moments.aliceExit = senderExit;
    this.moments.bobExit = receiverExit;
  }

  senderEvent(event: { event: string; bytes?: number }, at: number): void {
    if (event.event === 'progress') this.aliceProgress.push({ at, bytes: event.bytes ?? 0 });
    if (event.event === 'done') this.moments.aliceDone = at;
  }

  receiverEvent(event: { event: string }, at: number): void {
    if (event.event === 'offer') this.moments.bobOffer ??= at;
    if (event.event === 'done') this.moments.bobDone = at;
  }

  private chunk(index: number): ChunkMoments {
    let moments = this.chunks.get(index);
    if (!moments) {
      moments = { index };
      this.chunks.set(index, moments);
    }
    return moments;
  }

  /**
   * The file's content when it changed since the last look, else undefined. Compared by content:
   * a file replaced by rename can come back with the same inode, size and mtime.
   */
  private async changed(path: string): Promise<Buffer | undefined> {
    const data = await readFile(path).catch(() => undefined);
    if (!data) return undefined;
    const key = data.toString('base64');
    if (this.versions.get(path)?.key === key) return undefined;
    this.versions.set(path, { key });
    return data;
  }

  private async readStatus(path: string, into: StatusSeen[], at: number): Promise<void> {
    const data = await this.changed(path);
    if (!data) return;
    try {
      const envelope = JSON.parse(decryptText(this.key, data).toString('utf8')) as {
        body?: { have?: unknown; state?: string };
      };
      into.push({ at, have: haveSet(envelope.body?.have), state: envelope.body?.state ?? '' });
    } catch {
      // Not a status we can read (never expected): the bench reports what it did see.
    }
  }

  /**
   * One look at everything, in the order things happen to a chunk (published, seen by bob,
   * written, status out, status in, deleted), each stamped when read: a cause read later than
   * its effect in the same look would make a stage negative.
   */
  private async poll(): Promise<void> {
    let now = performance.now();
    const inA = await readdir(this.aliceOut).catch(() => [] as string[]);
    for (const name of inA) {
      const chunk = CHUNK.exec(name);
      if (chunk) this.chunk(Number(chunk[2])).published ??= now;
      else if (OFFER.test(name)) {
        this.moments.offerPublished ??= now;
        if (this.blockSize === 0) await this.readOffer(join(this.aliceOut, name));
      }
    }

    now = performance.now();
    const inB = await readdir(this.bobSeesAlice).catch(() => [] as string[]);
    for (const name of inB) {
      const chunk = CHUNK.exec(name);
      if (chunk) this.chunk(Number(chunk[2])).seenByBob ??= now;
      else if (OFFER.test(name)) this.moments.offerSeenByBob ??= now;
    }
    if (this.moments.offerSeenByBob !== undefined && !inB.some((name) => OFFER.test(name)))
      this.moments.withdrawalSeenByBob ??= now;

    for (const name of await readdir(this.bobState).catch(() => [] as string[])) {
      if (!name.endsWith('.json')) continue;
      now = performance.now();
      const data = await this.changed(join(this.bobState, name));
      if (!data) continue;
      try {
        const state = JSON.parse(data.toString('utf8')) as { have?: unknown; state?: string };
        this.written.push({ at: now, have: haveSet(state.have), state: state.state ?? '' });
      } catch {
        // Written by temp + rename, so never torn; skip anything else.
      }
    }

    for (const [dir, into] of [
      [this.bobOut, this.statusOut],
      [this.aliceSeesBob, this.statusIn],
    ] as const) {
      now = performance.now();
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (STATUS.test(name)) await this.readStatus(join(dir, name), into, now);
      }
    }

    // Deletions last, from a second listing: they follow everything above.
    now = performance.now();
    const present = new Set<number>();
    const again = await readdir(this.aliceOut).catch(() => [] as string[]);
    for (const name of again) {
      const chunk = CHUNK.exec(name);
      if (chunk) present.add(Number(chunk[2]));
    }
    this.maxInFlight = Math.max(this.maxInFlight, present.size);
    for (const moments of this.chunks.values()) {
      if (moments.published !== undefined && moments.deleted === undefined && !present.has(moments.index))
        moments.deleted = now;
    }
    if (this.moments.offerPublished !== undefined && !again.some((name) => OFFER.test(name)))
      this.moments.offerWithdrawn ??= now;
  }

  private async readOffer(path: string): Promise<void> {
    try {
      const envelope = JSON.parse(decryptText(this.key, await readFile(path)).toString('utf8')) as {
        body?: { blockSize?: number };
      };
      this.blockSize = envelope.body?.blockSize ?? 0;
    } catch {
      // Read again at the next look.
    }
  }

  result(size: number): Timeline {
    const rel = (at: number | undefined) => (at === undefined ? undefined : (at - this.started) / 1000);
    const firstWith = (seen: StatusSeen[], index: number) => seen.find((entry) => entry.have.has(index));
    const blockSize = this.blockSize || 4 * MiB;
    const bytesOf = (have: Set<number>) => {
      let bytes = 0;
      for (const index of have) bytes += Math.max(0, Math.min(blockSize, size - index * blockSize));
      return bytes;
    };
    for (const moments of this.chunks.values()) {
      moments.written = firstWith(this.written, moments.index)?.at;
      moments.statusOut = firstWith(this.statusOut, moments.index)?.at;
      const statusIn = firstWith(this.statusIn, moments.index);
      moments.statusIn = statusIn?.at;
      if (statusIn) {
        // Alice's progress counts what she has read acknowledged; the first report covering this
        // status is when she acted on it (a verdict ends in `done` instead).
        const need = bytesOf(statusIn.have);
        moments.seenByAlice =
          this.aliceProgress.find((entry) => entry.bytes >= need)?.at ??
          (statusIn.state === 'complete' ? this.moments.aliceDone : undefined);
      }
    }
    const chunks = [...this.chunks.values()]
      .filter((moments) => moments.published !== undefined)
      .sort((a, b) => (a.published ?? 0) - (b.published ?? 0));
    const stage = (moments: ChunkMoments, from: keyof ChunkMoments, to: keyof ChunkMoments) => {
      const a = moments[from];
      const b = moments[to];
      return a === undefined || b === undefined ? undefined : (b - a) / 1000;
    };
    const summarizeStages = (group: ChunkMoments[], pick: (values: number[]) => number) => {
      const out: Partial<Record<StageName, number>> = {};
      for (const [from, to, name] of STAGES) {
        const values = group.map((moments) => stage(moments, from, to)).filter((v): v is number => v !== undefined);
        if (values.length > 0) out[name] = pick(values);
      }
      return out;
    };
    const median = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      const mid = Math.floor(sorted.length / 2);
      return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
    };
    const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;
    const window = Math.max(1, this.maxInFlight);
    const windows: WindowSummary[] = [];
    for (let first = 0; first < chunks.length; first += window) {
      const group = chunks.slice(first, first + window);
      windows.push({
        chunks: group.length,
        start: rel(group[0]?.published) ?? 0,
        mean: summarizeStages(group, mean),
      });
    }
    const verdictOut = this.statusOut.find((entry) => entry.state === 'complete')?.at;
    const verdictIn = this.statusIn.find((entry) => entry.state === 'complete')?.at;
    const lastWritten = latest(chunks, 'written') ?? 0;
    const medians = summarizeStages(chunks, median);
    const roundTrip = medians['round trip'] ?? 0;
    const quota = this.options.quota;
    const rate = roundTrip > 0 ? quota / roundTrip : 0;
    return {
      label: this.options.label,
      size,
      blockSize,
      chunks: chunks.length,
      window,
      at: {
        offerPublished: rel(this.moments.offerPublished),
        offerSeenByBob: rel(this.moments.offerSeenByBob),
        firstChunkPublished: rel(chunks[0]?.published),
        lastChunkPublished: rel(latest(chunks, 'published')),
        lastChunkSeenByBob: rel(latest(chunks, 'seenByBob')),
        lastChunkWritten: lastWritten > 0 ? rel(lastWritten) : undefined,
        verdictPublished: rel(verdictOut),
        verdictSeenByAlice: rel(verdictIn),
        aliceDone: rel(this.moments.aliceDone),
        offerWithdrawn: rel(this.moments.offerWithdrawn),
        withdrawalSeenByBob: rel(this.moments.withdrawalSeenByBob),
        fileInPlace: rel(this.moments.bobDone),
        aliceExit: rel(this.moments.aliceExit),
        bobExit: rel(this.moments.bobExit),
      },
      median: medians,
      windows,
      model: {
        quota,
        roundTrip,
        rate,
        seconds: rate > 0 ? size / rate : 0,
        measured:
          lastWritten > 0 && chunks[0]?.published !== undefined ? (lastWritten - chunks[0].published) / 1000 : 0,
      },
    };
  }
}

/** The latest moment of `stage` over the chunks, undefined when no chunk reached it. */
function latest(chunks: readonly ChunkMoments[], stage: Exclude<keyof ChunkMoments, 'index'>): number | undefined {
  let last: number | undefined;
  for (const moments of chunks) {
    const at = moments[stage];
    if (at !== undefined && (last === undefined || at > last)) last = at;
  }
  return last;
}

/** A few lines for the bench table. */
export function formatTimeline(t: Timeline): string[] {
  // A stage a few ms below zero is two clocks' read order (a process's stdout against a poll): show it as 0.00.
  const s = (v: number | undefined) => (v === undefined ? '?' : (Math.abs(v) < 0.005 ? 0 : v).toFixed(2));
  const stages = (values: Partial<Record<StageName, number>>) =>
    STAGES.map(([, , name]) => `${name} ${s(values[name])}`).join(', ');
  const lines = [
    `timeline of one transfer with ${t.label} (${t.chunks} chunks of ${(t.blockSize / MiB).toFixed(0)} MiB, ` +
      `at most ${t.window} in the relay at once), s after the sender started:`,
    `  start: offer published ${s(t.at.offerPublished)}, seen by bob ${s(t.at.offerSeenByBob)}; ` +
      `chunks published ${s(t.at.firstChunkPublished)} to ${s(t.at.lastChunkPublished)}, ` +
      `seen by bob until ${s(t.at.lastChunkSeenByBob)}`,
    `  per chunk, median s: ${stages(t.median)}`,
  ];
  t.windows.forEach((window, i) => {
    lines.push(`  window ${i + 1} (${window.chunks} chunks from ${s(window.start)}), mean s: ${stages(window.mean)}`);
  });
  lines.push(
    `  end: last chunk written ${s(t.at.lastChunkWritten)}, verdict published ${s(t.at.verdictPublished)}, ` +
      `seen by alice ${s(t.at.verdictSeenByAlice)}, offer withdrawn ${s(t.at.offerWithdrawn)}, ` +
      `seen by bob ${s(t.at.withdrawalSeenByBob)}; file in place ${s(t.at.fileInPlace)}, ` +
      `alice exits ${s(t.at.aliceExit)}, bob exits ${s(t.at.bobExit)}`,
    `  window model: quota ${(t.model.quota / MiB).toFixed(0)} MiB ÷ round trip ${s(t.model.roundTrip)} s = ` +
      `${(t.model.rate / MiB).toFixed(1)} MiB/s, so ${s(t.model.seconds)} s for the data; measured ` +
      `${s(t.model.measured)} s (first chunk published to last written)`,
  );
  return lines;
}
