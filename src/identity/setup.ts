/**
 * This peer's own identity: made on first use (`dmp init`, or the first run of an older home),
 * kept in DMP_HOME, and published in the relay as `<relay>/<self>/identity.dmp`, sealed under
 * the relay key and signed by itself.
 */
import type { Clock } from '../clock.js';
import { decryptText, encryptText, type FernetKey } from '../crypto/fernet.js';
import type { HomeLayout } from '../local/home.js';
import { withLock } from '../local/lock.js';
import type { RelayStorage } from '../relay/storage.js';
import type { PeerId } from '../util/peer-id.js';
import { decodeIdentity, encodeIdentity, IDENTITY_FILE, MAX_IDENTITY_FILE } from './document.js';
import {
  generateIdentityKeys,
  type IdentityKeys,
  loadIdentityKeys,
  rotateIdentityKeys,
  saveIdentityKeys,
} from './keys.js';

export interface OwnIdentityComponents {
  self: PeerId;
  home: HomeLayout;
  relay: RelayStorage;
  clock: Clock;
}

/** Loads this peer's keys, making and storing them (mode 600) the first time. */
export async function ownKeys(components: Pick<OwnIdentityComponents, 'home' | 'clock'>): Promise<IdentityKeys> {
  const { home, clock } = components;
  // The usual case reads the file; only making the keys needs the lock (two first runs at once).
  const stored = await loadIdentityKeys(home.identityKeys);
  if (stored) return stored;
  return withLock(home.lock('identity'), async () => {
    const existing = await loadIdentityKeys(home.identityKeys);
    if (existing) return existing;
    const keys = generateIdentityKeys(clock.now());
    await saveIdentityKeys(home.identityKeys, keys);
    return keys;
  });
}

/** Publishes this peer's identity unless the relay already holds this very one. */
export async function publishIdentity(
  components: OwnIdentityComponents,
  relayKey: FernetKey,
  keys: IdentityKeys,
): Promise<void> {
  const { relay, self } = components;
  const read = await relay.readShared(self, IDENTITY_FILE, { maxBytes: MAX_IDENTITY_FILE }).catch(() => undefined);
  if (read) {
    try {
      const published = decodeIdentity(decryptText(relayKey, read.data), self);
      if (published.sign === keys.sign.public && published.exchange === keys.exchange.public) return;
    } catch {
      // Damaged, or sealed under another key: publish ours again.
    }
  }
  await relay.publishShared([{ name: IDENTITY_FILE, data: encryptText(relayKey, encodeIdentity(self, keys)) }]);
}

/** New key pairs, stored, and published signed by the old key, so peers follow without alarm. */
export async function rotateOwnIdentity(components: OwnIdentityComponents, relayKey: FernetKey): Promise<IdentityKeys> {
  const { home, clock } = components;
  const keys = await withLock(home.lock('identity'), async () => {
    const current = (await loadIdentityKeys(home.identityKeys)) ?? generateIdentityKeys(clock.now());
    const rotated = rotateIdentityKeys(current, clock.now());
    await saveIdentityKeys(home.identityKeys, rotated);
    return rotated;
  });
  await publishIdentity(components, relayKey, keys);
  return keys;
}
