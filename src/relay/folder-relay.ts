/**
 * The relay as a real folder kept in sync by something else (Dropbox, Syncthing, an NFS share).
 * This is the only module that touches the relay on disk.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, type Dirent, fstatSync, openSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { watch as chokidarWatch, type FSWatcher } from 'chokidar';
import { DmpError, errnoCode } from '../errors.js';
import { type Logger, silentLogger } from '../log.js';
import { isPeerId, type PeerId } from '../util/peer-id.js';
import { relayError } from './errno.js';
import {
  isRelayName,
  type PublishOptions,
  type RelayFile,
  type RelayRead,
  type RelayStorage,
  type WatchOptions,
} from './storage.js';

/** Files up to this size are read, and written when not durable, with synchronous calls. */
const SMALL_FILE = 16 * 1024;

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
  logger?: Logger;
}

export class FolderRelay implements RelayStorage {
  readonly self: PeerId;
  readonly root: string;
  private readonly tempDir: string | undefined;
  private readonly pollMs: number | undefined;
  private readonly rescanMs: number;
  private readonly logger: Logger;
  /** Own sub-folders known to exist, so publish does not mkdir every time. */
  private readonly madeDirs = new Set<string>();
  /** Foreign names already reported, so the debug log says each once. */
  private readonly foreignSeen = new Set<string>();

  constructor(options: FolderRelayOptions) {
    this.root = options.root;
    this.self = options.self;
    this.tempDir = options.tempDir;
    this.pollMs = options.pollMs;
    this.rescanMs = options.rescanMs ?? 2000;
    this.logger = options.logger ?? silentLogger;
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
    try {
      await mkdir(this.ownDir()).catch((error: unknown) => {
        if (errnoCode(error) !== 'EEXIST') throw error;
      });
    } catch (error) {
      throw relayError(error, 'create', this.ownDir());
    }
    // Probe with a real write: permission bits say nothing when running as root or on a
    // read-only mount.
    const probe = join(this.ownDir(), `.probe-${randomBytes(6).toString('hex')}.tmp`);
    try {
      const handle = await open(probe, 'w');
      await handle.close();
      await unlink(probe);
    } catch (error) {
      throw relayError(error, 'write in', this.ownDir());
    }
  }

  async peers(): Promise<PeerId[]> {
    let entries: Dirent[];
    try {
      entries = await readdir(this.root, { withFileTypes: true });
    } catch (error) {
      throw relayError(error, 'list', this.root);
    }
    // A peer is a folder; a file that happens to carry a peer-like name is foreign.
    return entries
      .filter((entry) => entry.isDirectory() || entry.isSymbolicLink())
      .map((entry) => entry.name)
      .filter((name): name is PeerId => isPeerId(name))
      .sort();
  }

  async list(owner: PeerId, dir: PeerId): Promise<string[]> {
    const folder = join(this.root, owner, dir);
    let names: string[];
    try {
      names = await readdir(folder);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw relayError(error, 'list', folder);
    }
    const accepted: string[] = [];
    for (const name of names) {
      if (isRelayName(name)) accepted.push(name);
      else this.noteForeign(join(owner, dir, name));
    }
    return accepted;
  }

  private noteForeign(path: string): void {
    if (this.foreignSeen.has(path)) return;
    if (this.foreignSeen.size > 10_000) this.foreignSeen.clear();
    this.foreignSeen.add(path);
    this.logger.log('debug', 'foreign-file', { path });
  }

  async read(
    owner: PeerId,
    dir: PeerId,
    name: string,
    options: { buffer?: Buffer } = {},
  ): Promise<RelayRead | undefined> {
    const path = join(this.root, owner, dir, name);
    const small = this.readSmall(path);
    if (small !== 'large') return small;
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      // A file that vanished between listing and reading was consumed or garbage-collected:
      // a race, not a failure.
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw relayError(error, 'read', path);
    }
    try {
      const info = await handle.stat();
      const given = options.buffer;
      const data = given && given.length >= info.size ? given.subarray(0, info.size) : Buffer.allocUnsafe(info.size);
      let filled = 0;
      while (filled < info.size) {
        const { bytesRead } = await handle.read(data, filled, info.size - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return {
        data: filled === info.size ? data : data.subarray(0, filled),
        version: `${info.ino}:${info.mtimeMs}:${info.size}`,
      };
    } catch (error) {
      throw relayError(error, 'read', path);
    } finally {
      await handle.close();
    }
  }

  /**
   * Messages, acks and statuses are small and come by the thousand: read them with synchronous
   * calls (a few microseconds each) instead of four trips through the thread pool.
   */
  private readSmall(path: string): RelayRead | undefined | 'large' {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw relayError(error, 'read', path);
    }
    try {
      const info = fstatSync(fd);
      if (info.size > SMALL_FILE) return 'large';
      const data = Buffer.allocUnsafe(info.size);
      let filled = 0;
      while (filled < info.size) {
        const bytesRead = readSync(fd, data, filled, info.size - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return { data: data.subarray(0, filled), version: `${info.ino}:${info.mtimeMs}:${info.size}` };
    } catch (error) {
      throw relayError(error, 'read', path);
    } finally {
      closeSync(fd);
    }
  }

  async publish(dir: PeerId, files: readonly RelayFile[], options: PublishOptions = {}): Promise<void> {
    const durable = options.durable ?? true;
    const folder = this.ownDir(dir);
    if (!this.madeDirs.has(folder)) {
      // Never recursive: when the relay itself is gone (an unmounted share), creating it again
      // would write into the bare mount point, where nothing reaches the peers. Only our own
      // folder and its sub-folder are made, and only inside a relay that exists.
      for (const path of [this.ownDir(), folder]) {
        try {
          await mkdir(path);
        } catch (error) {
          if (errnoCode(error) !== 'EEXIST') throw relayError(error, 'create', path);
        }
      }
      this.madeDirs.add(folder);
    }
    const staging = this.tempDir ?? folder;
    const tag = randomBytes(6).toString('hex');
    const temps = await Promise.all(
      files.map(async (file) => {
        const temp = join(staging, `.${file.name}.${tag}.tmp`);
        if (!durable && file.data.length <= SMALL_FILE) {
          // Small files are written synchronously: a create costs tens of microseconds, while
          // thousands of them in flight on the thread pool queue on the directory's lock.
          try {
            writeFileSync(temp, file.data);
          } catch (error) {
            this.madeDirs.delete(folder);
            throw relayError(error, 'write', join(folder, file.name));
          }
          return temp;
        }
        let handle: FileHandle | undefined;
        try {
          handle = await open(temp, 'w');
          await handle.writeFile(file.data);
          if (durable) await handle.sync();
        } catch (error) {
          await handle?.close().catch(() => {});
          await unlink(temp).catch(() => {});
          this.madeDirs.delete(folder);
          throw relayError(error, 'write', join(folder, file.name));
        }
        await handle.close();
        return temp;
      }),
    );
    try {
      for (const [index, file] of files.entries()) {
        if (!durable && file.data.length <= SMALL_FILE) renameSync(temps[index]!, join(folder, file.name));
        else await rename(temps[index]!, join(folder, file.name));
      }
    } catch (error) {
      await Promise.all(temps.map((temp) => unlink(temp).catch(() => {})));
      this.madeDirs.delete(folder);
      throw relayError(error, 'publish', folder);
    }
    if (durable) await syncDirectory(folder);
  }

  async remove(dir: PeerId, names: readonly string[]): Promise<void> {
    const folder = this.ownDir(dir);
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
    let dirs: PeerId[];
    try {
      dirs = (await readdir(this.ownDir())).filter((name): name is PeerId => isPeerId(name));
    } catch (error) {
      throw relayError(error, 'list', this.ownDir());
    }
    for (const dir of dirs) {
      const folder = this.ownDir(dir);
      const names = await readdir(folder).catch(() => [] as string[]);
      const sizes = await Promise.all(
        names.map((name) =>
          stat(join(folder, name)).then(
            (info) => (info.isFile() ? info.size : 0),
            () => 0,
          ),
        ),
      );
      for (const size of sizes) total += size;
    }
    return total;
  }

  watch(options: WatchOptions): void {
    const { signal, onChange } = options;
    if (signal.aborted) return;
    const root = this.root;
    const self = this.self;
    // Watch only `<relay>/<peer>/<self>/`: what others address to us. Keeping the watched set
    // small matters in polling mode, where every watched file is polled.
    const ignored = (path: string): boolean => {
      const rel = relative(root, path);
      if (rel === '') return false;
      const parts = rel.split(sep);
      if (parts.length === 1) return !isPeerId(parts[0]) || parts[0] === self;
      if (parts.length === 2) return parts[1] !== self;
      if (parts.length === 3) return !isRelayName(parts[2] ?? '');
      return true;
    };
    const report = (path: string) => {
      const parts = relative(root, path).split(sep);
      const [owner, dir, name] = parts;
      if (isPeerId(owner) && isPeerId(dir)) onChange(name === undefined ? { owner, dir } : { owner, dir, name });
      else if (isPeerId(owner) && parts.length === 1) onChange({ owner, dir: self });
    };
    // chokidar drops a 'change' of a path that comes within 50 ms of the previous one (its
    // throttle in emit), so the last rewrite of an ack or status in a quick burst would go
    // unseen until the next rescan. Report every changed path once more 60 ms after its last
    // change event (adds are not throttled):
    // whatever a throttled event hid is then seen.
    const followUps = new Map<string, NodeJS.Timeout>();
    const reportTwice = (path: string) => {
      report(path);
      clearTimeout(followUps.get(path));
      followUps.set(
        path,
        setTimeout(() => {
          followUps.delete(path);
          report(path);
        }, 60),
      );
    };
    // A relay on a share can vanish (unmounted, sync client restarting). Its watcher then
    // watches nothing; the rescan tick notices the folder is back and starts a fresh one.
    let watcher: FSWatcher | undefined;
    let rootGone = false;
    const start = () => {
      rootGone = false;
      watcher = chokidarWatch(root, {
        depth: 2,
        ignoreInitial: true,
        ignored,
        atomic: false,
        usePolling: this.pollMs !== undefined,
        interval: this.pollMs,
        binaryInterval: this.pollMs,
      });
      watcher.on('add', report).on('change', reportTwice).on('addDir', report);
      watcher.on('unlinkDir', (path) => {
        if (path === root) rootGone = true;
      });
      watcher.on('error', (error) => this.logger.log('warn', 'watch-error', { error: String(error) }));
    };
    start();
    const timer = setInterval(() => {
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
    }, this.rescanMs);
    signal.addEventListener(
      'abort',
      () => {
        clearInterval(timer);
        for (const followUp of followUps.values()) clearTimeout(followUp);
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
