/**
 * What this peer believes about the others' identities (DMP_HOME/state/<self>/trust.json):
 * trust on first use, as SSH and Signal do. The first identity seen under an id is pinned; a
 * user who compared fingerprints marks it verified; a different identity under a known id is
 * `changed` and nothing from it is accepted until the user accepts it. A rotation signed by the
 * pinned key is followed silently.
 */
import { timingSafeEqual } from 'node:crypto';
import { readJsonFile, writeJsonFile } from '../local/files.js';
import type { HomeLayout } from '../local/home.js';
import { withLock } from '../local/lock.js';
import type { PeerId } from '../util/peer-id.js';
import { fingerprint, type PublicIdentity } from './document.js';

export interface PinnedKeys {
  sign: string;
  exchange: string;
}

export interface TrustRecord extends PinnedKeys {
  serial: number;
  state: 'pinned' | 'verified';
  /** When this identity was first pinned, ms since the epoch. */
  since: number;
  /** Keys before an accepted rotation: files sealed with them still open. */
  previous?: PinnedKeys;
  /** A different identity seen under this id and not accepted. */
  changed?: PinnedKeys & { serial: number; seenAt: number };
}

export type TrustFile = Record<string, TrustRecord>;

export type Evaluation = 'same' | 'pinned' | 'rotated' | 'changed';

const sameKeys = (a: PinnedKeys, b: PinnedKeys) => a.sign === b.sign && a.exchange === b.exchange;

/** What an identity read from the relay means against what was pinned; returns the new record. */
export function evaluate(
  record: TrustRecord | undefined,
  identity: PublicIdentity,
  now: number,
): { evaluation: Evaluation; record: TrustRecord } {
  const keys = { sign: identity.sign, exchange: identity.exchange };
  if (record === undefined) {
    return { evaluation: 'pinned', record: { ...keys, serial: identity.serial, state: 'pinned', since: now } };
  }
  if (sameKeys(record, keys)) {
    const { changed: _dropped, ...rest } = record;
    return { evaluation: 'same', record: { ...rest, serial: Math.max(record.serial, identity.serial) } };
  }
  if (identity.previous && sameKeys(record, identity.previous) && identity.serial > record.serial) {
    // Signed by the key we pinned (decodeIdentity checked the countersignature): follow it.
    return {
      evaluation: 'rotated',
      record: {
        ...keys,
        serial: identity.serial,
        state: record.state,
        since: record.since,
        previous: identity.previous,
      },
    };
  }
  if (record.previous && sameKeys(record.previous, keys)) {
    // A stale copy of the identity before the rotation we already followed.
    return { evaluation: 'same', record };
  }
  // The same replacement seen again is not news: keep when it was first seen.
  if (record.changed && sameKeys(record.changed, keys)) return { evaluation: 'changed', record };
  return { evaluation: 'changed', record: { ...record, changed: { ...keys, serial: identity.serial, seenAt: now } } };
}

/** Fingerprints compared in constant time (a user's input against a pinned key). */
export function sameFingerprint(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function recordFingerprint(record: PinnedKeys): string {
  return fingerprint(record);
}

export class TrustStore {
  constructor(private readonly home: HomeLayout) {}

  private get path(): string {
    return this.home.trust;
  }

  async read(): Promise<TrustFile> {
    return (await readJsonFile<TrustFile>(this.path)) ?? {};
  }

  /** Read-modify-write under a lock: the daemon and a command may pin at the same time. */
  async update(
    peer: PeerId,
    change: (record: TrustRecord | undefined) => TrustRecord | undefined,
  ): Promise<TrustRecord | undefined> {
    return withLock(this.home.lock('trust'), async () => {
      const file = await this.read();
      const next = change(file[peer]);
      if (next === undefined) delete file[peer];
      else file[peer] = next;
      await writeJsonFile(this.path, file, 0o600);
      return next;
    });
  }
}
