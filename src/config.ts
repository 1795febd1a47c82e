/**
 * Where a peer's settings come from: flags beat environment variables, which beat the config
 * file that `dmp init` wrote. DMP_HOME (or --home) isolates a peer completely.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { generateKey, parseKey } from './crypto/fernet.js';
import { DmpError, errnoCode } from './errors.js';
import { readJsonFile, writeJsonFile } from './local/files.js';
import { FolderRelay } from './relay/folder-relay.js';
import { parsePeerId } from './util/peer-id.js';
import { parseSize } from './util/size.js';

export interface ConfigFile {
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
}

export interface ResolvedConfig {
  home: string;
  configPath: string;
  relay: string;
  id: string;
  key: string;
  pollMs?: number;
  quota?: number;
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
  return { home, configPath, relay, id, key, pollMs, quota };
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
  key = parseKey(key).text;
  await new FolderRelay({ root: relay, self: peerId }).open();
  await writeJsonFile(configPath, config, 0o600);
  return { configPath, home, key, generated };
}
