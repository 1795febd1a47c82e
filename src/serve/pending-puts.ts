/**
 * The puts a server accepted and whose files have not arrived yet, kept in DMP_HOME (mode 600:
 * a protected put carries its passcode hash). A put's transfer is taken only while its request
 * is here (docs/PROTOCOL.md, "Serving a folder"): same peer, same request id, same name and
 * size. An interrupted put resumes with the request it started with, so a request is kept until
 * its file arrived, failed for good, or a week passed.
 */
import type { Clock } from '../clock.js';
import { readJsonFile, writeJsonFile } from '../local/files.js';
import type { PasscodeRecord } from './passcodes.js';

export interface PendingPut {
  peer: string;
  /** The put request's id: its transfer's offer carries it. */
  id: string;
  /** Where the file goes, relative to the served folder, as the receiver cleans it. */
  name: string;
  size: number;
  /** The passcode hash of a protected put. */
  protect?: PasscodeRecord;
  at: number;
}

/** How long an accepted put waits for its file. */
const KEEP_MS = 7 * 24 * 3600 * 1000;

export class PendingPuts {
  private constructor(
    private readonly clock: Clock,
    private readonly path: string,
    private puts: PendingPut[],
  ) {}

  static async load(clock: Clock, path: string): Promise<PendingPuts> {
    const stored = await readJsonFile<PendingPut[]>(path).catch(() => undefined);
    return new PendingPuts(
      clock,
      path,
      Array.isArray(stored) ? stored.filter((put) => typeof put?.id === 'string') : [],
    );
  }

  /** Whether a transfer from `peer` answering request `id` for `name` of `size` bytes is awaited. */
  accepts(peer: string, id: string, name: string, size: number): boolean {
    const now = this.clock.now();
    return this.puts.some(
      (put) => put.peer === peer && put.id === id && put.name === name && put.size === size && now - put.at < KEEP_MS,
    );
  }

  /** The latest put of `name` by `peer`: its settings hold for the file that arrives. */
  latest(peer: string, name: string): PendingPut | undefined {
    return this.puts.filter((put) => put.peer === peer && put.name === name).at(-1);
  }

  async add(put: PendingPut): Promise<void> {
    const now = this.clock.now();
    this.puts = [...this.puts.filter((old) => now - old.at < KEEP_MS && old.id !== put.id), put];
    await this.save();
  }

  /** The file `name` of `peer` arrived or failed: every put of it is done. */
  async settle(peer: string, name: string): Promise<void> {
    const left = this.puts.filter((put) => !(put.peer === peer && put.name === name));
    if (left.length === this.puts.length) return;
    this.puts = left;
    await this.save();
  }

  private async save(): Promise<void> {
    await writeJsonFile(this.path, this.puts, 0o600);
  }
}
