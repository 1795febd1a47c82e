/**
 * In-memory relays for tests: MemoryRelay is one peer's view of a RelayReplica (a folder tree
 * in memory). Peers that share one replica see each other's files at once; SimulatedSync joins
 * several replicas the way a sync engine does: late, in random order, twice, with its own temp
 * files and conflict copies appearing, and optionally with corrupted deliveries.
 */
import { type Cancel, type Clock, every, systemClock } from '../clock.js';
import { DmpError } from '../errors.js';
import { isPeerId, type PeerId } from '../util/peer-id.js';
import { seededRandom } from '../util/random.js';
import {
  isRelayName,
  type PublishOptions,
  type ReadOptions,
  type RelayFile,
  type RelayRead,
  type RelayStorage,
  type WatchOptions,
} from './storage.js';

interface StoredFile {
  readonly data: Buffer;
  readonly version: number;
}

type ReplicaListener = (path: string, local: boolean) => void;

/** One copy of the relay tree. Paths are `owner/dir/name`, peer folders are `owner`. */
export class RelayReplica {
  readonly files = new Map<string, StoredFile>();
  readonly folders = new Set<string>();
  private readonly listeners = new Set<ReplicaListener>();
  private static nextVersion = 1;

  /** Versions are global, so "newer" means the same in every replica. */
  static newVersion(): number {
    return RelayReplica.nextVersion++;
  }
  /** Set by tests to simulate a read-only relay. */
  readOnly = false;
  /** Set by tests to simulate a relay whose disk is full: writes fail with DISK_FULL, removals work. */
  full = false;

  subscribe(listener: ReplicaListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** `local` writes are made by a peer on this replica; the others arrive through sync. */
  put(path: string, data: Buffer, local: boolean, version = RelayReplica.newVersion()): StoredFile {
    const stored = { data, version };
    this.files.set(path, stored);
    const owner = path.split('/')[0];
    if (owner !== undefined) this.addFolder(owner, local);
    for (const listener of this.listeners) listener(path, local);
    return stored;
  }

  /** A peer's folder; sync engines carry empty folders too. Listeners get the bare name. */
  addFolder(owner: string, local: boolean): void {
    if (this.folders.has(owner)) return;
    this.folders.add(owner);
    for (const listener of this.listeners) listener(owner, local);
  }

  delete(path: string, local: boolean): void {
    if (!this.files.delete(path)) return;
    for (const listener of this.listeners) listener(path, local);
  }
}

export interface MemoryRelayOptions {
  /** Full rescan interval in ms. @default 50 */
  rescanMs?: number;
  /** @default systemClock */
  clock?: Clock;
}

export class MemoryRelay implements RelayStorage {
  readonly self: PeerId;
  private readonly replica: RelayReplica;
  private readonly rescanMs: number;
  private readonly clock: Clock;

  constructor(replica: RelayReplica, self: PeerId, options: MemoryRelayOptions = {}) {
    this.replica = replica;
    this.self = self;
    this.rescanMs = options.rescanMs ?? 50;
    this.clock = options.clock ?? systemClock;
  }

  private checkWritable(): void {
    if (this.replica.readOnly) {
      throw new DmpError('RELAY_READ_ONLY', `relay is not writable: cannot write in ${this.self}`);
    }
  }

  async open(): Promise<void> {
    this.checkWritable();
    this.replica.addFolder(this.self, true);
  }

  async peers(): Promise<PeerId[]> {
    return [...this.replica.folders].filter((name): name is PeerId => isPeerId(name)).sort();
  }

  async list(owner: PeerId, dir: PeerId): Promise<string[]> {
    const prefix = `${owner}/${dir}/`;
    const names: string[] = [];
    for (const path of this.replica.files.keys()) {
      if (!path.startsWith(prefix)) continue;
      const name = path.slice(prefix.length);
      if (isRelayName(name)) names.push(name);
    }
    return names;
  }

  async read(owner: PeerId, dir: PeerId, name: string, options?: ReadOptions): Promise<RelayRead | undefined> {
    return this.readPath(`${owner}/${dir}/${name}`, options);
  }

  private readPath(path: string, options: ReadOptions = {}): RelayRead | undefined {
    const stored = this.replica.files.get(path);
    if (stored && options.maxBytes !== undefined && stored.data.length > options.maxBytes) {
      const size = stored.data.length;
      throw new DmpError(
        'BAD_ENTRY',
        `refusing to read ${path}: it is too large (${size} bytes, at most ${options.maxBytes} allowed)`,
        { data: { path, reason: 'too-large', size, maxBytes: options.maxBytes } },
      );
    }
    // Copy: a reader must never see a later write through a shared buffer.
    return stored && { data: Buffer.from(stored.data), version: String(stored.version) };
  }

  async readShared(owner: PeerId, name: string, options?: ReadOptions): Promise<RelayRead | undefined> {
    return this.readPath(`${owner}/${name}`, options);
  }

  async listShared(owner: PeerId): Promise<string[]> {
    const names: string[] = [];
    for (const path of this.replica.files.keys()) {
      const parts = path.split('/');
      if (parts.length === 2 && parts[0] === owner && isRelayName(parts[1] ?? '')) names.push(parts[1] ?? '');
    }
    return names;
  }

  async publishShared(files: readonly RelayFile[], _options?: PublishOptions): Promise<void> {
    this.checkWritable();
    for (const file of files) this.replica.put(`${this.self}/${file.name}`, Buffer.from(file.data), true);
  }

  async publish(dir: PeerId, files: readonly RelayFile[], _options?: PublishOptions): Promise<void> {
    this.checkWritable();
    if (this.replica.full) {
      throw new DmpError('DISK_FULL', `no space left to write in ${this.self}/${dir}`, {
        data: { path: `${this.self}/${dir}`, errno: 'ENOSPC' },
      });
    }
    for (const file of files) {
      this.replica.put(`${this.self}/${dir}/${file.name}`, Buffer.from(file.data), true);
    }
  }

  async removeShared(names: readonly string[]): Promise<void> {
    this.checkWritable();
    for (const name of names) this.replica.delete(`${this.self}/${name}`, true);
  }

  async remove(dir: PeerId, names: readonly string[]): Promise<void> {
    this.checkWritable();
    for (const name of names) this.replica.delete(`${this.self}/${dir}/${name}`, true);
  }

  async usage(): Promise<number> {
    let total = 0;
    // As on disk: the files of the pair folders count, not the shared ones (identity).
    for (const [path, stored] of this.replica.files) {
      if (path.startsWith(`${this.self}/`) && path.split('/').length === 3) total += stored.data.length;
    }
    return total;
  }

  watch(options: WatchOptions): void {
    const { signal, onChange } = options;
    if (signal.aborted) return;
    const unsubscribe = this.replica.subscribe((path) => {
      const [owner, dir, name] = path.split('/');
      if (!isPeerId(owner) || owner === this.self) return;
      if (dir !== undefined && (!isPeerId(dir) || dir !== this.self)) return;
      const change =
        name !== undefined && isRelayName(name) ? { owner, dir: this.self, name } : { owner, dir: this.self };
      // Deliver asynchronously, as a real watcher does, and never after the watch ended.
      queueMicrotask(() => {
        if (!signal.aborted) onChange(change);
      });
    });
    every(this.clock, this.rescanMs, () => onChange(null), signal);
    signal.addEventListener('abort', unsubscribe, { once: true });
  }
}

export interface SimulatedSyncOptions {
  seed: number;
  /** Largest delay of one delivery in ms; each delivery draws its own, so order is random. */
  maxDelayMs?: number;
  /** Probability that a file is delivered a second time. */
  duplicateRate?: number;
  /** Probability that a sync-tool temp file appears (and vanishes) around a delivery. */
  tempFileRate?: number;
  /** Probability that a conflict copy appears beside a delivered file, and stays. */
  conflictRate?: number;
  /** Probability that a delivery arrives corrupted (one flipped byte) and stays so until rewritten. */
  corruptRate?: number;
  /**
   * Probability that a new version of a file the target already holds replaces it in two steps:
   * the old file deleted, the new one put a moment later. Syncthing does this (it deletes the
   * file in place before renaming the new one over it), so a republished file can be missing
   * for a moment.
   */
  replaceGapRate?: number;
  /** Deliveries are timers of this clock. @default systemClock */
  clock?: Clock;
}

/**
 * Joins replicas as a sync engine would. Per path, a replica never goes back to an older version
 * (sync engines converge); across paths, anything goes.
 */
export class SimulatedSync {
  private readonly random: () => number;
  private readonly options: Required<Omit<SimulatedSyncOptions, 'seed' | 'clock'>>;
  private readonly clock: Clock;
  private readonly applied = new Map<RelayReplica, Map<string, number>>();
  private pending = 0;
  private readonly timers = new Set<Cancel>();
  private readonly unsubscribers: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  /** Counters of what the simulation did, for tests to assert the hazards really happened. */
  readonly stats = {
    delivered: 0,
    duplicated: 0,
    tempFiles: 0,
    conflicts: 0,
    corrupted: 0,
    deleted: 0,
    replaceGaps: 0,
  };

  constructor(
    private readonly replicas: RelayReplica[],
    options: SimulatedSyncOptions,
  ) {
    this.random = seededRandom(options.seed);
    this.clock = options.clock ?? systemClock;
    this.options = {
      maxDelayMs: options.maxDelayMs ?? 20,
      duplicateRate: options.duplicateRate ?? 0,
      tempFileRate: options.tempFileRate ?? 0,
      conflictRate: options.conflictRate ?? 0,
      corruptRate: options.corruptRate ?? 0,
      replaceGapRate: options.replaceGapRate ?? 0,
    };
    for (const replica of replicas) {
      this.applied.set(replica, new Map());
      this.unsubscribers.push(replica.subscribe((path, local) => local && this.propagate(replica, path)));
    }
  }

  stop(): void {
    for (const unsubscribe of this.unsubscribers) unsubscribe();
    for (const cancel of this.timers) cancel();
    this.timers.clear();
    this.pending = 0;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Resolves when no delivery is pending. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private later(action: () => void): void {
    this.pending += 1;
    const cancel = this.clock.timeout(Math.floor(this.random() * this.options.maxDelayMs), () => {
      this.timers.delete(cancel);
      action();
      this.pending -= 1;
      if (this.pending === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
    });
    this.timers.add(cancel);
  }

  private propagate(source: RelayReplica, path: string): void {
    const [owner] = path.split('/');
    if (!path.includes('/')) {
      for (const target of this.replicas) if (target !== source) this.later(() => target.addFolder(path, false));
      return;
    }
    const stored = source.files.get(path);
    for (const target of this.replicas) {
      if (target === source) continue;
      if (owner !== undefined) target.addFolder(owner, false);
      if (stored === undefined) {
        // A deletion is a version too: older deliveries stay dropped, a later rewrite goes through.
        const version = RelayReplica.newVersion();
        this.later(() => {
          const applied = this.applied.get(target)!;
          if ((applied.get(path) ?? 0) > version) return;
          applied.set(path, version);
          this.stats.deleted += 1;
          target.delete(path, false);
        });
        continue;
      }
      const deliveries = this.random() < this.options.duplicateRate ? 2 : 1;
      if (deliveries === 2) this.stats.duplicated += 1;
      if (this.random() < this.options.tempFileRate) this.showTempFile(target, path);
      const corrupt = this.random() < this.options.corruptRate;
      for (let i = 0; i < deliveries; i += 1) {
        this.later(() => {
          const applied = this.applied.get(target)!;
          const seen = applied.get(path) ?? 0;
          if (seen > stored.version) return;
          // Drawn only when the hazard is on, so that other seeds replay as they always did.
          const gap =
            this.options.replaceGapRate > 0 && target.files.has(path) && this.random() < this.options.replaceGapRate;
          applied.set(path, stored.version);
          if (gap) {
            this.stats.replaceGaps += 1;
            target.delete(path, false);
            this.later(() => {
              if ((applied.get(path) ?? 0) > stored.version) return;
              this.deliver(target, path, stored, corrupt);
            });
            return;
          }
          this.deliver(target, path, stored, corrupt);
        });
      }
    }
  }

  /** Puts one delivered version into `target`, damaged when `corrupt`, maybe with a conflict copy. */
  private deliver(target: RelayReplica, path: string, stored: { data: Buffer; version: number }, corrupt: boolean) {
    let data = stored.data;
    if (corrupt) {
      data = Buffer.from(data);
      const at = Math.floor(this.random() * data.length);
      data[at] = (data[at] ?? 0) ^ 0x20;
      this.stats.corrupted += 1;
    }
    this.stats.delivered += 1;
    target.put(path, data, false, stored.version);
    if (this.random() < this.options.conflictRate) {
      this.stats.conflicts += 1;
      const conflict = path.replace(/\.(dmp|dfc)$/, '.sync-conflict-20260101-120000-ABCDEFG.$1');
      target.put(conflict, Buffer.from(data), false);
    }
  }

  private showTempFile(target: RelayReplica, path: string): void {
    const slash = path.lastIndexOf('/');
    const name = path.slice(slash + 1);
    const temp = `${path.slice(0, slash + 1)}${this.random() < 0.5 ? `.syncthing.${name}.tmp` : `~syncthing~${name}.tmp`}`;
    this.stats.tempFiles += 1;
    target.put(temp, Buffer.from('partial'), false);
    this.later(() => target.delete(temp, false));
  }
}
