/**
 * Where a peer's settings come from: flags beat environment variables, which beat the config
 * file that `dmp init` wrote. DMP_HOME (or --home) isolates a peer completely.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from './clock.js';
import { decryptText, type FernetKey, generateKey, parseKey } from './crypto/fernet.js';
import { DmpError, errnoCode } from './errors.js';
import {
  decodeIdentity,
  fingerprint,
  IDENTITY_FILE,
  MAX_IDENTITY_FILE,
  type PublicIdentity,
} from './identity/document.js';
import { type IdentityKeys, loadIdentityKeys } from './identity/keys.js';
import { ownKeys, publishIdentity } from './identity/setup.js';
import { readJsonFile, writeJsonFile } from './local/files.js';
import { HomeLayout } from './local/home.js';
import { FolderRelay } from './relay/folder-relay.js';
import { type PeerId, parsePeerId } from './util/peer-id.js';
import { parseSize } from './util/size.js';

/** A folder served to the other peers by `dmp daemon` and `dftp serve` (the config's `serve`). */
export interface ServeConfig {
  dir: string;
  /** Only these peers. @default every peer whose identity is accepted */
  allow?: string[];
  allowPut?: boolean;
  allowDelete?: boolean;
  allowOverwrite?: boolean;
}

export interface ConfigFile {
  /** Accept nothing from peers that are not verified. */
  strict?: boolean;
  /** A folder to serve. */
  serve?: ServeConfig;
  relay?: string;
  id?: string;
  key?: string;
  keyFile?: string;
  pollMs?: number;
  quota?: number;
}

/** What the user gave on the command line; undefined means "not given". */
export interface ConfigFlags {
  relay?: string;
  id?: string;
  key?: string;
  keyFile?: string;
  home?: string;
  poll?: number;
  quota?: string;
  /** Accept nothing from unverified peers. */
  strict?: boolean;
  /** dmp init: replace a stored key, take an id, or start a relay whose identities the key does not open. */
  force?: boolean;
}

export interface ResolvedConfig {
  home: string;
  configPath: string;
  relay: string;
  id: string;
  key: string;
  pollMs?: number;
  quota?: number;
  strict: boolean;
  serve?: ServeConfig;
}

/** DMP_HOME: --home, then $DMP_HOME, then the XDG state dir. */
export function resolveHome(flags: ConfigFlags, env: NodeJS.ProcessEnv): { home: string; configPath: string } {
  const explicit = flags.home ?? env.DMP_HOME;
  if (explicit) return { home: explicit, configPath: join(explicit, 'config.json') };
  const state = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  const config = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return { home: join(state, 'dmp'), configPath: join(config, 'dmp', 'config.json') };
}

async function readKeyFile(path: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (error) {
    throw new DmpError('CONFIG', `cannot read key file ${path}: ${errnoCode(error) ?? (error as Error).message}`);
  }
}

export async function resolveConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedConfig> {
  const { home, configPath } = resolveHome(flags, env);
  const file = (await readJsonFile<ConfigFile>(configPath)) ?? {};
  const relay = flags.relay ?? env.DMP_RELAY ?? file.relay;
  const id = flags.id ?? env.DMP_ID ?? file.id;
  let key: string | undefined;
  if (flags.key !== undefined) key = flags.key;
  else if (flags.keyFile !== undefined) key = await readKeyFile(flags.keyFile);
  else if (env.DMP_KEY) key = env.DMP_KEY;
  else if (env.DMP_KEY_FILE) key = await readKeyFile(env.DMP_KEY_FILE);
  else if (file.key) key = file.key;
  else if (file.keyFile) key = await readKeyFile(file.keyFile);
  if (!relay) throw new DmpError('CONFIG', 'no relay folder: give --relay DIR, set DMP_RELAY, or run dmp init');
  if (!id) throw new DmpError('CONFIG', 'no peer id: give --id NAME, set DMP_ID, or run dmp init');
  if (!key) throw new DmpError('CONFIG', 'no relay key: give --key or --key-file, set DMP_KEY, or run dmp init');
  parsePeerId(id, 'id');
  parseKey(key);
  const pollText = flags.poll ?? (env.DMP_POLL ? Number(env.DMP_POLL) : undefined) ?? file.pollMs;
  let pollMs: number | undefined;
  if (pollText !== undefined) {
    pollMs = Number(pollText);
    if (!Number.isInteger(pollMs) || pollMs < 1)
      throw new DmpError('USAGE', `invalid poll interval '${pollText}' (ms)`);
  }
  const quota = flags.quota !== undefined ? parseSize(flags.quota, 'quota') : file.quota;
  const strict = flags.strict ?? (env.DMP_STRICT ? env.DMP_STRICT !== '0' : undefined) ?? file.strict ?? false;
  const serve = file.serve === undefined ? undefined : checkServeConfig(file.serve, configPath);
  return { home, configPath, relay, id, key, pollMs, quota, strict, ...(serve ? { serve } : {}) };
}

/** The config's `serve`, checked: a folder, peer ids, flags. */
function checkServeConfig(value: unknown, configPath: string): ServeConfig {
  const serve = value as Partial<ServeConfig> | null;
  const flag = (name: keyof ServeConfig) => serve?.[name] === undefined || typeof serve[name] === 'boolean';
  if (
    typeof serve !== 'object' ||
    serve === null ||
    typeof serve.dir !== 'string' ||
    serve.dir === '' ||
    (serve.allow !== undefined &&
      (!Array.isArray(serve.allow) || !serve.allow.every((peer) => typeof peer === 'string'))) ||
    !flag('allowPut') ||
    !flag('allowDelete') ||
    !flag('allowOverwrite')
  ) {
    throw new DmpError(
      'CONFIG',
      `${configPath}: serve must be {"dir": "...", "allow": ["peer", ...], "allowPut": true|false, "allowDelete": true|false, "allowOverwrite": true|false}`,
    );
  }
  for (const peer of serve.allow ?? []) parsePeerId(peer, 'peer');
  return {
    dir: serve.dir,
    ...(serve.allow === undefined ? {} : { allow: serve.allow }),
    ...(serve.allowPut === undefined ? {} : { allowPut: serve.allowPut }),
    ...(serve.allowDelete === undefined ? {} : { allowDelete: serve.allowDelete }),
    ...(serve.allowOverwrite === undefined ? {} : { allowOverwrite: serve.allowOverwrite }),
  };
}

export interface InitResult {
  configPath: string;
  home: string;
  key: string;
  /** True when init made the key (it must be shared with the other peers). */
  generated: boolean;
}

/**
 * Writes the config and creates the peer's folder in the relay. Safe to run again: given values
 * replace the stored ones, and a stored key is kept unless a new one is given.
 */
export async function initPeer(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): Promise<InitResult> {
  const { home, configPath } = resolveHome(flags, env);
  const existing = (await readJsonFile<ConfigFile>(configPath)) ?? {};
  const relay = flags.relay ?? env.DMP_RELAY ?? existing.relay;
  const id = flags.id ?? env.DMP_ID ?? existing.id;
  if (!relay) throw new DmpError('USAGE', 'dmp init needs --relay DIR');
  if (!id) throw new DmpError('USAGE', 'dmp init needs --id NAME');
  const peerId = parsePeerId(id, 'id');
  const config: ConfigFile = { ...existing, relay, id: peerId };
  let key: string;
  let generated = false;
  if (flags.keyFile !== undefined) {
    key = await readKeyFile(flags.keyFile);
    config.keyFile = flags.keyFile;
    delete config.key;
  } else if (flags.key !== undefined || env.DMP_KEY) {
    key = flags.key ?? env.DMP_KEY ?? '';
    config.key = key;
    delete config.keyFile;
  } else if (existing.key || existing.keyFile) {
    key = existing.key ?? (await readKeyFile(existing.keyFile ?? ''));
  } else {
    key = generateKey();
    config.key = key;
    generated = true;
  }
  const fernetKey = parseKey(key);
  key = fernetKey.text;
  const storedKey =
    existing.key ?? (existing.keyFile ? await readKeyFile(existing.keyFile).catch(() => undefined) : undefined);
  if (!flags.force && storedKey !== undefined && parseKey(storedKey).text !== key) {
    throw new DmpError('CONFIG', `${configPath} already holds another relay key: give --force to replace it`);
  }
  const layout = new HomeLayout(home, peerId);
  const folder = new FolderRelay({ root: relay, self: peerId });
  const clock = systemClock;
  const keys = await loadIdentityKeys(layout.identityKeys);
  if (!flags.force) await checkRelayWelcomes(folder, peerId, fernetKey, keys);
  await folder.open();
  await publishIdentity(
    { self: peerId, home: layout, relay: folder, clock },
    fernetKey,
    keys ?? (await ownKeys({ home: layout, clock })),
  );
  await writeJsonFile(configPath, config, 0o600);
  return { configPath, home, key, generated };
}

/**
 * `dmp init` must not break a relay: a key that opens none of the identities already there is
 * most likely mistyped, and an id whose identity is another's would make two machines write
 * one folder. Both are refused unless the user says --force.
 */
async function checkRelayWelcomes(
  relay: FolderRelay,
  self: PeerId,
  key: FernetKey,
  keys: IdentityKeys | undefined,
): Promise<void> {
  const closed: string[] = [];
  let opened = 0;
  for (const peer of await relay.peers().catch(() => [] as PeerId[])) {
    const read = await relay.readShared(peer, IDENTITY_FILE, { maxBytes: MAX_IDENTITY_FILE }).catch(() => undefined);
    if (!read) continue;
    let identity: PublicIdentity;
    try {
      identity = decodeIdentity(decryptText(key, read.data), peer);
    } catch {
      closed.push(peer);
      continue;
    }
    opened += 1;
    const ours =
      keys !== undefined && (identity.sign === keys.sign.public || identity.previous?.sign === keys.sign.public);
    if (peer === self && !ours) {
      throw new DmpError(
        'CONFIG',
        `the id ${self} is taken in this relay by another identity (fingerprint ${fingerprint(identity)}): choose another --id, or give --force on the machine that takes it over`,
      );
    }
  }
  if (opened === 0 && closed.length > 0) {
    throw new DmpError(
      'CONFIG',
      `this key does not open the identities of ${closed.slice(0, 5).join(', ')}${closed.length > 5 ? ', ...' : ''} in this relay: wrong key? (--force starts a new relay anyway)`,
    );
  }
}
