/**
 * The relay as a real folder kept in sync by something else (Dropbox, Syncthing, an NFS share).
 * This is the only module that touches the relay on disk.
 */
import { constants as bufferConstants } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  type Dir,
  type Dirent,
  type FSWatcher,
  fstatSync,
  watch as fsWatch,
  lstatSync,
  openSync,
  read as readCallback,
  readdirSync,
  readSync,
  realpathSync,
  renameSync,
  type Stats,
  writeFileSync,
} from 'node:fs';
import { type FileHandle, lstat, mkdir, open, opendir, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import type { FSWatcher as ChokidarWatcher } from 'chokidar';
import { type Cancel, type Clock, every, systemClock } from '../clock.js';
import { DmpError, errnoCode } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { isPeerId, type PeerId } from '../util/peer-id.js';
import { badEntry, entryError, relayError } from './errno.js';
import {
  isRelayName,
  type PublishOptions,
  type ReadOptions,
  type RelayChange,
  type RelayFile,
  type RelayRead,
  type RelayStorage,
  type WatchOptions,
} from './storage.js';

/**
 * chokidar drops a 'change' of a path within 50 ms of the previous one; in polling mode every
 * change is reported once more this long after the last (see watchPolling()).
 */
const FOLLOW_UP_MS = 60;

/** Staging files older than this were left by a process that died while writing them. */
const STALE_STAGING_MS = 10 * 60_000;
/** What stagingName() makes: `.<relay name>.<12 hex>.tmp` (the relay name is checked apart). */
const STAGING_NAME = /^\.(.+)\.[0-9a-f]{12}\.tmp$/;
/** The name of open()'s write probe in `<self>/`. */
const PROBE_NAME = /^\.probe-[0-9a-f]{12}\.tmp$/;

/** Files up to this size are read, and written when not durable, with synchronous calls. */
const SMALL_FILE = 16 * 1024;

/** The largest file a read can hold at all; anything larger is refused unread. */
const MAX_BUFFER = bufferConstants.MAX_LENGTH;

/** Opening for reading: no link followed, no wait on a FIFO (the flags do not exist on Windows). */
const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

const readAsync = promisify(readCallback);

/** What a path inside the relay is, seen without following links. */
interface FolderState {
  readonly state: 'folder' | 'missing' | 'link' | 'not-a-folder' | 'unreadable';
  readonly path: string;
}

export interface FolderRelayOptions {
  /** The shared folder. */
  root: string;
  /** The peer this process writes as. */
  self: PeerId;
  /**
   * Where files are written before they are renamed into the relay. Must be on the relay's file
   * system. Default: dot-names inside this peer's own relay folder, which readers and sync tools
   * skip. openFolderRelay() picks a temp folder in DMP_HOME when it shares the relay's device, so
   * that sync tools never see a half-written file at all.
   */
  tempDir?: string;
  /** Poll every this many ms instead of native events (network shares). Default: native events. */
  pollMs?: number;
  /** Full rescan interval in ms, in every mode, so a missed event only delays. Default 2000. */
  rescanMs?: number;
  /** Default: silent. */
  logger?: Logger;
  /**
   * Every timer (the rescan, the follow-up reports) and the age of stale staging files go
   * through it, so tests run them on a ManualClock. Default: systemClock.
   */
  clock?: Clock;
}

export class FolderRelay implements RelayStorage {
  readonly self: PeerId;
  readonly root: string;
  private readonly tempDir: string | undefined;
  private readonly pollMs: number | undefined;
  private readonly rescanMs: number;
  private readonly logger: Logger;
  private readonly clock: Clock;
  /** Foreign names already reported, so the debug log says each once. */
  private readonly foreignSeen = new Set<string>();

  constructor(options: FolderRelayOptions) {
    this.root = options.root;
    this.self = options.self;
    this.tempDir = options.tempDir;
    this.pollMs = options.pollMs;
    this.rescanMs = options.rescanMs ?? 2000;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
  }

  private ownDir(dir?: PeerId): string {
    return dir === undefined ? join(this.root, this.self) : join(this.root, this.self, dir);
  }

  async open(): Promise<void> {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(this.root);
    } catch (error) {
      throw new DmpError('RELAY_MISSING', `relay folder ${this.root} does not exist`, { cause: error });
    }
    if (!info.isDirectory()) throw new DmpError('RELAY_MISSING', `relay ${this.root} is not a folder`);
    const own = await this.ownFolder();
    // Probe with a real write: permission bits say nothing when running as root or on a
    // read-only mount.
    const probe = join(own, `.probe-${randomBytes(6).toString('hex')}.tmp`);
    try {
      const handle = await open(probe, 'wx');
      await handle.close();
      await unlink(probe);
    } catch (error) {
      throw relayError(error, 'write in', own);
    }
    await this.removeStaleStaging(own);
  }

  /**
   * A process killed during a write leaves its staging file behind, in the staging folder or as
   * a dot-name in this peer's own relay folders, for ever (a 1 MiB chunk each). Removes those
   * older than STALE_STAGING_MS: only regular files with this module's own staging names, never
   * anything else, and never in the folders of other peers. Best effort: nothing here fails
   * open().
   */
  private async removeStaleStaging(own: string): Promise<void> {
    const before = this.clock.now() - STALE_STAGING_MS;
    // open() probes in <self>/; publish stages in the staging folder or in <self>/<dir>/.
    const folders: [string, (name: string) => boolean][] = [[own, (name) => PROBE_NAME.test(name)]];
    if (this.tempDir !== undefined) folders.push([this.tempDir, isStagingName]);
    const entries = await readdir(own, { withFileTypes: true }).catch(() => [] as Dirent[]);
    for (const entry of entries) {
      if (entry.isDirectory() && isPeerId(entry.name)) folders.push([join(own, entry.name), isStagingName]);
    }
    let removed = 0;
    for (const [folder, ours] of folders) {
      const names = await readdir(folder, { withFileTypes: true }).catch(() => [] as Dirent[]);
      for (const entry of names) {
        if (!entry.isFile() || !ours(entry.name)) continue;
        const path = join(folder, entry.name);
        try {
          const info = await lstat(path);
          if (!info.isFile() || info.mtimeMs >= before) continue;
          await unlink(path);
          removed += 1;
          this.logger.log('debug', 'stale-staging-removed', { path });
        } catch {
          // Gone already, or not ours to remove after all: leave it.
        }
      }
    }
    if (removed > 0) this.logger.log('info', 'stale-staging-removed', { count: removed });
  }

  /**
   * `<root>/<self>`, or `<root>/<self>/<dir>`, made when missing, after checking (lstat) that
   * each is a real folder. A link there was put by someone else (a sync tool brings in what any
   * device writes): writing through it would put this peer's files wherever it points, so it
   * is refused, for that folder only. Never recursive: when the relay itself is gone (an
   * unmounted share), creating it again would write into the bare mount point, where nothing
   * reaches the peers.
   */
  private async ownFolder(dir?: PeerId): Promise<string> {
    const parts = dir === undefined ? [this.self] : [this.self, dir];
    let path = this.root;
    for (const part of parts) {
      path = join(path, part);
      for (;;) {
        let info: Stats | undefined;
        try {
          info = lstatSync(path, { throwIfNoEntry: false });
        } catch (error) {
          throw relayError(error, 'write in', path);
        }
        if (info?.isSymbolicLink()) throw badEntry(path, 'link', { what: 'write in' });
        if (info !== undefined && !info.isDirectory()) throw badEntry(path, 'not-a-folder', { what: 'write in' });
        if (info !== undefined) break;
        try {
          await mkdir(path);
          break;
        } catch (error) {
          // Made at the same moment by another process of this peer: look at it again.
          if (errnoCode(error) !== 'EEXIST') throw relayError(error, 'create', path);
        }
      }
    }
    return path;
  }

  async peers(): Promise<PeerId[]> {
    let entries: Dirent[];
    try {
      entries = await readdir(this.root, { withFileTypes: true });
    } catch (error) {
      throw relayError(error, 'list', this.root);
    }
    // A peer is a real folder. A file with a peer-like name is foreign, and so is a link: its
    // files would be read from wherever it points, outside the relay.
    const peers: PeerId[] = [];
    for (const entry of entries) {
      if (!isPeerId(entry.name)) continue;
      if (entry.isDirectory()) peers.push(entry.name);
      else this.noteForeign(entry.name, entry);
    }
    return peers.sort();
  }

  list(owner: PeerId, dir: PeerId): Promise<string[]> {
    return this.listIn([owner, dir]);
  }

  listShared(owner: PeerId): Promise<string[]> {
    return this.listIn([owner]);
  }

  private async listIn(parts: readonly string[]): Promise<string[]> {
    const folder = this.folderState(parts);
    switch (folder.state) {
      case 'folder':
        break;
      case 'missing':
        return [];
      case 'unreadable':
        throw badEntry(folder.path, 'unreadable', { what: 'list' });
      default:
        // A link or a file where the folder should be: nothing published for us is there.
        this.noteForeign(relative(this.root, folder.path), folder.state);
        return [];
    }
    // Entries are taken a batch at a time, not as one array of every entry: a backlog of
    // 100,000 files then costs the names kept, not 100,000 directory entries besides.
    let folderHandle: Dir;
    try {
      folderHandle = await opendir(folder.path, { bufferSize: 256 });
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw entryError(error, 'list', folder.path);
    }
    const accepted: string[] = [];
    try {
      for (;;) {
        // Buffered: one trip to the thread pool per 256 entries, never a blocked event loop.
        const entry = await folderHandle.read();
        if (entry === null) break;
        // Only regular files: a link, FIFO, socket or folder carrying a relay name is foreign,
        // whatever it points to, and reading it could leave the relay or block.
        if (isRelayName(entry.name) && entry.isFile()) accepted.push(entry.name);
        // A peer's own sub-folders (one per reader) are not files of its shared folder.
        else if (!(parts.length === 1 && entry.isDirectory() && isPeerId(entry.name)))
          this.noteForeign(join(...parts, entry.name), entry);
      }
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw entryError(error, 'list', folder.path);
    } finally {
      await folderHandle.close().catch(() => {});
    }
    return accepted;
  }

  /** Logs a foreign entry at debug level, once per path and kind. */
  private noteForeign(path: string, kind: Dirent | FolderState['state']): void {
    const type = typeof kind === 'string' ? kind : entryType(kind);
    const key = `${type}:${path}`;
    if (this.foreignSeen.has(key)) return;
    if (this.foreignSeen.size > 10_000) this.foreignSeen.clear();
    this.foreignSeen.add(key);
    this.logger.log('debug', 'foreign-file', { path, type });
  }

  read(owner: PeerId, dir: PeerId, name: string, options: ReadOptions = {}): Promise<RelayRead | undefined> {
    return this.readIn([owner, dir], name, options);
  }

  readShared(owner: PeerId, name: string, options: ReadOptions = {}): Promise<RelayRead | undefined> {
    return this.readIn([owner], name, options);
  }

  private async readIn(parts: readonly string[], name: string, options: ReadOptions): Promise<RelayRead | undefined> {
    const folder = this.folderState(parts);
    // A peer path that is a file, or no folder at all: nothing was published there.
    if (folder.state === 'missing' || folder.state === 'not-a-folder') return undefined;
    if (folder.state !== 'folder') throw badEntry(folder.path, folder.state);
    const path = join(folder.path, name);
    let fd: number;
    try {
      // Never blocks and never follows a link: O_NONBLOCK makes opening a FIFO return at once
      // (a plain open waits for a writer, freezing the whole process), O_NOFOLLOW fails on a
      // link, and fstat below refuses anything that is not a regular file.
      fd = openSync(path, READ_FLAGS);
    } catch (error) {
      // A file that vanished between listing and reading was consumed or garbage-collected:
      // a race, not a failure.
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw entryError(error, 'read', path);
    }
    try {
      const info = fstatSync(fd);
      if (!info.isFile()) throw badEntry(path, 'not-a-file');
      // Sizes are checked before reading: a sparse gigabyte costs this fstat, not a gigabyte.
      const maxBytes = Math.min(options.maxBytes ?? Number.POSITIVE_INFINITY, MAX_BUFFER);
      if (info.size > maxBytes) throw badEntry(path, 'too-large', { data: { size: info.size, maxBytes } });
      const version = `${info.ino}:${info.mtimeMs}:${info.size}`;
      if (info.size <= SMALL_FILE) {
        // Messages, acks and statuses are small and come by the thousand: synchronous reads
        // cost a few microseconds each instead of trips through the thread pool.
        const data = Buffer.allocUnsafe(info.size);
        const filled = readAllSync(fd, data);
        return { data: data.subarray(0, filled), version };
      }
      const given = options.buffer;
      const data = given && given.length >= info.size ? given.subarray(0, info.size) : Buffer.allocUnsafe(info.size);
      const filled = await readAll(fd, data);
      return { data: filled === info.size ? data : data.subarray(0, filled), version };
    } catch (error) {
      throw entryError(error, 'read', path);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * What `<root>/<parts...>` is, looked at without following links. The root itself may be a
   * link (a user's choice of where the relay lives); nothing below it may be, or a reader would
   * leave the relay and a writer would write somewhere else.
   */
  private folderState(parts: readonly string[]): FolderState {
    let path = this.root;
    for (const part of parts) {
      path = join(path, part);
      let info: Stats | undefined;
      try {
        info = lstatSync(path, { throwIfNoEntry: false });
      } catch (error) {
        const code = errnoCode(error);
        if (code === 'ENOTDIR') return { state: 'not-a-folder', path };
        if (code === 'EACCES' || code === 'EPERM') return { state: 'unreadable', path };
        throw relayError(error, 'read', path);
      }
      if (info === undefined) return { state: 'missing', path };
      if (info.isSymbolicLink()) return { state: 'link', path };
      if (!info.isDirectory()) return { state: 'not-a-folder', path };
    }
    return { state: 'folder', path };
  }

  async publish(dir: PeerId, files: readonly RelayFile[], options: PublishOptions = {}): Promise<void> {
    await this.publishInto(await this.ownFolder(dir), files, options);
  }

  async publishShared(files: readonly RelayFile[], options: PublishOptions = {}): Promise<void> {
    await this.publishInto(await this.ownFolder(), files, options);
  }

  private async publishInto(folder: string, files: readonly RelayFile[], options: PublishOptions): Promise<void> {
    const durable = options.durable ?? true;
    const staging = this.tempDir ?? folder;
    const written = await Promise.allSettled(
      files.map(async (file) => {
        const temp = join(staging, stagingName(file.name));
        if (!durable && file.data.length <= SMALL_FILE) {
          // Small files are written synchronously: a create costs tens of microseconds, while
          // thousands of them in flight on the thread pool queue on the directory's lock.
          try {
            writeFileSync(temp, file.data, { flag: 'wx' });
          } catch (error) {
            throw relayError(error, 'write', join(folder, file.name));
          }
          return temp;
        }
        let handle: FileHandle | undefined;
        try {
          // 'wx' (O_EXCL): a fresh file, never whatever may already sit under that name.
          handle = await open(temp, 'wx');
          await handle.writeFile(file.data);
          if (durable) await handle.sync();
        } catch (error) {
          await handle?.close().catch(() => {});
          await unlink(temp).catch(() => {});
          throw relayError(error, 'write', join(folder, file.name));
        }
        await handle.close();
        return temp;
      }),
    );
    const temps = written.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failed = written.find((result) => result.status === 'rejected');
    if (failed !== undefined) {
      // The files that were written are of no use without the others.
      await Promise.all(temps.map((temp) => unlink(temp).catch(() => {})));
      throw failed.reason;
    }
    try {
      for (const [index, file] of files.entries()) {
        if (!durable && file.data.length <= SMALL_FILE) renameSync(temps[index]!, join(folder, file.name));
        else await rename(temps[index]!, join(folder, file.name));
      }
    } catch (error) {
      await Promise.all(temps.map((temp) => unlink(temp).catch(() => {})));
      throw relayError(error, 'publish', folder);
    }
    if (durable) await syncDirectory(folder);
  }

  remove(dir: PeerId, names: readonly string[]): Promise<void> {
    return this.removeIn([this.self, dir], names);
  }

  removeShared(names: readonly string[]): Promise<void> {
    return this.removeIn([this.self], names);
  }

  private async removeIn(parts: readonly string[], names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const own = this.folderState(parts);
    if (own.state === 'missing') return;
    // Unlinking through a linked folder would delete files wherever it points.
    if (own.state !== 'folder') throw badEntry(own.path, own.state, { what: 'remove from' });
    const folder = own.path;
    await Promise.all(
      names.map(async (name) => {
        try {
          await unlink(join(folder, name));
        } catch (error) {
          if (errnoCode(error) !== 'ENOENT') throw relayError(error, 'remove', join(folder, name));
        }
      }),
    );
  }

  async usage(): Promise<number> {
    let total = 0;
    const own = this.folderState([this.self]);
    if (own.state === 'link' || own.state === 'not-a-folder')
      throw badEntry(own.path, own.state, { what: 'count the files in' });
    let dirs: Dirent[];
    try {
      dirs = await readdir(this.ownDir(), { withFileTypes: true });
    } catch (error) {
      throw relayError(error, 'list', this.ownDir());
    }
    // Nothing is followed: a link in this folder points at bytes that are not in the relay.
    for (const dir of dirs) {
      if (!dir.isDirectory() || !isPeerId(dir.name)) continue;
      total += await sizeOfFiles(this.ownDir(dir.name));
    }
    return total;
  }

  /**
   * Reports changes in `<relay>/<peer>/<self>/` (and new peer folders), and a rescan tick every
   * `rescanMs`. Native events watch folders only, one watch per folder, with no state per file:
   * chokidar watches every file on its own, which for a backlog of 100,000 messages cost over a
   * gigabyte. Polling (`pollMs`, for network shares, where native events do not cross) uses
   * chokidar, which polls each file.
   */
  watch(options: WatchOptions): void {
    if (options.signal.aborted) return;
    if (this.pollMs === undefined) this.watchFolders(options);
    else this.watchPolling(options);
  }

  /**
   * Native events on the folders that matter, one fs.watch each: the relay root (peer folders
   * appear), each peer folder (its folder for us appears) and each `<peer>/<self>/` (files
   * change). Only real folders are watched, looked at with lstat first: the watcher follows no
   * link (a peer folder linked to / would have it watch the whole disk). Every rescan tick looks
   * at the folders again: a watch lost when a folder was replaced, or the relay unmounted and
   * back, is made anew.
   */
  private watchFolders(options: WatchOptions): void {
    const { signal, onChange } = options;
    const self = this.self;
    /** Watches by path relative to the relay's real path: '', '<peer>', '<peer>/<self>'. */
    const watchers = new Map<string, { watcher: FSWatcher; ino: number }>();
    let base = this.root;
    let rootGone = false;
    const report = (change: RelayChange) => {
      // Events may still come in between the abort and the watchers closing.
      if (!signal.aborted) onChange(change);
    };
    const unwatch = (key: string) => {
      watchers.get(key)?.watcher.close();
      watchers.delete(key);
    };
    const watchFolder = (key: string, onEvent: (name: string | undefined) => void): boolean => {
      const path = key === '' ? base : join(base, key);
      let info: Stats | undefined;
      try {
        info = lstatSync(path, { throwIfNoEntry: false });
      } catch {
        info = undefined;
      }
      // Between this lstat and the watch a folder could become a link: the watch only causes
      // looks, and every read still refuses links.
      if (info === undefined || info.isSymbolicLink() || !info.isDirectory()) {
        unwatch(key);
        return false;
      }
      const known = watchers.get(key);
      if (known?.ino === info.ino) return true;
      unwatch(key);
      try {
        const watcher = fsWatch(path, { persistent: false }, (_event, name) => {
          onEvent(typeof name === 'string' ? name : undefined);
        });
        watcher.on('error', (error) => {
          this.logger.log('debug', 'watch-error', { path, error: String(error) });
          if (watchers.get(key)?.watcher === watcher) unwatch(key);
        });
        watchers.set(key, { watcher, ino: info.ino });
        return true;
      } catch (error) {
        this.logger.log('debug', 'watch-error', { path, error: String(error) });
        return false;
      }
    };
    const watchPeer = (peer: PeerId) => {
      const peerFolderChanged = (name: string | undefined) => {
        if (name !== self) return;
        // Our folder in it appeared (or was replaced): look, and watch it.
        report({ owner: peer, dir: self });
        watchPeer(peer);
      };
      if (!watchFolder(peer, peerFolderChanged)) {
        unwatch(`${peer}/${self}`);
        return;
      }
      watchFolder(`${peer}/${self}`, (name) => {
        if (name === undefined) report({ owner: peer, dir: self });
        else if (isRelayName(name)) report({ owner: peer, dir: self, name });
      });
    };
    /** Brings the watches in line with the folders that exist now. */
    const look = () => {
      if (signal.aborted) return;
      try {
        base = realpathSync(this.root);
      } catch {
        base = this.root;
      }
      const rootWatched = watchFolder('', (name) => {
        if (!isPeerId(name) || name === self) return;
        report({ owner: name, dir: self });
        watchPeer(name);
      });
      if (!rootWatched) {
        rootGone = true;
        for (const key of [...watchers.keys()]) unwatch(key);
        return;
      }
      if (rootGone) {
        rootGone = false;
        this.logger.log('info', 'relay-back', { relay: this.root });
      }
      let entries: Dirent[] = [];
      try {
        entries = readdirSync(base, { withFileTypes: true });
      } catch {
        entries = [];
      }
      const peers = new Set<string>();
      for (const entry of entries) {
        if (!isPeerId(entry.name) || entry.name === self || !entry.isDirectory()) continue;
        peers.add(entry.name);
        watchPeer(entry.name);
      }
      for (const key of [...watchers.keys()]) {
        const peer = key.split('/')[0] ?? '';
        if (key !== '' && !peers.has(peer)) unwatch(key);
      }
    };
    look();
    every(
      this.clock,
      this.rescanMs,
      () => {
        look();
        onChange(null);
      },
      signal,
    );
    signal.addEventListener(
      'abort',
      () => {
        for (const key of [...watchers.keys()]) unwatch(key);
      },
      { once: true },
    );
  }

  /** Polling for network shares: chokidar polls every file of the folders for us. */
  private watchPolling(options: WatchOptions): void {
    const { signal, onChange } = options;
    const root = this.root;
    const self = this.self;
    // The watcher follows no link (a peer folder linked to / would have it watch the whole
    // disk), so it must be given the relay's real path: the relay itself may be a link.
    let watched = root;
    // Watch only `<relay>/<peer>/<self>/`: what others address to us. Keeping the watched set
    // small matters in polling mode, where every watched file is polled.
    const ignored = (path: string): boolean => {
      const rel = relative(watched, path);
      if (rel === '') return false;
      const parts = rel.split(sep);
      if (parts.length === 1) return !isPeerId(parts[0]) || parts[0] === self;
      if (parts.length === 2) return parts[1] !== self;
      if (parts.length === 3) return !isRelayName(parts[2] ?? '');
      return true;
    };
    const report = (path: string) => {
      // The watcher closes asynchronously: events may still come after the abort.
      if (signal.aborted) return;
      const parts = relative(watched, path).split(sep);
      const [owner, dir, name] = parts;
      if (isPeerId(owner) && isPeerId(dir)) onChange(name === undefined ? { owner, dir } : { owner, dir, name });
      else if (isPeerId(owner) && parts.length === 1) onChange({ owner, dir: self });
    };
    // chokidar drops a 'change' of a path that comes within 50 ms of the previous one (its
    // throttle in emit), so the last rewrite of an ack or status in a quick burst would go
    // unseen until the next rescan. Report every changed path once more 60 ms after its last
    // change event (adds are not throttled):
    // whatever a throttled event hid is then seen.
    const followUps = new Map<string, Cancel>();
    const reportTwice = (path: string) => {
      report(path);
      followUps.get(path)?.();
      followUps.set(
        path,
        this.clock.timeout(FOLLOW_UP_MS, () => {
          followUps.delete(path);
          report(path);
        }),
      );
    };
    // A relay on a share can vanish (unmounted, sync client restarting). Its watcher then
    // watches nothing; the rescan tick notices the folder is back and starts a fresh one.
    let watcher: ChokidarWatcher | undefined;
    let rootGone = false;
    // chokidar is loaded only here: with native events (the default) no command pays for it.
    let chokidarWatch: typeof import('chokidar').watch | undefined;
    const start = () => {
      if (signal.aborted) return;
      if (chokidarWatch === undefined) {
        void import('chokidar').then(
          (chokidar) => {
            chokidarWatch = chokidar.watch;
            start();
          },
          (error: unknown) => this.logger.log('warn', 'watch-error', { error: String(error) }),
        );
        return;
      }
      rootGone = false;
      try {
        watched = realpathSync(root);
      } catch {
        watched = root;
      }
      watcher = chokidarWatch(watched, {
        depth: 2,
        ignoreInitial: true,
        ignored,
        atomic: false,
        followSymlinks: false,
        usePolling: true,
        interval: this.pollMs,
        binaryInterval: this.pollMs,
      });
      watcher.on('add', report).on('change', reportTwice).on('addDir', report);
      watcher.on('unlinkDir', (path) => {
        if (path === watched) rootGone = true;
      });
      watcher.on('error', (error) => this.logger.log('warn', 'watch-error', { error: String(error) }));
    };
    start();
    const rescan = () => {
      void stat(root).then(
        () => {
          if (!rootGone || signal.aborted) return;
          this.logger.log('info', 'relay-back', { relay: root });
          void watcher?.close();
          start();
        },
        () => {
          rootGone = true;
        },
      );
      onChange(null);
    };
    every(this.clock, this.rescanMs, rescan, signal);
    signal.addEventListener(
      'abort',
      () => {
        for (const cancel of followUps.values()) cancel();
        followUps.clear();
        void watcher?.close();
      },
      { once: true },
    );
  }
}

/** Makes a rename durable: on Linux a directory's entries reach the disk only when it is fsynced. */
async function syncDirectory(path: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch (error) {
    // Some file systems (and Windows) refuse fsync on a directory; the rename itself stands.
    const code = errnoCode(error);
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF')
      throw relayError(error, 'sync', path);
  } finally {
    await handle?.close();
  }
}

/** A fresh staging name for `name`: a dot-name readers and sync tools skip, unique to one write. */
function stagingName(name: string): string {
  return `.${name}.${randomBytes(6).toString('hex')}.tmp`;
}

/** A name stagingName() makes: `.<relay name>.<12 hex>.tmp`. */
function isStagingName(name: string): boolean {
  const match = STAGING_NAME.exec(name);
  return match !== null && isRelayName(match[1] ?? '');
}

/** What a directory entry is, for the debug log. */
function entryType(entry: Dirent): string {
  if (entry.isFile()) return 'file';
  if (entry.isDirectory()) return 'folder';
  if (entry.isSymbolicLink()) return 'link';
  if (entry.isFIFO()) return 'fifo';
  if (entry.isSocket()) return 'socket';
  return 'device';
}

/**
 * Bytes of the regular files in `folder`, 256 at a time: a sender with 100,000 messages in the
 * relay measured them all at once, as 100,000 stat calls in flight, and peaked near 900 MB.
 */
async function sizeOfFiles(folder: string): Promise<number> {
  let handle: Dir;
  try {
    handle = await opendir(folder, { bufferSize: 256 });
  } catch {
    return 0;
  }
  let total = 0;
  let pending: Promise<number>[] = [];
  const settle = async () => {
    for (const size of await Promise.all(pending)) total += size;
    pending = [];
  };
  try {
    for (;;) {
      const entry = await handle.read();
      if (entry === null) break;
      if (!entry.isFile()) continue;
      pending.push(
        lstat(join(folder, entry.name)).then(
          (info) => (info.isFile() ? info.size : 0),
          () => 0,
        ),
      );
      if (pending.length >= 256) await settle();
    }
  } catch {
    // The folder went away while it was read: what was counted stands.
  } finally {
    await handle.close().catch(() => {});
  }
  await settle();
  return total;
}

/** Reads into `data` from offset 0 until it is full or the file ends; returns the bytes read. */
function readAllSync(fd: number, data: Buffer): number {
  let filled = 0;
  while (filled < data.length) {
    const bytesRead = readSync(fd, data, filled, data.length - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

/** readAllSync through the thread pool, for files too large to read on the event loop. */
async function readAll(fd: number, data: Buffer): Promise<number> {
  let filled = 0;
  while (filled < data.length) {
    const { bytesRead } = await readAsync(fd, data, filled, data.length - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}
