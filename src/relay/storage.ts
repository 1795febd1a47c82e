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

export interface ReadOptions {
  /** Read into this buffer when the content fits (the data is then a view of it). */
  buffer?: Buffer;
  /**
   * Refuse a file larger than this many bytes unread, with a BAD_ENTRY error (reason
   * 'too-large'): a sparse gigabyte named like a message then costs one stat. Default: no limit
   * of the caller's own; a file larger than the largest possible Buffer is always refused.
   */
  maxBytes?: number;
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

  /**
   * Creates this peer's folder when missing; fails with RELAY_MISSING or RELAY_READ_ONLY, or
   * BAD_ENTRY when `<self>` is a link or not a folder. Clears what an earlier process killed
   * while writing left behind.
   */
  open(): Promise<void>;

  /** Peers that have a folder in the relay (foreign entries ignored). */
  peers(): Promise<PeerId[]>;

  /**
   * Names of relay files in `<owner>/<dir>/` (empty when the folder does not exist, or is not a
   * real folder). Names that are not relay names (sync-tool temp files, conflict copies,
   * anything foreign) are skipped, and so are entries with a relay name that are not regular
   * files (links, FIFOs, folders, sockets). Fails with BAD_ENTRY when the folder cannot be read.
   */
  list(owner: PeerId, dir: PeerId): Promise<string[]>;

  /**
   * A file's content, or undefined when it does not exist (it may have just been removed).
   * Never blocks and never follows a link: an entry that is not a regular file reached without
   * links, that cannot be read, or that is larger than `maxBytes` fails with BAD_ENTRY (data
   * `{ path, reason }`), an error about that entry alone.
   */
  read(owner: PeerId, dir: PeerId, name: string, options?: ReadOptions): Promise<RelayRead | undefined>;

  /**
   * Atomically publishes files into `<self>/<dir>/`, replacing files of the same name. Writes
   * only into real folders: when `<self>` or `<self>/<dir>` is a link (or not a folder), fails
   * with BAD_ENTRY naming it and writes nothing.
   */
  publish(dir: PeerId, files: readonly RelayFile[], options?: PublishOptions): Promise<void>;

  /**
   * A file directly in `<relay>/<owner>/`, meant for every member of the relay (the peer's
   * identity; later its presence and broadcasts). The same rules as `read`.
   */
  readShared(owner: PeerId, name: string, options?: ReadOptions): Promise<RelayRead | undefined>;

  /** Names of relay files directly in `<relay>/<owner>/` (the same rules as `list`). */
  listShared(owner: PeerId): Promise<string[]>;

  /** Atomically publishes files directly into `<relay>/<self>/`, for every member to read. */
  publishShared(files: readonly RelayFile[], options?: PublishOptions): Promise<void>;

  /** Removes files from `<self>/<dir>/`. Missing files are fine; a linked folder is BAD_ENTRY. */
  remove(dir: PeerId, names: readonly string[]): Promise<void>;

  /** Removes files directly from `<self>/`. Missing files are fine. */
  removeShared(names: readonly string[]): Promise<void>;

  /** Bytes of relay files this peer holds in its folder (what counts against its quota). */
  usage(): Promise<number>;

  /** Reports changes in folders addressed to this peer, until the signal fires. */
  watch(options: WatchOptions): void;
}
