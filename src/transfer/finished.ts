/**
 * Transfers a receiver has finished, per sending peer, kept in DMP_HOME
 * (state/<self>/transfers/finished/<peer>.jsonl) after their state files are gone. A finished
 * transfer whose offer and chunks come back unchanged (a replay by a hostile peer, a sync tool
 * restoring an old copy of the relay, a sender restored from a backup) is answered with the
 * verdict it had, never received a second time as `name (1)`.
 *
 * Bounded: the last MAX_FINISHED transfers of each peer are remembered. The journal is cut back
 * to them once it holds twice as many, so it is read whole (a few megabytes at most) once per
 * peer and process.
 */
import { readFile } from 'node:fs/promises';
import { errnoCode } from '../errors.js';
import { writeFileAtomic } from '../local/files.js';
import type { HomeLayout } from '../local/home.js';
import { Journal } from '../local/journal.js';
import type { PeerId } from '../util/peer-id.js';
import { TID_PATTERN } from './names.js';

/** Finished transfers remembered per peer. */
export const MAX_FINISHED = 10_000;

export interface FinishedTransfer {
  tid: string;
  state: 'complete' | 'failed';
  /** The file as it was received (relative, cleaned), for messages. */
  file: string;
  /** Chunks the transfer had: a `complete` verdict lists them all as held. */
  count: number;
  sha256?: string;
  reason?: string;
  /** When it was withdrawn, ms since the epoch. */
  at: number;
}

interface Remembered {
  /** By tid, oldest first. */
  known: Map<string, FinishedTransfer>;
  /** Lines in the journal file. */
  lines: number;
}

export class FinishedTransfers {
  private readonly peers = new Map<PeerId, Remembered>();

  constructor(
    private readonly home: HomeLayout,
    private readonly limit = MAX_FINISHED,
  ) {}

  private journal(peer: PeerId): Journal<FinishedTransfer> {
    return new Journal(this.home.transfers('finished', `${peer}.jsonl`));
  }

  private async load(peer: PeerId): Promise<Remembered> {
    const loaded = this.peers.get(peer);
    if (loaded) return loaded;
    const known = new Map<string, FinishedTransfer>();
    let lines = 0;
    let text = '';
    try {
      text = await readFile(this.journal(peer).path, 'utf8');
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
    for (const line of text.split('\n')) {
      if (line !== '') lines += 1;
      const record = parseRecord(line);
      if (!record) continue;
      // Newest last: a tid seen again moves to the end.
      known.delete(record.tid);
      known.set(record.tid, record);
    }
    this.trim(known);
    const remembered = { known, lines };
    this.peers.set(peer, remembered);
    return remembered;
  }

  /** The finished transfer `tid` of `peer`, if it is remembered. */
  async get(peer: PeerId, tid: string): Promise<FinishedTransfer | undefined> {
    return (await this.load(peer)).known.get(tid);
  }

  /** Remembers a finished transfer (durably: the journal is fsynced). */
  async add(peer: PeerId, record: FinishedTransfer): Promise<void> {
    const remembered = await this.load(peer);
    const { known } = remembered;
    if (known.get(record.tid)?.state === record.state) return;
    const journal = this.journal(peer);
    await journal.append([record]);
    remembered.lines += 1;
    known.delete(record.tid);
    known.set(record.tid, record);
    this.trim(known);
    // Cut the file back to what is remembered once it holds twice as much.
    if (remembered.lines > 2 * this.limit) {
      const text = [...known.values()].map((entry) => `${JSON.stringify(entry)}\n`).join('');
      await writeFileAtomic(journal.path, text);
      remembered.lines = known.size;
    }
  }

  private trim(known: Map<string, FinishedTransfer>): void {
    while (known.size > this.limit) {
      const oldest = known.keys().next().value;
      if (oldest === undefined) break;
      known.delete(oldest);
    }
  }
}

/** A journal line written by `add`, checked (the file is local, but may be torn or edited). */
function parseRecord(line: string): FinishedTransfer | undefined {
  if (line.trim() === '') return undefined;
  try {
    const value = JSON.parse(line) as Partial<FinishedTransfer>;
    if (
      typeof value.tid !== 'string' ||
      !TID_PATTERN.test(value.tid) ||
      (value.state !== 'complete' && value.state !== 'failed') ||
      !Number.isSafeInteger(value.count) ||
      typeof value.file !== 'string'
    ) {
      return undefined;
    }
    return value as FinishedTransfer;
  } catch {
    return undefined;
  }
}
