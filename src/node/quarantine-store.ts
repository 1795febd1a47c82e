/**
 * Where the authentication guard keeps its quarantines (DMP_HOME/state/<self>/quarantine.json),
 * so that `dmp who`, `dmp peers` and `dmp status` in another process can show them, and a
 * restart does not lift them. One record per peer: the quarantine in force or the last one
 * (its level is what the next one doubles), dropped once it is forgiven.
 *
 * Every change is a read-modify-write under a lock: the daemon and a command (dmp listen, dmp
 * send --wait, dmp trust) may each write it.
 */
import { readJsonFile, writeJsonFile } from '../local/files.js';
import type { HomeLayout } from '../local/home.js';
import { withLock } from '../local/lock.js';
import { SANE_TIME_MAX } from '../util/bounds.js';
import { isPeerId, type PeerId } from '../util/peer-id.js';

export interface QuarantineRecord {
  /** Why, in one line (what failed, and how). */
  reason: string;
  /** When it began, and when it ends: ms since the epoch, by this machine's clock. */
  since: number;
  until: number;
  /** 1 for the first (1 min), 2 for the next (2 min), ... */
  level: number;
}

export type QuarantineFile = Record<PeerId, QuarantineRecord>;

/** Longest reason kept: a reason quotes an error message, never a whole file. */
export const MAX_REASON_LENGTH = 500;
/** Levels beyond this last as long as it does (1 h). */
export const MAX_LEVEL = 7;

export class QuarantineStore {
  constructor(private readonly home: HomeLayout) {}

  get path(): string {
    return this.home.quarantine;
  }

  /** What the file holds; a record that does not make sense is left out, a torn file reads as empty. */
  async read(): Promise<QuarantineFile> {
    const raw = await readJsonFile<unknown>(this.path).catch(() => undefined);
    const file: QuarantineFile = {};
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return file;
    for (const [peer, value] of Object.entries(raw as Record<string, unknown>)) {
      if (isPeerId(peer) && isRecord(value)) file[peer] = value;
    }
    return file;
  }

  /**
   * Applies `change` to every peer's record under the lock (undefined removes it) and writes the
   * file when anything changed. Returns the file as written.
   */
  async update(
    change: (peer: PeerId, record: QuarantineRecord | undefined) => QuarantineRecord | undefined,
    peers: Iterable<PeerId>,
  ): Promise<QuarantineFile> {
    return withLock(this.home.lock('quarantine'), async () => {
      const file = await this.read();
      const before = JSON.stringify(file);
      for (const peer of new Set([...peers, ...(Object.keys(file) as PeerId[])])) {
        const next = change(peer, file[peer]);
        if (next === undefined) delete file[peer];
        else file[peer] = next;
      }
      if (JSON.stringify(file) !== before) await writeJsonFile(this.path, file);
      return file;
    });
  }
}

function isRecord(value: unknown): value is QuarantineRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Partial<QuarantineRecord>;
  return (
    typeof record.reason === 'string' &&
    record.reason.length <= MAX_REASON_LENGTH &&
    isTime(record.since) &&
    isTime(record.until) &&
    (record.until as number) >= (record.since as number) &&
    Number.isSafeInteger(record.level) &&
    (record.level as number) >= 1 &&
    (record.level as number) <= MAX_LEVEL
  );
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= SANE_TIME_MAX;
}
