/**
 * The relay storage interface: the only door between the protocol and the shared folder.
 *
 * Layout (docs/PROTOCOL.md): `<relay>/<owner>/<dir>/<name>`, where `owner` is the peer that
 * writes the file and `dir` is the peer it is meant for. A peer writes only under its own
 * `<relay>/<self>/` and only reads the folders of others.
 *
 * Implementations: FolderRelay (a real folder, src/relay/folder-relay.ts) and MemoryRelay with
 * SimulatedSync (src/relay/memory-relay.ts, for tests). test/relay/storage-contract.ts runs one
 * contract suite against both.
 */
import type { PeerId } from '../util/peer-id.js';

/** A relay file name: portable (lowercase, digits, '-'), one fixed extension, short. */
export const RELAY_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}\.(dmp|dfc)$/;

export function isRelayName(name: string): boolean {
  return RELAY_NAME_PATTERN.test(name);
}

export interface RelayRead {
  readonly data: Buffer;
  /** Changes whenever the file is replaced; lets readers skip a bad file until it is republished. */
  readonly version: string;
}

export interface RelayFile {
  readonly name: string;
  readonly data: Uint8Array | string;
}

export interface PublishOptions {
  /**
   * Fsync the file and its directory before resolving (default true). Only ephemeral files
   * (ping, pong) skip it: losing one in a crash costs nothing.
   */
  durable?: boolean;
}

/** Something may have changed in `<relay>/<owner>/<dir>/`. `name` is set when it is known. */
export interface RelayChange {
  readonly owner: PeerId;
  readonly dir: PeerId;
  readonly name?: string;
}

export interface WatchOptions {
  signal: AbortSignal;
  /** Called for every change seen, and with `null` on every periodic full rescan. */
  onChange: (change: RelayChange | null) => void;
}

export interface RelayStorage {
  /** The peer this storage writes as. */
  readonly self: PeerId;

  /** Creates this peer's folder when missing; fails with RELAY_MISSING or RELAY_READ_ONLY. */
  open(): Promise<void>;

  /** Peers that have a folder in the relay (foreign entries ignored). */
  peers(): Promise<PeerId[]>;

  /**
   * Names of relay files in `<owner>/<dir>/` (empty when the folder does not exist). Names that
   * are not relay names (sync-tool temp files, conflict copies, anything foreign) are skipped.
   */
  list(owner: PeerId, dir: PeerId): Promise<string[]>;

  /**
   * A file's content, or undefined when it does not exist (it may have just been removed). With
   * `buffer`, the content is read into it when it fits (the data is then a view of it).
   */
  read(owner: PeerId, dir: PeerId, name: string, options?: { buffer?: Buffer }): Promise<RelayRead | undefined>;

  /** Atomically publishes files into `<self>/<dir>/`, replacing files of the same name. */
  publish(dir: PeerId, files: readonly RelayFile[], options?: PublishOptions): Promise<void>;

  /** Removes files from `<self>/<dir>/`. Missing files are fine. */
  remove(dir: PeerId, names: readonly string[]): Promise<void>;

  /** Bytes of relay files this peer holds in its folder (what counts against its quota). */
  usage(): Promise<number>;

  /** Reports changes in folders addressed to this peer, until the signal fires. */
  watch(options: WatchOptions): void;
}
