/**
 * The one authority on "this peer's files do not authenticate". Every service reports here each
 * file of a peer that authenticated or failed, and acts on the verdict it gets back; nothing
 * else counts failures or guesses at wrong keys.
 *
 * The rule (docs/PROTOCOL.md, "Authentication failures"):
 * - A failure from a peer one of whose files has authenticated is damage in transit (a sync
 *   glitch, or a forgery): the verdict is `damaged`, and the service asks for the file again.
 * - A peer none of whose files has ever authenticated, with well-formed tokens failing their
 *   HMAC in at least two distinct files (or versions of one file), is `unauthenticated`: it
 *   holds another key, or it is a stranger. It is reported once; its folder is then looked at
 *   with a back-off (1 s, doubling up to 5 min), so it costs the other peers nothing, until one
 *   of its files authenticates.
 * - Anything that is not a well-formed token failing its HMAC (truncated, bad base64, bad
 *   JSON) is damage, whoever wrote it: only a clean HMAC failure can mean another key.
 */
import type { Clock } from '../clock.js';
import { type DmpError, isDmpError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PeerId } from '../util/peer-id.js';

export type AuthVerdict = 'damaged' | 'unauthenticated';

/** Distinct failing files that make a never-authenticated peer `unauthenticated`. */
const FAILURES_FOR_VERDICT = 2;
const FIRST_BACKOFF_MS = 1000;
const LONGEST_BACKOFF_MS = 5 * 60_000;

interface PeerRecord {
  authenticated: boolean;
  /** Distinct `file@version` that failed their HMAC while nothing authenticated. */
  failures: Set<string>;
  unauthenticated: boolean;
  /** Back-off of an unauthenticated peer's folder. */
  nextLookAt: number;
  backoffMs: number;
  reason?: string;
}

export interface AuthGuardComponents {
  clock: Clock;
  logger: Logger;
}

export interface AuthGuardInit {
  /** Called once when a peer becomes unauthenticated (the CLI prints one line). */
  onUnauthenticated?: (peer: PeerId, reason: string) => void;
}

export class AuthGuard {
  private readonly peers = new Map<PeerId, PeerRecord>();
  private readonly listeners = new Set<(peer: PeerId, reason: string) => void>();

  constructor(
    private readonly components: AuthGuardComponents,
    init: AuthGuardInit = {},
  ) {
    if (init.onUnauthenticated) this.listeners.add(init.onUnauthenticated);
  }

  /** Subscribes to verdicts of `unauthenticated`; returns the unsubscribe function. */
  onUnauthenticated(listener: (peer: PeerId, reason: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private record(peer: PeerId): PeerRecord {
    let record = this.peers.get(peer);
    if (!record) {
      record = { authenticated: false, failures: new Set(), unauthenticated: false, nextLookAt: 0, backoffMs: 0 };
      this.peers.set(peer, record);
    }
    return record;
  }

  /** A file of `peer` authenticated: its later failures are damage, and its folder is read again. */
  authenticated(peer: PeerId): void {
    const record = this.record(peer);
    // Called for every file that opens: the common case must allocate nothing (clearing a Set
    // makes a new table, in the old generation for a long-lived Set).
    if (record.authenticated && !record.unauthenticated && record.failures.size === 0) return;
    if (record.unauthenticated) this.components.logger.log('info', 'peer-authenticated', { peer });
    record.authenticated = true;
    record.unauthenticated = false;
    record.failures.clear();
    record.backoffMs = 0;
    record.nextLookAt = 0;
    delete record.reason;
  }

  /**
   * A file of `peer` failed to open (an AUTH or PROTOCOL DmpError). Returns what to make of it;
   * the caller logs the file and asks for it again either way.
   */
  failed(peer: PeerId, file: string, version: string, error: DmpError): AuthVerdict {
    const record = this.record(peer);
    if (isDmpError(error, 'AUTH') && error.data.check === 'identity-pending') return 'damaged';
    if (isDmpError(error, 'AUTH') && error.data.check === 'identity') {
      // The sealer knows the peer's identity and does not accept it (changed, a stranger, not
      // verified under --strict): no file of it can be taken, whatever came before.
      record.authenticated = false;
      this.markUnauthenticated(peer, record, error.message);
      return 'unauthenticated';
    }
    if (record.authenticated) return 'damaged';
    const cleanMacFailure = isDmpError(error, 'AUTH') && error.data.check === 'mac';
    if (!cleanMacFailure) return record.unauthenticated ? 'unauthenticated' : 'damaged';
    record.failures.add(`${file}@${version}`);
    if (record.failures.size < FAILURES_FOR_VERDICT) return 'damaged';
    this.markUnauthenticated(peer, record, `${peer}'s files do not authenticate (another key, or a stranger?)`);
    return 'unauthenticated';
  }

  private markUnauthenticated(peer: PeerId, record: PeerRecord, reason: string): void {
    if (record.unauthenticated && record.reason === reason) return;
    record.unauthenticated = true;
    record.reason = reason;
    record.backoffMs = FIRST_BACKOFF_MS;
    record.nextLookAt = this.components.clock.now() + record.backoffMs;
    this.components.logger.log('warn', 'peer-unauthenticated', { peer, reason });
    for (const listener of this.listeners) listener(peer, reason);
  }

  /** `peer` is refused for a reason found elsewhere (its identity): reported once, backed off. */
  refuse(peer: PeerId, reason: string): void {
    const record = this.record(peer);
    record.authenticated = false;
    this.markUnauthenticated(peer, record, reason);
  }

  /** Forgets what was judged of `peer` (its identity was accepted anew): it starts afresh. */
  reset(peer: PeerId): void {
    this.peers.delete(peer);
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

  /**
   * Whether the loop should read `peer`'s folder now. An unauthenticated peer's folder is read
   * once per back-off period, whatever events say; each look that finds it still failing
   * doubles the period.
   */
  shouldLook(peer: PeerId): boolean {
    const record = this.peers.get(peer);
    if (!record?.unauthenticated) return true;
    const now = this.components.clock.now();
    if (now < record.nextLookAt) return false;
    record.backoffMs = Math.min(LONGEST_BACKOFF_MS, record.backoffMs * 2);
    record.nextLookAt = now + record.backoffMs;
    return true;
  }
}
