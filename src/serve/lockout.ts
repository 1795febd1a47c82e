/**
 * Lockout after wrong passcodes, per peer and per file: three wrong passcodes lock that peer out
 * of that file for a while (1 minute), doubling with each further lock (up to a day); a right
 * passcode clears the record. Attempts are counted by request id, so one request that a sync
 * tool delivers twice, or that comes back after a restart, counts once. All times come from the
 * injected clock; the records are kept in DMP_HOME, so a restart forgets no lock.
 */
import type { Clock } from '../clock.js';
import { readJsonFile, writeJsonFile } from '../local/files.js';

export interface LockoutInit {
  /** Wrong passcodes that lock. @default 3 */
  attempts?: number;
  /** The first lock, ms. @default 60 000 */
  firstLockMs?: number;
  /** The longest lock, ms. @default one day */
  longestLockMs?: number;
}

interface LockRecord {
  /** Request ids of the wrong passcodes since the last lock. */
  wrong: string[];
  /** Request ids already counted, the last few (a duplicate after a lock must not count). */
  counted: string[];
  /** Locks so far: the next lasts firstLockMs * 2^locks. */
  locks: number;
  lockedUntil: number;
  lastAt: number;
}

/** Request ids remembered per record as counted. */
const COUNTED = 32;
/** A record with no lock in force and no wrong passcode for this long is forgotten. */
const FORGET_AFTER_MS = 24 * 3600 * 1000;

export class Lockout {
  private readonly attempts: number;
  private readonly firstLockMs: number;
  private readonly longestLockMs: number;

  private constructor(
    private readonly clock: Clock,
    private readonly path: string,
    private readonly records: Map<string, LockRecord>,
    init: LockoutInit,
  ) {
    this.attempts = init.attempts ?? 3;
    this.firstLockMs = init.firstLockMs ?? 60_000;
    this.longestLockMs = init.longestLockMs ?? 24 * 3600 * 1000;
  }

  static async load(clock: Clock, path: string, init: LockoutInit = {}): Promise<Lockout> {
    const stored = (await readJsonFile<Record<string, LockRecord>>(path).catch(() => undefined)) ?? {};
    const records = new Map<string, LockRecord>();
    for (const [key, value] of Object.entries(stored)) {
      if (
        value &&
        Array.isArray(value.wrong) &&
        Array.isArray(value.counted) &&
        typeof value.lockedUntil === 'number'
      ) {
        records.set(key, value);
      }
    }
    return new Lockout(clock, path, records, init);
  }

  private key(peer: string, file: string): string {
    return `${peer}\n${file}`;
  }

  /** How long `peer` is still locked out of `file`, ms (0: it may try). */
  lockedFor(peer: string, file: string): number {
    const record = this.records.get(this.key(peer, file));
    return Math.max(0, (record?.lockedUntil ?? 0) - this.clock.now());
  }

  /**
   * Counts a wrong passcode given in request `id`. Returns how long the peer is now locked out
   * (0 while it may try again).
   */
  async wrong(peer: string, file: string, id: string): Promise<number> {
    const key = this.key(peer, file);
    const now = this.clock.now();
    const record = this.records.get(key) ?? { wrong: [], counted: [], locks: 0, lockedUntil: 0, lastAt: now };
    if (record.counted.includes(id) || record.lockedUntil > now) return this.lockedFor(peer, file);
    record.counted = [...record.counted, id].slice(-COUNTED);
    record.wrong.push(id);
    record.lastAt = now;
    if (record.wrong.length >= this.attempts) {
      record.lockedUntil = now + Math.min(this.longestLockMs, this.firstLockMs * 2 ** record.locks);
      record.locks += 1;
      record.wrong = [];
    }
    this.records.set(key, record);
    await this.save();
    return this.lockedFor(peer, file);
  }

  /** A right passcode: the slate is clean. */
  async right(peer: string, file: string): Promise<void> {
    if (this.records.delete(this.key(peer, file))) await this.save();
  }

  /** Forgets every record of `file` (deleted) and everything under it. */
  async forgetFile(file: string): Promise<void> {
    let changed = false;
    for (const key of [...this.records.keys()]) {
      const name = key.slice(key.indexOf('\n') + 1);
      if (name === file || name.startsWith(`${file}/`)) changed = this.records.delete(key) || changed;
    }
    if (changed) await this.save();
  }

  private async save(): Promise<void> {
    const now = this.clock.now();
    for (const [key, record] of this.records) {
      if (record.lockedUntil <= now && now - record.lastAt > FORGET_AFTER_MS) this.records.delete(key);
    }
    await writeJsonFile(this.path, Object.fromEntries(this.records));
  }
}
