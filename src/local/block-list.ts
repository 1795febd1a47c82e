/**
 * The peers this peer blocks (DMP_HOME/state/<self>/blocked.json): a local list, never
 * published, so a block does not reveal itself to the blocked (as XMPP servers do it). The node
 * hands every handler whether the peer whose folder it reads is blocked, so no ingest path can
 * forget to look: messages and broadcasts are acknowledged and dropped (the blocked peer's
 * folder does not fill for ever), pings go unanswered, offers are left alone.
 */
import { stat } from 'node:fs/promises';
import { readJsonFile, writeJsonFile } from './files.js';
import type { HomeLayout } from './home.js';
import { withLock } from './lock.js';

export class BlockList {
  private blocked = new Set<string>();
  private version = '';

  constructor(private readonly home: HomeLayout) {}

  /** Reads the list again when another process (dmp block) changed it. */
  async refresh(): Promise<void> {
    const info = await stat(this.home.blocked).catch(() => undefined);
    const version = info ? `${info.mtimeMs}:${info.size}` : '';
    if (version === this.version) return;
    this.version = version;
    this.blocked = new Set((await readJsonFile<string[]>(this.home.blocked).catch(() => undefined)) ?? []);
  }

  has(peer: string): boolean {
    return this.blocked.has(peer);
  }

  async list(): Promise<string[]> {
    await this.refresh();
    return [...this.blocked].sort();
  }

  /** Adds (`on`) or removes a peer; returns whether anything changed. */
  async set(peer: string, on: boolean): Promise<boolean> {
    return withLock(this.home.lock('blocked'), async () => {
      const current = new Set((await readJsonFile<string[]>(this.home.blocked)) ?? []);
      if (current.has(peer) === on) return false;
      if (on) current.add(peer);
      else current.delete(peer);
      await writeJsonFile(this.home.blocked, [...current].sort());
      this.version = '';
      await this.refresh();
      return true;
    });
  }
}
