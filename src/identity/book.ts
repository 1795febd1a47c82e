/**
 * The identities of the relay's members as this peer sees them: each read from
 * `<relay>/<peer>/identity.dmp` (sealed under the relay key, self-signed), judged against the
 * trust store, and turned into the pair keys that seal everything between this peer and that
 * one. Pair keys are derived once per identity and cached.
 */
import type { Clock } from '../clock.js';
import { decryptText, type FernetKey, parseKey } from '../crypto/fernet.js';
import { DmpError, isDmpError } from '../errors.js';
import type { HomeLayout } from '../local/home.js';
import type { Logger } from '../log.js';
import type { RelayStorage } from '../relay/storage.js';
import type { PeerId } from '../util/peer-id.js';
import { decodeIdentity, fingerprint, IDENTITY_FILE, MAX_IDENTITY_FILE, type PublicIdentity } from './document.js';
import { derivePairKey, type IdentityKeys } from './keys.js';
import { evaluate, type TrustRecord, TrustStore } from './trust.js';

/**
 * Where a peer stands:
 * - pinned / verified: its identity is known and accepted; its files open with the pair key.
 * - unverified: pinned, but `strict` accepts only verified peers.
 * - changed: a different identity appeared under a known id; nothing is accepted from it.
 * - stranger: its identity does not open with the relay key, or is not signed by itself.
 * - unknown: no identity file (yet: sync may bring it; or a peer of protocol version 1).
 */
export type Standing = 'pinned' | 'verified' | 'unverified' | 'changed' | 'stranger' | 'unknown';

export interface PeerIdentity {
  peer: PeerId;
  standing: Standing;
  /** Why it is not accepted, in one line. */
  reason?: string;
  /** The accepted identity's fingerprint. */
  fingerprint?: string;
  /** For `changed`: the fingerprint of the identity that appeared. */
  newFingerprint?: string;
}

export interface IdentityBookComponents {
  self: PeerId;
  relay: RelayStorage;
  home: HomeLayout;
  clock: Clock;
  logger: Logger;
}

export interface IdentityBookInit {
  /** The relay key: opens identity files. */
  relayKey: FernetKey;
  /** This peer's keys. */
  keys: IdentityKeys;
  /** Accept only verified peers. @default false */
  strict?: boolean;
  /** How often a peer's identity file is read again when nothing asks sooner, ms. @default 2000 */
  refreshMs?: number;
}

interface Entry {
  identity?: PeerIdentity;
  version?: string;
  checkedAt: number;
  /** Keys to open with, newest first; the first seals. Derived from `record` when needed. */
  keys?: FernetKey[];
  /** The accepted trust record the keys come from. */
  record?: TrustRecord;
}

const usable = (standing: Standing) => standing === 'pinned' || standing === 'verified';

export class IdentityBook {
  private readonly entries = new Map<PeerId, Entry>();
  private readonly trust: TrustStore;
  private readonly listeners = new Set<(identity: PeerIdentity) => void>();
  private keys: IdentityKeys;

  constructor(
    private readonly components: IdentityBookComponents,
    private readonly init: IdentityBookInit,
  ) {
    this.trust = new TrustStore(components.home);
    this.keys = init.keys;
  }

  /** Hears when a peer's standing changes (becomes usable, changed, a stranger). */
  onChange(listener: (identity: PeerIdentity) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** This peer rotated its keys: pair keys are derived again. */
  rekey(keys: IdentityKeys): void {
    this.keys = keys;
    for (const entry of this.entries.values()) delete entry.keys;
  }

  /**
   * Reads `peer`'s identity file again (at most every refreshMs unless forced) and judges it.
   * Returns where the peer stands.
   */
  async refresh(peer: PeerId, force = false): Promise<PeerIdentity> {
    const { relay, clock } = this.components;
    const entry = this.entries.get(peer) ?? { checkedAt: Number.NEGATIVE_INFINITY };
    this.entries.set(peer, entry);
    if (!force && entry.identity && clock.now() - entry.checkedAt < (this.init.refreshMs ?? 2000))
      return entry.identity;
    entry.checkedAt = clock.now();
    let read: Awaited<ReturnType<RelayStorage['readShared']>>;
    try {
      read = await relay.readShared(peer, IDENTITY_FILE, { maxBytes: MAX_IDENTITY_FILE });
    } catch (error) {
      if (!isDmpError(error, 'BAD_ENTRY')) throw error;
      return this.settle(peer, entry, undefined, { peer, standing: 'stranger', reason: error.message });
    }
    if (read === undefined) {
      return this.settle(peer, entry, undefined, {
        peer,
        standing: 'unknown',
        reason: `${peer} has no identity in the relay (not synced yet, or an older dmp)`,
      });
    }
    // The trust store may have changed under us (dmp trust, dmp verify in another process).
    const stored = (await this.trust.read())[peer];
    const versionOf = (record: TrustRecord | undefined) =>
      `${read.version}|${JSON.stringify(record ?? null)}|${this.init.strict ? 1 : 0}`;
    if (entry.version === versionOf(stored) && entry.identity) return entry.identity;
    let identity: PublicIdentity;
    try {
      identity = decodeIdentity(decryptText(this.init.relayKey, read.data), peer);
    } catch (error) {
      if (!isDmpError(error)) throw error;
      const reason =
        error.code === 'AUTH'
          ? `${peer}'s identity does not open with this relay key (another key, or a stranger)`
          : `${peer}'s identity is not valid: ${error.message}`;
      return this.settle(peer, entry, versionOf(stored), { peer, standing: 'stranger', reason });
    }
    const judged = evaluate(stored, identity, clock.now());
    let next = judged.record;
    if (JSON.stringify(next) !== JSON.stringify(stored)) {
      next = (await this.trust.update(peer, (current) => evaluate(current, identity, clock.now()).record)) ?? next;
    }
    if (judged.evaluation === 'rotated') this.components.logger.log('info', 'identity-rotated', { peer });
    entry.record = next;
    return this.settle(peer, entry, versionOf(next), this.standingOf(peer, next));
  }

  private standingOf(peer: PeerId, record: TrustRecord): PeerIdentity {
    const current = fingerprint(record);
    if (record.changed) {
      return {
        peer,
        standing: 'changed',
        fingerprint: current,
        newFingerprint: fingerprint(record.changed),
        reason: `${peer}'s identity changed (now ${fingerprint(record.changed)}, was ${current}): nothing from ${peer} is accepted until you run dmp trust ${peer} --accept-new`,
      };
    }
    if (this.init.strict && record.state !== 'verified') {
      return {
        peer,
        standing: 'unverified',
        fingerprint: current,
        reason: `${peer} is not verified (strict): compare fingerprints, then dmp verify ${peer} FINGERPRINT`,
      };
    }
    return { peer, standing: record.state, fingerprint: current };
  }

  private settle(peer: PeerId, entry: Entry, version: string | undefined, identity: PeerIdentity): PeerIdentity {
    const before = entry.identity;
    entry.identity = identity;
    entry.version = version;
    // Keys stay while the same identity stays accepted: work in flight keeps sealing with them.
    if (!usable(identity.standing) || before?.fingerprint !== identity.fingerprint) delete entry.keys;
    if (before?.standing !== identity.standing || before?.reason !== identity.reason) {
      if (!usable(identity.standing) && identity.standing !== 'unknown') {
        this.components.logger.log('warn', 'identity-refused', {
          peer,
          standing: identity.standing,
          reason: identity.reason,
        });
      }
      for (const listener of this.listeners) listener(identity);
    }
    return identity;
  }

  /** Where `peer` stands, from the last refresh (undefined before any). */
  standing(peer: PeerId): PeerIdentity | undefined {
    return this.entries.get(peer)?.identity;
  }

  /**
   * Makes `peer`'s keys ready (reading its identity when due) and returns where it stands. The
   * node calls this before every look at the peer's folder; commands call it before they act.
   */
  async prepare(peer: PeerId, force = false): Promise<PeerIdentity> {
    return this.refresh(peer, force);
  }

  /**
   * Keys that open `peer`'s files, newest first (the first one seals), as prepared. Throws an
   * AUTH DmpError (data.check 'identity', or 'identity-pending' while no identity is known)
   * when the peer's identity is not accepted.
   */
  keysFor(peer: PeerId): FernetKey[] {
    const entry = this.entries.get(peer);
    if (entry?.keys) return entry.keys;
    const identity = entry?.identity;
    if (entry?.record && identity && usable(identity.standing)) {
      entry.keys = this.derive(peer, entry.record);
      return entry.keys;
    }
    const pending = identity === undefined || identity.standing === 'unknown' || usable(identity.standing);
    throw new DmpError('AUTH', identity?.reason ?? `${peer}'s identity is not known yet`, {
      data: { peer, check: pending ? 'identity-pending' : 'identity', standing: identity?.standing ?? 'unknown' },
    });
  }

  private derive(peer: PeerId, record: TrustRecord): FernetKey[] {
    const own = this.keys;
    const mine = [own.exchange, ...(own.previous ? [own.previous.exchange] : [])];
    const theirs = [record.exchange, ...(record.previous ? [record.previous.exchange] : [])];
    const keys: FernetKey[] = [];
    // Current with current first: it seals. The others open what was sealed before a rotation.
    for (const their of theirs) {
      for (const exchange of mine) {
        keys.push(parseKey(derivePairKey({ id: this.components.self, exchange }, { id: peer, exchange: their })));
      }
    }
    return keys;
  }

  /** The sign key of `peer`'s accepted identity (base64url), to check what it signs; undefined when not accepted. */
  signKeyOf(peer: PeerId): string | undefined {
    const entry = this.entries.get(peer);
    return entry?.identity && usable(entry.identity.standing) ? entry.record?.sign : undefined;
  }

  /** The pair key with `peer` in its text form (dmp pair-key), for Python and other tools. */
  async pairKey(peer: PeerId): Promise<string> {
    await this.prepare(peer, true);
    const [key] = this.keysFor(peer);
    if (!key) throw new DmpError('AUTH', `no pair key with ${peer}`);
    return key.text;
  }
}
