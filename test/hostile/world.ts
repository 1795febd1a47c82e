/**
 * One in-memory relay shared by a few peers, for the hostile-relay scenarios (issue 12): every
 * peer sees every file at once, every timer runs on one ManualClock that moves on whenever the
 * process is idle, and a test can put into the relay whatever a hostile peer or a careless
 * sync tool would, sealed with the relay key or not.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/clock.js';
import { encryptText, generateKey, parseKey } from '../../src/crypto/fernet.js';
import type { LogLevel } from '../../src/log.js';
import { type Envelope, encodeEnvelope } from '../../src/node/envelope.js';
import { Peer, type PeerOptions } from '../../src/peer.js';
import { MemoryRelay, RelayReplica } from '../../src/relay/memory-relay.js';
import type { RelayStorage } from '../../src/relay/storage.js';

export interface LogLine {
  peer: string;
  level: LogLevel;
  event: string;
  fields: Record<string, unknown>;
}

export class OneRelay {
  readonly replica = new RelayReplica();
  readonly clock = new ManualClock();
  readonly key = generateKey();
  /** Every log line of every peer. */
  readonly log: LogLine[] = [];
  private readonly stopClock = this.clock.run();
  private readonly dirs: string[] = [];
  private readonly peers: Peer[] = [];
  private readonly ending = new AbortController();
  /**
   * Fires when the scenario has run longer than its real-time limit, or at close(): give it to
   * every long operation, so that a stuck scenario fails instead of hanging the test runner.
   */
  readonly signal: AbortSignal = this.ending.signal;
  private readonly limit: NodeJS.Timeout;

  constructor(limitMs = 30_000) {
    this.limit = setTimeout(() => this.ending.abort(new Error(`scenario still running after ${limitMs} ms`)), limitMs);
  }

  async dir(prefix = 'dmp-hostile-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  /** The relay storage `id` writes through (wrap it to watch what a peer does). */
  relay(id: string): RelayStorage {
    return new MemoryRelay(this.replica, id as never, { clock: this.clock });
  }

  /** A peer on this relay, with its own home, the relay key, crypto on this thread. */
  async peer(id: string, options: Partial<PeerOptions> = {}): Promise<Peer> {
    const peer = await Peer.open({
      relay: this.relay(id),
      id,
      key: this.key,
      home: await this.dir(`dmp-hostile-${id}-`),
      clock: this.clock,
      cryptoWorker: false,
      logger: { log: (level, event, fields = {}) => this.log.push({ peer: id, level, event, fields }) },
      ...options,
    });
    this.peers.push(peer);
    return peer;
  }

  /** A peer folder made as `dmp init` makes it (the relay carries folders, not only files). */
  folder(owner: string): void {
    this.replica.addFolder(owner, false);
  }

  /** Puts a file into `<owner>/<dir>/<name>` as if a sync tool had brought it. */
  put(owner: string, dir: string, name: string, data: Buffer | string): void {
    this.replica.put(`${owner}/${dir}/${name}`, Buffer.from(data), false);
  }

  /** An envelope sealed with the relay key, as a peer holding the key would write it. */
  seal(envelope: Envelope | Record<string, unknown>): string {
    return encryptText(parseKey(this.key), encodeEnvelope(envelope as Envelope), {
      timestamp: Math.floor(this.clock.now() / 1000),
    });
  }

  /** Sealed plaintext of any shape (JSON text given as is). */
  sealText(plaintext: string): string {
    return encryptText(parseKey(this.key), Buffer.from(plaintext), { timestamp: Math.floor(this.clock.now() / 1000) });
  }

  /** Names in `<owner>/<dir>/`. */
  names(owner: string, dir: string): string[] {
    const prefix = `${owner}/${dir}/`;
    return [...this.replica.files.keys()]
      .filter((path) => path.startsWith(prefix))
      .map((path) => path.slice(prefix.length));
  }

  /** Lets the clock move until `check` holds (real time bounded by `timeoutMs`). */
  async until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await check()) return;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await this.clock.sleep(10);
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.limit);
    this.ending.abort();
    for (const peer of this.peers) peer.close();
    this.stopClock();
    await Promise.all(this.dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  }
}
