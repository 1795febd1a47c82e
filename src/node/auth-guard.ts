/**
 * The one authority on "this peer's files do not authenticate". Every service reports here each
 * file of a peer that authenticated or failed, and acts on the verdict it gets back; nothing
 * else counts failures, guesses at wrong keys or decides to stop reading a peer.
 *
 * The rule (docs/PROTOCOL.md, "Authentication failures" and "Quarantine"):
 * - A failure from a peer one of whose files has authenticated is damage in transit (a sync
 *   glitch, or a forgery): the verdict is `damaged`, and the service asks for the file again.
 * - A peer none of whose files has ever authenticated, with well-formed tokens failing their
 *   HMAC in at least two distinct files (or versions of one file), is `unauthenticated`: it
 *   holds another key, or it is a stranger. It is reported once, and quarantined at once.
 * - Anything that is not a well-formed token failing its HMAC (truncated, bad base64, bad
 *   JSON) is damage, whoever wrote it: only a clean HMAC failure can mean another key.
 * - A refused identity (changed, a stranger, unverified under strict) is reported once; it is
 *   not quarantined, since nothing of its folder is read anyway until the user accepts it, and
 *   a quarantine would show an end that does not exist.
 *
 * Quarantine (the origin's lockout after three bad passwords): every failing file is kept as a
 * failure until it is repaired (a file of that name opens, in any version) or is gone from the
 * peer's folder. A failure still there REPAIR_GRACE_MS after it first failed (time for the
 * resend a sync glitch needs) counts; three that count (two for an unauthenticated peer)
 * quarantine the peer. Its folder is then not read at all until the quarantine ends: 1 min the
 * first time, doubling each time up to 1 h. What still fails when it ends counts again only
 * once it has failed for another grace period after reading resumed, so a folder that stays
 * forged is quarantined again for twice as long, and one that was repaired meanwhile is not. A
 * day without a quarantine after the last one ended forgives it: the next starts at 1 min.
 * Lifted early only by the user (`lift`: dmp unquarantine, dmp trust --accept-new), never by
 * anything read from the relay: an identity file that turns refused and back again is no more
 * than another file in the peer's folder, which whoever forged the rest may write too.
 *
 * Quarantines are kept in DMP_HOME (src/node/quarantine-store.ts) so that other processes can
 * show them and a restart does not lift them: read by `load()`, written by `sync()`, which the
 * service loop calls on every pass. Failures are this process's own judgement and are not kept.
 */
import type { Clock } from '../clock.js';
import { type DmpError, isDmpError } from '../errors.js';
import type { HomeLayout } from '../local/home.js';
import type { Logger } from '../log.js';
import type { PeerId } from '../util/peer-id.js';
import {
  MAX_LEVEL,
  MAX_REASON_LENGTH,
  type QuarantineFile,
  type QuarantineRecord,
  QuarantineStore,
} from './quarantine-store.js';

export type AuthVerdict = 'damaged' | 'unauthenticated';

/** A peer's folder not read until `until` (ms since the epoch), and why. */
export interface Quarantine extends QuarantineRecord {
  peer: PeerId;
}

/** Distinct failing files that make a never-authenticated peer `unauthenticated`. */
const FAILURES_FOR_VERDICT = 2;
/** Unrepaired failures that quarantine a peer that has authenticated (or never failed cleanly). */
const FAILURES_FOR_QUARANTINE = 3;
/**
 * How long a failing file may stay unrepaired before it counts: a resend needs the reader's ack
 * to reach the sender and the new file to come back, two trips of a sync engine that may batch
 * changes for seconds (Syncthing) or cache listings for a minute (NFS).
 */
export const REPAIR_GRACE_MS = 2 * 60_000;
const FIRST_QUARANTINE_MS = 60_000;
const LONGEST_QUARANTINE_MS = 60 * 60_000;
/** A quarantine this long over with no new one since is forgiven: the next one starts at level 1. */
const FORGIVEN_AFTER_MS = 24 * 60 * 60_000;
/** Failures remembered per peer: a folder of 100,000 forgeries costs no more than a few. */
const MAX_FAILURES = 64;
/** While a quarantine lasts, the file is read again this often (lifted by another process?). */
const REREAD_MS = 10_000;

/** How long a quarantine of `level` lasts, ms. */
export function quarantineMs(level: number): number {
  return Math.min(LONGEST_QUARANTINE_MS, FIRST_QUARANTINE_MS * 2 ** (Math.max(1, level) - 1));
}

/** Where a file is: `<peer>/<self>/<file>` (the default), or `<peer>/<file>` for everyone. */
export interface FileOptions {
  /** The file is in the peer's folder for every member (broadcasts, presence). @default false */
  shared?: boolean;
}

interface Failure {
  file: string;
  shared: boolean;
  /** Counts from REPAIR_GRACE_MS after this. */
  since: number;
  /** The error, in one line. */
  error: string;
}

interface PeerRecord {
  authenticated: boolean;
  /** Distinct `file@version` that failed their HMAC while nothing authenticated. */
  macFailures: Set<string>;
  unauthenticated: boolean;
  reason?: string;
  /** Failing files not repaired yet, by `file@version`. */
  failures: Map<string, Failure>;
}

export interface AuthGuardComponents {
  clock: Clock;
  logger: Logger;
  /** Where quarantines are kept; without it they last as long as the process. */
  home?: HomeLayout;
}

export interface AuthGuardInit {
  /** Called once when a peer becomes unauthenticated (the CLI prints one line). */
  onUnauthenticated?: (peer: PeerId, reason: string) => void;
}

export class AuthGuard {
  private readonly peers = new Map<PeerId, PeerRecord>();
  private readonly listeners = new Set<(peer: PeerId, reason: string) => void>();
  private readonly quarantineListeners = new Set<(quarantine: Quarantine) => void>();
  /** The quarantine in force or the last one, per peer (its level is what the next doubles). */
  private readonly quarantines = new Map<PeerId, QuarantineRecord>();
  /** Peers whose quarantine ended and was said to have ended. */
  private readonly ended = new Set<PeerId>();
  /** Peers whose quarantine changed here and is not written yet. */
  private readonly unsaved = new Set<PeerId>();
  private readonly store: QuarantineStore | undefined;
  private lastRead = Number.NEGATIVE_INFINITY;
  private lastSaveError = '';

  constructor(
    private readonly components: AuthGuardComponents,
    init: AuthGuardInit = {},
  ) {
    if (init.onUnauthenticated) this.listeners.add(init.onUnauthenticated);
    this.store = components.home ? new QuarantineStore(components.home) : undefined;
  }

  /** Subscribes to verdicts of `unauthenticated`; returns the unsubscribe function. */
  onUnauthenticated(listener: (peer: PeerId, reason: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Hears of each quarantine as it begins; returns the unsubscribe function. */
  onQuarantined(listener: (quarantine: Quarantine) => void): () => void {
    this.quarantineListeners.add(listener);
    return () => this.quarantineListeners.delete(listener);
  }

  private record(peer: PeerId): PeerRecord {
    let record = this.peers.get(peer);
    if (!record) {
      record = {
        authenticated: false,
        macFailures: new Set(),
        unauthenticated: false,
        failures: new Map(),
      };
      this.peers.set(peer, record);
    }
    return record;
  }

  /**
   * `file` of `peer` authenticated: that file is repaired (every version of it that failed no
   * longer counts), the peer's later failures are damage, and it is no longer unauthenticated.
   * A quarantine in force stays until it ends.
   */
  authenticated(peer: PeerId, file: string, options: FileOptions = {}): void {
    const record = this.record(peer);
    // Called for every file that opens: the common case must allocate nothing (clearing a Set
    // makes a new table, in the old generation for a long-lived Set).
    if (record.authenticated && !record.unauthenticated && record.failures.size === 0) return;
    if (record.unauthenticated) this.components.logger.log('info', 'peer-authenticated', { peer });
    record.authenticated = true;
    record.unauthenticated = false;
    if (record.macFailures.size > 0) record.macFailures.clear();
    delete record.reason;
    const shared = options.shared ?? false;
    for (const [key, failure] of record.failures) {
      if (failure.file === file && failure.shared === shared) record.failures.delete(key);
    }
  }

  /**
   * A file of `peer` failed to open (an AUTH or PROTOCOL DmpError). Returns what to make of it;
   * the caller logs the file and asks for it again either way.
   */
  failed(peer: PeerId, file: string, version: string, error: DmpError, options: FileOptions = {}): AuthVerdict {
    const record = this.record(peer);
    // No keys yet: nothing can be judged of the file (its identity is on its way).
    if (isDmpError(error, 'AUTH') && error.data.check === 'identity-pending') return 'damaged';
    if (isDmpError(error, 'AUTH') && error.data.check === 'identity') {
      // The sealer knows the peer's identity and does not accept it (changed, a stranger, not
      // verified under --strict): no file of it can be taken, whatever came before.
      this.refuse(peer, error.message);
      return 'unauthenticated';
    }
    const now = this.components.clock.now();
    const key = `${file}@${version}`;
    this.remember(peer, record, key, file, error, options.shared ?? false, now);
    const cleanMacFailure = isDmpError(error, 'AUTH') && error.data.check === 'mac';
    if (record.authenticated || !cleanMacFailure) {
      this.judge(peer, record, now);
      return !record.authenticated && record.unauthenticated ? 'unauthenticated' : 'damaged';
    }
    const fresh = !record.macFailures.has(key);
    if (fresh && record.macFailures.size < MAX_FAILURES) record.macFailures.add(key);
    if (record.macFailures.size < FAILURES_FOR_VERDICT) {
      this.judge(peer, record, now);
      return 'damaged';
    }
    this.markUnauthenticated(peer, record, `${peer}'s files do not authenticate (another key, or a stranger?)`);
    // The verdict already rests on two witnesses: it quarantines without a grace period. A new
    // witness after a quarantine ended is new evidence, and quarantines again for longer.
    if (fresh && !this.inForce(peer, now)) this.impose(peer, record, record.reason ?? '', now);
    return 'unauthenticated';
  }

  private remember(
    peer: PeerId,
    record: PeerRecord,
    key: string,
    file: string,
    error: DmpError,
    shared: boolean,
    now: number,
  ): void {
    const at = shared ? `/${key}` : key;
    if (record.failures.has(at) || record.failures.size >= MAX_FAILURES) return;
    // A file read during a quarantine (a command reading acks) waits for its end like the rest.
    const until = this.inForce(peer, now) ? (this.quarantines.get(peer)?.until ?? now) : now;
    record.failures.set(at, { file, shared, since: until, error: oneLine(error.message) });
  }

  /**
   * `names` is a fresh listing of `<peer>/<self>/` (or, `shared`, of `<peer>/`): failures of
   * files no longer there are forgotten. A file withdrawn (a ping given up, a transfer cancelled)
   * was never going to be repaired, and threatens nothing any more.
   */
  listed(peer: PeerId, names: readonly string[], options: FileOptions = {}): void {
    const record = this.peers.get(peer);
    if (!record || record.failures.size === 0) return;
    const shared = options.shared ?? false;
    let present: Set<string> | undefined;
    for (const [key, failure] of record.failures) {
      if (failure.shared !== shared) continue;
      present ??= new Set(names);
      if (!present.has(failure.file)) record.failures.delete(key);
    }
  }

  /** Quarantines `peer` when enough of its failures went unrepaired; says whether it did. */
  private judge(peer: PeerId, record: PeerRecord, now: number): boolean {
    if (record.failures.size === 0 || this.inForce(peer, now)) return false;
    let counted = 0;
    let last: Failure | undefined;
    for (const failure of record.failures.values()) {
      if (now - failure.since < REPAIR_GRACE_MS) continue;
      counted += 1;
      last = failure;
    }
    const needed = record.unauthenticated ? FAILURES_FOR_VERDICT : FAILURES_FOR_QUARANTINE;
    if (counted < needed || !last) return false;
    const reason = record.unauthenticated
      ? (record.reason ?? `${peer}'s files do not authenticate`)
      : `${counted} files of ${peer} fail authentication and no resend repaired them (${last.file}: ${last.error})`;
    this.impose(peer, record, reason, now);
    return true;
  }

  private impose(peer: PeerId, record: PeerRecord, reason: string, now: number): void {
    const previous = this.quarantines.get(peer);
    const level = previous && now - previous.until < FORGIVEN_AFTER_MS ? Math.min(MAX_LEVEL, previous.level + 1) : 1;
    const until = now + quarantineMs(level);
    const quarantine: QuarantineRecord = { reason: reason.slice(0, MAX_REASON_LENGTH), since: now, until, level };
    this.quarantines.set(peer, quarantine);
    this.unsaved.add(peer);
    this.ended.delete(peer);
    // What failed so far counts again only if it still fails a grace period after reading resumes.
    for (const failure of record.failures.values()) failure.since = until;
    this.components.logger.log('warn', 'peer-quarantined', {
      peer,
      reason: quarantine.reason,
      until: new Date(until).toISOString(),
      minutes: Math.round(quarantineMs(level) / 60_000),
      level,
    });
    for (const listener of this.quarantineListeners) listener({ peer, ...quarantine });
  }

  private inForce(peer: PeerId, now: number): boolean {
    const quarantine = this.quarantines.get(peer);
    return quarantine !== undefined && now < quarantine.until;
  }

  private markUnauthenticated(peer: PeerId, record: PeerRecord, reason: string): void {
    if (record.unauthenticated && record.reason === reason) return;
    record.unauthenticated = true;
    record.reason = reason;
    this.components.logger.log('warn', 'peer-unauthenticated', { peer, reason });
    for (const listener of this.listeners) listener(peer, reason);
  }

  /** `peer` is refused for a reason found elsewhere (its identity): reported once. */
  refuse(peer: PeerId, reason: string): void {
    const record = this.record(peer);
    record.authenticated = false;
    this.markUnauthenticated(peer, record, reason);
  }

  /**
   * Forgets what was judged of `peer` in this process: its identity was accepted anew. Its
   * quarantine stays: only the user lifts one (`lift`).
   */
  reset(peer: PeerId): void {
    this.peers.delete(peer);
  }

  /**
   * Ends `peer`'s quarantine now and forgets its level and every failure: the user's decision
   * (dmp unquarantine, or dmp trust --accept-new: new keys, a new start). Written by the next
   * `sync()`; other processes notice it there. Returns whether one was in force.
   */
  lift(peer: PeerId): boolean {
    const inForce = this.inForce(peer, this.components.clock.now());
    this.quarantines.delete(peer);
    this.ended.delete(peer);
    this.peers.delete(peer);
    this.unsaved.add(peer);
    if (inForce) this.components.logger.log('info', 'peer-quarantine-lifted', { peer });
    return inForce;
  }

  /** True when none of `peer`'s files authenticated and they fail as another key's would. */
  isUnauthenticated(peer: PeerId): boolean {
    return this.peers.get(peer)?.unauthenticated ?? false;
  }

  /** True once a file of `peer` has authenticated in this process. */
  hasAuthenticated(peer: PeerId): boolean {
    return this.peers.get(peer)?.authenticated ?? false;
  }

  /** Why `peer` is unauthenticated, if it is. */
  reason(peer: PeerId): string | undefined {
    return this.peers.get(peer)?.reason;
  }

  /** The quarantine `peer` is in now, if any. */
  quarantine(peer: PeerId): Quarantine | undefined {
    const quarantine = this.quarantines.get(peer);
    return quarantine && this.components.clock.now() < quarantine.until ? { peer, ...quarantine } : undefined;
  }

  /** Every quarantine in force now. */
  quarantined(): Quarantine[] {
    const now = this.components.clock.now();
    return [...this.quarantines]
      .filter(([, quarantine]) => now < quarantine.until)
      .map(([peer, quarantine]) => ({ peer, ...quarantine }));
  }

  /**
   * Whether the loop should read `peer`'s folder now: not while it is quarantined. Failures
   * that went unrepaired long enough are judged here, on every pass, since nothing else may
   * happen to them.
   */
  shouldLook(peer: PeerId): boolean {
    const now = this.components.clock.now();
    const quarantine = this.quarantines.get(peer);
    if (quarantine && now < quarantine.until) return false;
    if (quarantine && !this.ended.has(peer)) {
      this.ended.add(peer);
      this.components.logger.log('info', 'peer-quarantine-ended', { peer, level: quarantine.level });
    }
    const record = this.peers.get(peer);
    return !(record && this.judge(peer, record, now));
  }

  /** Reads the quarantines kept in DMP_HOME (at start: a restart does not lift them). */
  async load(): Promise<void> {
    if (!this.store) return;
    this.adopt(await this.store.read());
    this.lastRead = this.components.clock.now();
  }

  /**
   * Writes the quarantines that changed here, and while one is in force reads what other
   * processes wrote (at most every REREAD_MS: dmp unquarantine may have lifted it). The service
   * loop calls it on every pass; it costs nothing when there is nothing to do. A failure to
   * write is logged and tried again at the next call.
   */
  async sync(): Promise<void> {
    if (!this.store) return;
    const now = this.components.clock.now();
    const due = now - this.lastRead >= REREAD_MS && this.quarantined().length > 0;
    if (this.unsaved.size === 0 && !due) return;
    const unsaved = new Set(this.unsaved);
    this.unsaved.clear();
    try {
      const file =
        unsaved.size === 0
          ? await this.store.read()
          : await this.store.update((peer, stored) => {
              if (unsaved.has(peer)) {
                const mine = this.quarantines.get(peer);
                if (!mine) return undefined;
                // Another process may have quarantined it meanwhile, for longer: the longer stands.
                return stored && stored.until > mine.until ? stored : mine;
              }
              return stored && now - stored.until > FORGIVEN_AFTER_MS ? undefined : stored;
            }, unsaved);
      this.lastRead = now;
      this.lastSaveError = '';
      this.adopt(file);
    } catch (error) {
      for (const peer of unsaved) this.unsaved.add(peer);
      const message = (error as Error).message;
      if (message !== this.lastSaveError)
        this.components.logger.log('warn', 'quarantine-not-saved', { error: message });
      this.lastSaveError = message;
    }
  }

  /** Takes what DMP_HOME says of every peer whose quarantine did not change here since. */
  private adopt(file: QuarantineFile): void {
    const now = this.components.clock.now();
    for (const [peer, stored] of Object.entries(file) as [PeerId, QuarantineRecord][]) {
      if (this.unsaved.has(peer)) continue;
      const mine = this.quarantines.get(peer);
      if (mine && mine.since === stored.since && mine.until === stored.until) continue;
      if (mine && mine.until >= stored.until) continue;
      this.quarantines.set(peer, { ...stored });
      if (now < stored.until) this.ended.delete(peer);
      else this.ended.add(peer);
    }
    // Gone from the file: lifted by another process (or forgiven). A lift is the user's word
    // that the failures seen so far are dealt with: they no longer count here either.
    for (const [peer, quarantine] of [...this.quarantines]) {
      if (peer in file || this.unsaved.has(peer)) continue;
      this.quarantines.delete(peer);
      this.ended.delete(peer);
      if (now < quarantine.until) this.peers.get(peer)?.failures.clear();
    }
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').slice(0, 200);
}
