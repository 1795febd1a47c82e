/**
 * Presence: who is online, judged by this machine.
 *
 * A running daemon (or chat) publishes `<relay>/<self>/presence.dmp`, sealed under the relay
 * key and signed by its identity: online or offline, since when, a counter that only grows, and
 * its heartbeat interval. It publishes again every interval, and "offline" on a clean stop.
 *
 * A reader never trusts the author's clock beyond a bound: a peer is online while the last
 * *new* heartbeat (a higher counter) arrived here, by this machine's clock, within two of its
 * intervals plus a grace for sync delay; "online" expires on a timer, so a peer that vanished
 * without saying goodbye drops off by itself. What was seen is kept in
 * DMP_HOME/state/<self>/seen.json, so `dmp who --since` survives restarts; messages and files
 * received count as seen too.
 */
import type { Cancel, Clock } from '../clock.js';
import { decryptText, encryptText, type FernetKey } from '../crypto/fernet.js';
import { DmpError, isDmpError } from '../errors.js';
import type { IdentityBook } from '../identity/book.js';
import { type KeyPair, publicKeyOf } from '../identity/keys.js';
import { signDocument, verifyDocument } from '../identity/signed.js';
import { readJsonFile, writeJsonFile } from '../local/files.js';
import type { HomeLayout } from '../local/home.js';
import type { Logger } from '../log.js';
import type { AuthGuard } from '../node/auth-guard.js';
import type { RelayStorage } from '../relay/storage.js';
import type { PeerId } from '../util/peer-id.js';

export const PRESENCE_FILE = 'presence.dmp';
const PRESENCE_LABEL = 'dmp presence v2';
const MAX_PRESENCE_FILE = 16 * 1024;
/** Heartbeat interval when none is given, ms. */
export const DEFAULT_PRESENCE_INTERVAL_MS = 30_000;
/** Added to two intervals before "online" expires: sync tools batch changes for seconds. */
export const PRESENCE_GRACE_MS = 10_000;
/** Intervals a reader accepts, ms: a peer cannot claim to stay online for a day. */
const MIN_INTERVAL_MS = 1000;
const MAX_INTERVAL_MS = 3_600_000;

export interface PresenceDocument {
  v: 2;
  id: PeerId;
  state: 'online' | 'offline';
  /** When this run of the author came online, by the author's clock (informative). */
  since: number;
  counter: number;
  intervalMs: number;
  /** By the author's clock; used only within the bound described above. */
  sentAt: number;
}

/** What this machine knows of one peer. */
export interface Seen {
  /** When this machine last saw anything new of the peer (a heartbeat, a message, a file), ms since the epoch, by its own clock. */
  lastSeen: number;
  /** When it last saw a new heartbeat; what "online" is judged by. */
  lastBeat: number;
  state: 'online' | 'offline';
  counter: number;
  intervalMs: number;
}

export type SeenFile = Record<string, Seen>;

export function isOnline(seen: Seen | undefined, now: number): boolean {
  return seen?.state === 'online' && now - seen.lastBeat < 2 * seen.intervalMs + PRESENCE_GRACE_MS;
}

export function decodePresence(plaintext: Buffer, owner: PeerId, signer: string): PresenceDocument {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(plaintext.toString('utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new DmpError('PROTOCOL', 'presence is not JSON', { cause });
  }
  if (
    typeof value !== 'object' ||
    value === null ||
    value.v !== 2 ||
    value.id !== owner ||
    (value.state !== 'online' && value.state !== 'offline') ||
    !Number.isSafeInteger(value.counter) ||
    (value.counter as number) < 1 ||
    !Number.isSafeInteger(value.intervalMs) ||
    (value.intervalMs as number) < MIN_INTERVAL_MS ||
    (value.intervalMs as number) > MAX_INTERVAL_MS ||
    typeof value.since !== 'number' ||
    typeof value.sentAt !== 'number'
  ) {
    throw new DmpError('PROTOCOL', `${owner}'s presence is malformed`);
  }
  if (!verifyDocument(PRESENCE_LABEL, value, publicKeyOf('Ed25519', signer))) {
    throw new DmpError('PROTOCOL', `${owner}'s presence is not signed by its identity`);
  }
  const { sig: _signature, ...document } = value;
  return document as unknown as PresenceDocument;
}

export interface PresenceComponents {
  self: PeerId;
  relay: RelayStorage;
  home: HomeLayout;
  clock: Clock;
  logger: Logger;
  /** Told of each presence file that opens or fails (a forged one counts toward a quarantine). */
  guard?: Pick<AuthGuard, 'authenticated' | 'failed'>;
}

export interface PresenceInit {
  relayKey: FernetKey;
  book: IdentityBook;
  /** This peer's sign key. */
  signKey: () => KeyPair;
}

/** Publishes this peer's presence on an interval while `run` runs; "offline" when it stops. */
export class PresencePublisher {
  private counter = 0;

  constructor(
    private readonly components: PresenceComponents,
    private readonly init: PresenceInit,
  ) {}

  private async publish(state: 'online' | 'offline', since: number, intervalMs: number): Promise<void> {
    const { relay, clock, self } = this.components;
    // The counter must grow across restarts, and when a chat and the daemon both publish for
    // this peer: always above the one published, whoever published it.
    this.counter = Math.max(this.counter, (await this.published())?.counter ?? 0) + 1;
    const document: PresenceDocument = {
      v: 2,
      id: self,
      state,
      since,
      counter: this.counter,
      intervalMs,
      sentAt: clock.now(),
    };
    const signed = signDocument(PRESENCE_LABEL, { ...document }, this.init.signKey());
    await relay.publishShared(
      [{ name: PRESENCE_FILE, data: encryptText(this.init.relayKey, Buffer.from(JSON.stringify(signed))) }],
      { durable: false },
    );
  }

  /** This peer's own presence as published (to continue its counter). */
  private async published(): Promise<PresenceDocument | undefined> {
    const { relay, self } = this.components;
    try {
      const read = await relay.readShared(self, PRESENCE_FILE, { maxBytes: MAX_PRESENCE_FILE });
      if (!read) return undefined;
      return decodePresence(decryptText(this.init.relayKey, read.data), self, this.init.signKey().public);
    } catch {
      return undefined;
    }
  }

  /** Online now and every `intervalMs`, until the signal; then offline. */
  async run(signal: AbortSignal, intervalMs = DEFAULT_PRESENCE_INTERVAL_MS): Promise<void> {
    const { clock, logger } = this.components;
    const since = clock.now();
    while (!signal.aborted) {
      try {
        await this.publish('online', since, intervalMs);
      } catch (error) {
        if (!isDmpError(error)) throw error;
        logger.log('warn', 'presence-error', { error: error.message });
      }
      await clock.sleep(intervalMs, signal).catch(() => {});
    }
    await this.publish('offline', since, intervalMs).catch((error: unknown) => {
      logger.log('warn', 'presence-error', { error: String(error) });
    });
  }

  /** Says "offline" at once (dmp logout): a daemon still running says "online" again at its next beat. */
  async goOffline(): Promise<void> {
    const existing = await this.published();
    await this.publish(
      'offline',
      existing?.since ?? this.components.clock.now(),
      existing?.intervalMs ?? DEFAULT_PRESENCE_INTERVAL_MS,
    );
  }
}

/** What this machine saw of the others, kept in DMP_HOME. */
const SAVE_DELAY_MS = 5000;

export class PresenceTracker {
  private seen: SeenFile | undefined;
  private saveSoon: Cancel | undefined;
  private readonly versions = new Map<PeerId, string>();

  constructor(
    private readonly components: PresenceComponents,
    private readonly init: PresenceInit,
  ) {}

  private get path(): string {
    return this.components.home.seen;
  }

  async all(): Promise<SeenFile> {
    this.seen ??= (await readJsonFile<SeenFile>(this.path).catch(() => undefined)) ?? {};
    return this.seen;
  }

  /**
   * Reads `peer`'s presence file and records a heartbeat that is new (a higher counter). The
   * arrival time is this machine's clock; the author's `sentAt` may only move it back to within
   * two intervals (a first look at a file that has been there a while).
   */
  async observe(peer: PeerId): Promise<Seen | undefined> {
    const { relay, clock } = this.components;
    const seen = await this.all();
    const read = await relay.readShared(peer, PRESENCE_FILE, { maxBytes: MAX_PRESENCE_FILE }).catch(() => undefined);
    if (!read || this.versions.get(peer) === read.version) return seen[peer];
    this.versions.set(peer, read.version);
    const signer = this.init.book.signKeyOf(peer);
    if (!signer) return seen[peer];
    let document: PresenceDocument;
    try {
      document = decodePresence(decryptText(this.init.relayKey, read.data), peer, signer);
    } catch (error) {
      if (!isDmpError(error)) throw error;
      this.components.guard?.failed(peer, PRESENCE_FILE, read.version, error, { shared: true });
      this.components.logger.log('debug', 'presence-rejected', { peer, reason: error.message });
      return seen[peer];
    }
    this.components.guard?.authenticated(peer, PRESENCE_FILE, { shared: true });
    const before = seen[peer];
    if (before && document.counter <= before.counter) return before;
    const now = clock.now();
    const floor = now - 2 * document.intervalMs;
    const arrived = Math.max(floor, Math.min(now, document.sentAt));
    seen[peer] = {
      lastSeen: Math.max(before?.lastSeen ?? 0, arrived),
      lastBeat: arrived,
      state: document.state,
      counter: document.counter,
      intervalMs: document.intervalMs,
    };
    await this.save();
    return seen[peer];
  }

  /**
   * Something new of `peer` arrived (a message, a file): it was there just now. Written to disk
   * within a few seconds, not at every message.
   */
  async heard(peer: PeerId): Promise<void> {
    const seen = await this.all();
    const before = seen[peer];
    seen[peer] = {
      lastSeen: this.components.clock.now(),
      lastBeat: before?.lastBeat ?? 0,
      state: before?.state ?? 'offline',
      counter: before?.counter ?? 0,
      intervalMs: before?.intervalMs ?? DEFAULT_PRESENCE_INTERVAL_MS,
    };
    this.saveSoon ??= this.components.clock.timeout(SAVE_DELAY_MS, () => {
      this.saveSoon = undefined;
      void this.save().catch(() => {});
    });
  }

  /** Writes what is pending now (before a process ends). */
  async flush(): Promise<void> {
    this.saveSoon?.();
    this.saveSoon = undefined;
    await this.save();
  }

  private async save(): Promise<void> {
    if (this.seen) await writeJsonFile(this.path, this.seen);
  }
}
