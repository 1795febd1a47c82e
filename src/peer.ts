/**
 * The public API: one Peer per (relay, id, key, home). A Peer is a node (src/node/node.ts) with
 * the message, ping and transfer services registered; each method composes them. The CLI and
 * the daemon are thin layers over this.
 *
 * What only some methods use (receiving files, listing and cancelling transfers, history) is
 * imported when first used: every command starts by loading this module, and a short one like
 * `dmp send` should not pay for the rest.
 */
import { mkdir, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { BroadcastService } from './broadcast/broadcast.js';
import { type Clock, systemClock } from './clock.js';
import { type FernetKey, parseKey } from './crypto/fernet.js';
import { DmpError, isDmpError } from './errors.js';
import type { HistoryEntry } from './history/history.js';
import { IdentityBook, type PeerIdentity } from './identity/book.js';
import { fingerprint, normalizeFingerprint } from './identity/document.js';
import type { IdentityKeys } from './identity/keys.js';
import { PairSealer } from './identity/pair-sealer.js';
import { ownKeys, publishIdentity, rotateOwnIdentity } from './identity/setup.js';
import { recordFingerprint, sameFingerprint, TrustStore } from './identity/trust.js';
import { BlockList } from './local/block-list.js';
import { readJsonFile, writeJsonFile } from './local/files.js';
import { HomeLayout } from './local/home.js';
import { acquireLock, type Release } from './local/lock.js';
import { type Logger, silentLogger } from './log.js';
import { AuthGuard, type Quarantine } from './node/auth-guard.js';
import { Wakeup } from './node/feed.js';
import { Node, type NodeComponents } from './node/node.js';
import type { WaitReason } from './node/quota.js';
import {
  DEFAULT_PRESENCE_INTERVAL_MS,
  isOnline,
  PresencePublisher,
  PresenceTracker,
  type Seen,
} from './presence/presence.js';
import { FolderRelay } from './relay/folder-relay.js';
import type { RelayStorage } from './relay/storage.js';
import {
  type AskOptions,
  type FileResult,
  type GetOptions,
  getServed,
  type Listing,
  listServed,
  type PasscodeSource,
  type PutOptions,
  putServed,
  removeServed,
} from './serve/client.js';
import { FolderServer, type ServeOptions } from './serve/server.js';
import { MessageService } from './stream/message-service.js';
import { parseMessageName } from './stream/names.js';
import { type PingOptions, type PingReply, PingResponder, ping } from './stream/ping.js';
import { deliveredThrough, type InboxMessage, inboxOf } from './stream/receiver.js';
import { checkQuotaHoldsBlock, defaultBlockSize } from './transfer/block-size.js';
import type { TransferEvent, TransferEventListener } from './transfer/events.js';
import type { ReceiveOptions, TransferReceiver } from './transfer/receiver.js';
import { ReceiverSet } from './transfer/receivers.js';
import type { TransferRecord } from './transfer/records.js';
import { type SendFileResult, sendFile } from './transfer/sender.js';
import { expandSources, type SourceFile } from './transfer/walk.js';
import { type PeerId, parsePeerId } from './util/peer-id.js';

/**
 * Through a sync engine, a transfer moves at most a quota per round trip (a chunk carried over,
 * its status carried back): through Syncthing (about 2 s) the former 64 MiB held every transfer
 * to ~32 MiB/s, and a 128 MiB file took three windows, 3.2x the engine alone. 256 MiB allows
 * ~128 MiB/s and carries such a file in one window, for space the relay holds only while a
 * transfer runs. A folder short of room (a small cloud plan) sets `--quota` or `"quota"` lower.
 */
export const DEFAULT_QUOTA = 256 * 1024 * 1024;
/** What `listen` reads of an inbox at a time. */
const SHOW_BATCH_BYTES = 1024 * 1024;
/** How long a command waits for the identity of a peer whose folder is there but not its identity, ms. */
const IDENTITY_WAIT_MS = 30_000;
/** How long `receiveFiles({ count })` waits for senders to see its last verdicts, ms. */
const SETTLE_MS = 10_000;

export interface PeerOptions {
  /** The relay folder, or a RelayStorage (tests use MemoryRelay). */
  relay: string | RelayStorage;
  /** This peer's id: 1 to 32 of a-z, 0-9, '-'. */
  id: string;
  /** The relay key (Fernet, url-safe base64). */
  key: string;
  /** DMP_HOME: config, state, locks and inbox of this peer. */
  home: string;
  /** Poll the relay every this many ms instead of native events (network shares). */
  pollMs?: number;
  /** Full rescan interval, ms. @default 2000 */
  rescanMs?: number;
  /** Bytes this peer may hold in its relay folder. @default 256 MiB */
  quota?: number;
  /** @default systemClock */
  clock?: Clock;
  /** @default silent */
  logger?: Logger;
  /** Only look (dmp status): do not create or probe this peer's folder. */
  inspectOnly?: boolean;
  /** Bulk crypto of file chunks in a worker thread. @default true */
  cryptoWorker?: boolean;
  /** Accept nothing from a peer whose identity was not verified (dmp verify). @default false */
  strict?: boolean;
  /** How long this peer's broadcasts stay for readers that have not acknowledged them, ms. @default 7 days */
  broadcastRetentionMs?: number;
}

export interface SendOptions {
  /** Wait until the peer has acknowledged every message sent. */
  wait?: boolean;
  /** With `wait`: give up after this many ms (TIMEOUT). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Publishing waits: for room under the quota, or for space on a full relay. */
  onWaiting?: (held: number, reason: WaitReason) => void;
}

export interface ListenOptions {
  /** Only messages from this peer. */
  from?: string;
  /** Stop after this many messages. */
  count?: number;
  /**
   * With `count`: give up after this many ms (TIMEOUT) when `count` messages have not come.
   * Without: listen this long, then return.
   */
  timeoutMs?: number;
  signal?: AbortSignal;
  onMessage: (message: InboxMessage) => void;
  /** Another local process receives (the daemon): messages are read from its inbox. */
  onShared?: () => void;
}

export interface SendFilesOptions {
  /** Bytes per chunk (default 4 MiB, less when the quota is small). */
  blockSize?: number;
  /** Files in flight at once (default 4); the quota is shared. */
  concurrency?: number;
  signal?: AbortSignal;
  onEvent?: TransferEventListener;
}

export interface ReceiveFilesOptions {
  /** Where files land (default: the current directory). */
  out?: string;
  from?: string;
  /** Stop after this many files were received whole. */
  count?: number;
  overwrite?: boolean;
  signal?: AbortSignal;
  onEvent?: TransferEventListener;
}

/** Messages waiting each way between this peer and another. */
/** What `dmp who` shows of one peer. */
export interface WhoEntry {
  peer: PeerId;
  online: boolean;
  /** When this machine last saw anything new of the peer (its clock), ms since the epoch. */
  lastSeen?: number;
  /** Its files failed authentication: its folder is not read until then. */
  quarantined?: Quarantine;
}

export interface MessageCounts {
  /** Sent to the peer and not yet acknowledged. */
  outgoing: number;
  /** From the peer: in the relay not yet delivered, plus delivered and not yet shown. */
  incoming: number;
}

interface ReadCursor {
  offset: number;
}

export class Peer {
  readonly self: PeerId;
  private readonly node: Node;
  private readonly components: NodeComponents;
  private readonly messages: MessageService;
  private readonly book: IdentityBook;
  private readonly relayKey: FernetKey;
  private keys: IdentityKeys;
  private readonly publisher: PresencePublisher;
  private readonly tracker: PresenceTracker;
  private readonly broadcasts: BroadcastService;
  /** Every file receiver of this process (the role, a get, a served folder's puts). */
  private readonly fileReceivers: ReceiverSet;

  private constructor(
    node: Node,
    identity: { book: IdentityBook; relayKey: FernetKey; keys: IdentityKeys },
    private readonly blockList: BlockList,
    broadcastRetentionMs?: number,
  ) {
    this.node = node;
    this.book = identity.book;
    this.relayKey = identity.relayKey;
    this.keys = identity.keys;
    const presence = {
      relayKey: identity.relayKey,
      book: identity.book,
      signKey: () => this.keys.sign,
    };
    this.publisher = new PresencePublisher(node.components, presence);
    this.broadcasts = new BroadcastService(node.components, { ...presence, retentionMs: broadcastRetentionMs });
    node.register(this.broadcasts.acks);
    this.tracker = new PresenceTracker(node.components, presence);
    this.components = node.components;
    this.self = node.components.self;
    this.messages = new MessageService(this.components);
    this.fileReceivers = new ReceiverSet(node);
    // Every process answers pings and acts on acks while its loop runs.
    node.register(new PingResponder(this.components));
    node.register(this.messages.acks);
  }

  static async open(options: PeerOptions): Promise<Peer> {
    const self = parsePeerId(options.id, 'id');
    const key: FernetKey = parseKey(options.key);
    const home = new HomeLayout(options.home, self);
    const logger = options.logger ?? silentLogger;
    const clock = options.clock ?? systemClock;
    await mkdir(options.home, { recursive: true });
    let relay: RelayStorage;
    if (typeof options.relay === 'string') {
      relay = new FolderRelay({
        root: options.relay,
        self,
        tempDir: await stagingDir(options.relay, home.temp),
        pollMs: options.pollMs,
        rescanMs: options.rescanMs,
        logger,
      });
    } else {
      relay = options.relay;
    }
    if (options.inspectOnly) await relay.peers();
    else await relay.open();
    const keys = await ownKeys({ home, clock });
    if (!options.inspectOnly) await publishIdentity({ self, home, relay, clock }, key, keys);
    const book = new IdentityBook(
      { self, relay, home, clock, logger },
      { relayKey: key, keys, strict: options.strict },
    );
    const guard = new AuthGuard({ clock, logger, home });
    // Quarantines kept in DMP_HOME: shown by this process, and not lifted by a restart.
    await guard.load();
    // An identity accepted anew (first sight, a rotation, dmp trust) starts with a clean slate
    // (a quarantine kept in DMP_HOME stays: only the user lifts one).
    book.onChange((identity) => {
      if (identity.standing === 'pinned' || identity.standing === 'verified') guard.reset(identity.peer);
      else if (identity.standing !== 'unknown') guard.refuse(identity.peer, identity.reason ?? identity.standing);
    });
    const blocked = new BlockList(home);
    const node = new Node(
      {
        self,
        relay,
        sealer: new PairSealer({ book, now: () => clock.now(), worker: options.cryptoWorker }),
        guard,
        home,
        clock,
        logger,
        quota: options.quota ?? DEFAULT_QUOTA,
      },
      { blocked },
    );
    return new Peer(node, { book, relayKey: key, keys }, blocked, options.broadcastRetentionMs);
  }

  /** Where this peer's local files are (DMP_HOME). */
  get home(): HomeLayout {
    return this.components.home;
  }

  get clock(): Clock {
    return this.components.clock;
  }

  /** Bytes this peer may hold in the relay. */
  get quota(): number {
    return this.components.quota;
  }

  /** Stops watchers and threads; the Peer cannot be used afterwards. */
  close(): void {
    this.node.close();
  }

  /** Hears, once per peer, that its files do not authenticate (another key, or a stranger). */
  onUnauthenticated(listener: (peer: PeerId, reason: string) => void): () => void {
    return this.components.guard.onUnauthenticated(listener);
  }

  /** Hears of each quarantine of a peer whose files keep failing authentication, as it begins. */
  onQuarantined(listener: (quarantine: Quarantine) => void): () => void {
    return this.components.guard.onQuarantined(listener);
  }

  /** The peers quarantined now: their files failed authentication; their folders are not read. */
  quarantined(): Quarantine[] {
    return this.components.guard.quarantined();
  }

  /** Ends `peer`'s quarantine now (dmp unquarantine); a running daemon notices within seconds. */
  async unquarantine(peer: string): Promise<boolean> {
    const lifted = this.components.guard.lift(parsePeerId(peer, 'peer'));
    await this.components.guard.sync();
    return lifted;
  }

  /** Hears of every failure the service loop backs off from (one peer's folder, or the relay). */
  onError(listener: (error: DmpError, peer?: PeerId) => void): () => void {
    return this.node.onError(listener);
  }

  /** Hears when the files of a peer changed. */
  onActivity(listener: (peer: PeerId) => void): () => void {
    return this.node.onActivity(listener);
  }

  /** The other peers of the relay. */
  async peers(): Promise<PeerId[]> {
    return (await this.components.relay.peers()).filter((peer) => peer !== this.self);
  }

  /**
   * Fails with UNKNOWN_PEER when `peer` has no folder in the relay, and with AUTH when its
   * identity is not accepted (changed, a stranger, unverified under strict, none yet).
   */
  async requirePeer(peer: string): Promise<PeerId> {
    const id = parsePeerId(peer, 'peer');
    if (id === this.self) throw new DmpError('USAGE', `${id} is this peer's own id`);
    if (!(await this.components.relay.peers()).includes(id)) {
      throw new DmpError('UNKNOWN_PEER', `no peer '${id}' in the relay (has it run dmp init with this relay?)`, {
        data: { peer: id },
      });
    }
    let identity = await this.book.prepare(id, true);
    // A peer that just joined: its folder may reach this copy of the relay before its identity.
    const until = this.components.clock.now() + IDENTITY_WAIT_MS;
    while (identity.standing === 'unknown' && this.components.clock.now() < until) {
      await this.components.clock.sleep(200);
      identity = await this.book.prepare(id, true);
    }
    if (identity.standing !== 'pinned' && identity.standing !== 'verified') {
      throw new DmpError('AUTH', identity.reason ?? `${id}'s identity is not accepted`, {
        data: { peer: id, standing: identity.standing },
      });
    }
    return id;
  }

  /** This peer's fingerprint: what others compare before `dmp verify`. */
  fingerprint(): string {
    return fingerprint({ sign: this.keys.sign.public, exchange: this.keys.exchange.public });
  }

  /** Every other peer of the relay with where its identity stands (reads identity files), and its quarantine. */
  async identities(): Promise<(PeerIdentity & { quarantined?: Quarantine })[]> {
    const result: (PeerIdentity & { quarantined?: Quarantine })[] = [];
    for (const peer of await this.peers()) {
      const identity = await this.book.prepare(peer, true);
      const reason = this.components.guard.reason(peer);
      const quarantined = this.components.guard.quarantine(peer);
      result.push({
        ...identity,
        ...(reason && !identity.reason ? { reason } : {}),
        ...(quarantined ? { quarantined } : {}),
      });
    }
    return result;
  }

  /**
   * Marks `peer`'s identity verified when `given` (as read out by its owner) matches it. A
   * `changed` identity whose new fingerprint matches is accepted and verified at once.
   */
  async verify(peer: string, given: string): Promise<PeerIdentity> {
    const id = parsePeerId(peer, 'peer');
    const wanted = normalizeFingerprint(given);
    if (!wanted) throw new DmpError('USAGE', 'a fingerprint is 30 digits (six groups of five, as dmp id shows)');
    await this.book.prepare(id, true);
    const store = new TrustStore(this.components.home);
    let matched = false;
    await store.update(id, (record) => {
      if (!record) return record;
      if (record.changed && sameFingerprint(recordFingerprint(record.changed), wanted)) {
        matched = true;
        return {
          sign: record.changed.sign,
          exchange: record.changed.exchange,
          serial: record.changed.serial,
          state: 'verified',
          since: this.components.clock.now(),
        };
      }
      if (sameFingerprint(recordFingerprint(record), wanted)) {
        matched = true;
        return { ...record, state: 'verified' };
      }
      return record;
    });
    if (!matched) {
      throw new DmpError(
        'AUTH',
        `the fingerprint does not match ${id}'s identity: do not trust it; dmp peers shows what this relay holds`,
        {
          data: { peer: id },
        },
      );
    }
    return this.book.prepare(id, true);
  }

  /** Accepts the identity that replaced `peer`'s pinned one (dmp trust PEER --accept-new). */
  async acceptNewIdentity(peer: string): Promise<PeerIdentity> {
    const id = parsePeerId(peer, 'peer');
    await this.book.prepare(id, true);
    let accepted = false;
    await new TrustStore(this.components.home).update(id, (record) => {
      if (!record?.changed) return record;
      accepted = true;
      return {
        sign: record.changed.sign,
        exchange: record.changed.exchange,
        serial: record.changed.serial,
        state: 'pinned',
        since: this.components.clock.now(),
      };
    });
    if (!accepted) throw new DmpError('USAGE', `${id}'s identity has not changed: nothing to accept`);
    // New keys, a new start: a quarantine earned under the old identity ends.
    this.components.guard.lift(id);
    await this.components.guard.sync();
    return this.book.prepare(id, true);
  }

  /** New key pairs for this peer, published signed by the old ones. */
  async rotate(): Promise<string> {
    this.keys = await rotateOwnIdentity(
      { self: this.self, home: this.components.home, relay: this.components.relay, clock: this.components.clock },
      this.relayKey,
    );
    this.book.rekey(this.keys);
    return this.fingerprint();
  }

  /** The Fernet key of the pair (this peer, `peer`): Python opens their files with it. */
  async pairKey(peer: string): Promise<string> {
    return this.book.pairKey(await this.requirePeer(peer));
  }

  /**
   * Runs the service loop until the signal fires: answers pings, acts on acks, and serves
   * whatever roles this process holds. Callers share one loop per Peer.
   */
  serve(options: { signal: AbortSignal }): Promise<void> {
    return this.node.run(options.signal);
  }

  /** Sends each text as one message. Returns their sequence numbers. */
  async send(to: string, texts: readonly string[], options: SendOptions = {}): Promise<number[]> {
    const peer = await this.requirePeer(to);
    const sender = this.messages.sender(peer);
    // Housekeeping first: delete what was delivered since we last looked.
    await sender.processAck();
    const seqs = await sender.send(texts, { signal: options.signal, onWaiting: options.onWaiting });
    if (options.wait && seqs.length > 0) await this.waitForAck(peer, seqs.at(-1) ?? 0, options);
    return seqs;
  }

  private async waitForAck(peer: PeerId, through: number, options: SendOptions): Promise<void> {
    const { clock, feed, guard } = this.components;
    const sender = this.messages.sender(peer);
    const { wakeup, unsubscribe } = feed.subscribe((change) => change.owner === peer && change.dir === this.self);
    const deadline = options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : clock.now() + options.timeoutMs;
    try {
      for (;;) {
        const ack = await sender.processAck();
        if (ack && ack.through >= through) return;
        if (guard.isUnauthenticated(peer)) {
          throw new DmpError('AUTH', `cannot authenticate acknowledgements from ${peer}: wrong relay key?`, {
            data: { peer },
          });
        }
        if (options.signal?.aborted) throw new DmpError('ABORTED', 'cancelled');
        const left = deadline - clock.now();
        if (left <= 0) {
          throw new DmpError('TIMEOUT', `${peer} has not acknowledged message ${through} yet (it is in the relay)`, {
            data: { peer, through, acked: ack?.through ?? 0 },
          });
        }
        await wakeup.wait(Math.min(left, 1000), options.signal);
      }
    } finally {
      unsubscribe();
    }
  }

  /**
   * Blocks (`on`) or unblocks `peer`: nothing of it reaches the user on any path, its messages
   * are acknowledged and dropped, and it is not told. Unblocking does not replay what was
   * dropped. Returns whether anything changed.
   */
  async block(peer: string, on = true): Promise<boolean> {
    const id = parsePeerId(peer, 'peer');
    if (id === this.self) throw new DmpError('USAGE', `${id} is this peer's own id`);
    return this.blockList.set(id, on);
  }

  /** The peers this peer blocks. */
  blocked(): Promise<string[]> {
    return this.blockList.list();
  }

  /** Publishes each text as one broadcast to every member; returns their sequence numbers. */
  broadcast(texts: readonly string[]): Promise<number[]> {
    return this.broadcasts.send(texts);
  }

  /** Pings `to` like ping(8). */
  async ping(to: string, options: PingOptions = {}): Promise<PingReply[]> {
    const peer = await this.requirePeer(to);
    return ping(this.components, peer, options);
  }

  /**
   * Takes the role of receiving messages in this process: delivers into the inbox and
   * acknowledges, telling `onDelivered`. Fails with LOCKED when another process (a
   * `dmp listen`, the daemon) holds it. Returns the release.
   */
  async receiveMessages(onDelivered: (peer: PeerId, messages: InboxMessage[]) => void): Promise<Release> {
    const release = await acquireLock(this.components.home.lock('receive-messages'), {
      waitMs: 0,
      purpose: 'another dmp listen or the daemon',
      logger: this.components.logger,
    });
    const unregister = [
      this.node.register(this.messages.receiving(onDelivered)),
      this.node.register(this.broadcasts.receiving(onDelivered)),
    ];
    return async () => {
      for (const undo of unregister) undo();
      await release();
    };
  }

  /**
   * Tells the senders of offers waiting for this peer that it cannot receive them, and why
   * (`dftp receive` into a folder it cannot write). Does nothing while another process receives
   * files for this peer. Returns how many senders were told.
   */
  async refuseWaitingFiles(reason: string, from?: string): Promise<number> {
    let role: Awaited<ReturnType<Peer['receiveFilesRole']>>;
    try {
      role = await this.receiveFilesRole({
        out: this.components.home.temp,
        from: from === undefined ? undefined : parsePeerId(from, 'peer'),
      });
    } catch (error) {
      if (isDmpError(error, 'LOCKED')) return 0;
      throw error;
    }
    try {
      return await role.receiver.refuseWaiting(reason);
    } finally {
      await role.release();
    }
  }

  /**
   * Takes the role of receiving files in this process. Fails with LOCKED when another process
   * (a `dftp receive`, the daemon) holds it. Returns the receiver and the release.
   */
  async receiveFilesRole(options: ReceiveOptions): Promise<{ receiver: TransferReceiver; release: Release }> {
    const release = await acquireLock(this.components.home.lock('receive-files'), {
      waitMs: 0,
      purpose: 'another dftp receive or the daemon',
      logger: this.components.logger,
    });
    const { TransferReceiver } = await import('./transfer/receiver.js');
    const receiver = new TransferReceiver(this.components, options);
    const unregister = this.fileReceivers.add(receiver);
    return {
      receiver,
      release: async () => {
        unregister();
        await receiver.close();
        await release();
      },
    };
  }

  /**
   * Prints (through `onMessage`) messages as they arrive, acknowledging them. Messages that
   * arrived earlier but were never shown come first. Runs until `count` messages, the timeout,
   * or the signal.
   */
  async listen(options: ListenOptions): Promise<number> {
    const { clock, home } = this.components;
    const from = options.from === undefined ? undefined : parsePeerId(options.from, 'peer');
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) stop.abort();
    let shown = 0;
    let failure: unknown;
    const fail = (error: unknown) => {
      // Once listening has ended (its count reached, or the caller's signal), nothing fails it.
      if (stop.signal.aborted) return;
      failure ??= error;
      stop.abort();
    };
    const printer = new Wakeup(clock);
    const show = async () => {
      for (const peer of from ? [from] : await this.peers()) {
        // Direct messages and broadcasts: two journals, each with its own cursor.
        for (const [journal, cursorName] of [
          [inboxOf(home, peer), 'inbox.read'],
          [this.broadcasts.inbox(peer), 'broadcast.read'],
        ] as const) {
          const cursorPath = home.stream(peer, cursorName);
          let offset = (await readJsonFile<ReadCursor>(cursorPath))?.offset ?? 0;
          // In steps of bounded size: the inbox may hold a long backlog nobody has shown yet.
          for (;;) {
            if (options.count !== undefined && shown >= options.count) break;
            const { records, ends } = await journal.read(offset, { maxBytes: SHOW_BATCH_BYTES });
            if (records.length === 0) break;
            let taken = 0;
            for (const record of records) {
              if (options.count !== undefined && shown >= options.count) break;
              options.onMessage(record);
              shown += 1;
              taken += 1;
            }
            if (taken === 0) break;
            offset = ends[taken - 1] ?? offset;
            await writeJsonFile(cursorPath, { offset } satisfies ReadCursor);
            if (taken < records.length) break;
          }
        }
      }
      if (options.count !== undefined && shown >= options.count) stop.abort();
    };
    // Without a count, the timeout is how long to listen; with one, a deadline for the count.
    const cancelTimer =
      options.timeoutMs === undefined
        ? undefined
        : clock.timeout(options.timeoutMs, () =>
            options.count === undefined
              ? stop.abort()
              : fail(
                  new DmpError('TIMEOUT', `${shown} of ${options.count} messages arrived in time`, {
                    data: { shown },
                  }),
                ),
          );
    let release: Release | undefined;
    try {
      await show();
      if (stop.signal.aborted) return shown;
      try {
        release = await this.receiveMessages(() => printer.poke());
      } catch (error) {
        if (!isDmpError(error, 'LOCKED')) throw error;
        options.onShared?.();
      }
      const service = this.serve({ signal: stop.signal }).catch(fail);
      while (!stop.signal.aborted) {
        await show().catch(fail);
        // The receiver in this process pokes at once; a receiver elsewhere is polled.
        await printer.wait(release ? 1000 : 100, stop.signal);
      }
      await service;
      if (failure) throw failure;
      return shown;
    } finally {
      cancelTimer?.();
      options.signal?.removeEventListener('abort', onAbort);
      stop.abort();
      await release?.();
    }
  }

  /** Sends one file to `to` under `name`; resolves once the receiver verified it. */
  async sendFile(
    to: string,
    source: { path: string; name: string },
    options: SendFilesOptions = {},
  ): Promise<SendFileResult> {
    const peer = await this.requirePeer(to);
    const blockSize = options.blockSize ?? defaultBlockSize(this.quota);
    return sendFile(this.components, peer, source, { ...options, blockSize });
  }

  /**
   * Sends files and directories (recursively) to `to`. Resolves once the receiver has verified
   * every file; an interrupted call resumes when called again with the same paths.
   */
  async sendFiles(to: string, paths: readonly string[], options: SendFilesOptions = {}): Promise<SendFileResult[]> {
    const peer = await this.requirePeer(to);
    checkQuotaHoldsBlock(this.quota, options.blockSize ?? defaultBlockSize(this.quota));
    const { files, skipped } = await expandSources(paths);
    for (const skip of skipped) options.onEvent?.({ event: 'skipped', peer, file: skip.path, reason: skip.reason });
    return this.sendSources(peer, files, options);
  }

  /**
   * Sends files under the names given (`expandSources` makes them from paths, or the caller
   * does: standard input saved to a file, sent as 'stdin'). Resolves once the receiver has
   * verified every file; an interrupted call resumes when called again with the same files.
   */
  async sendSources(
    to: string,
    files: readonly SourceFile[],
    options: SendFilesOptions = {},
  ): Promise<SendFileResult[]> {
    const peer = await this.requirePeer(to);
    const blockSize = options.blockSize ?? defaultBlockSize(this.quota);
    checkQuotaHoldsBlock(this.quota, blockSize);
    // The service loop runs alongside: acks get processed and pings answered meanwhile.
    const stop = new AbortController();
    const service = this.serve({ signal: stop.signal }).catch(() => {});
    const results: SendFileResult[] = [];
    try {
      let next = 0;
      const worker = async () => {
        while (next < files.length) {
          const file = files[next];
          next += 1;
          if (!file) break;
          results.push(await sendFile(this.components, peer, file, { ...options, blockSize }));
        }
      };
      await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 4, files.length) }, worker));
      return results;
    } finally {
      stop.abort();
      await service;
    }
  }

  /** Receives files into `out` until `count` files arrived whole, or the signal. */
  async receiveFiles(options: ReceiveFilesOptions = {}): Promise<TransferEvent[]> {
    const { clock } = this.components;
    const from = options.from === undefined ? undefined : parsePeerId(options.from, 'peer');
    const stop = new AbortController();
    const done: TransferEvent[] = [];
    // With `count`, the last verdict must reach its sender before we stop (it may have reached
    // it damaged and need publishing again): serve on until the senders have withdrawn their
    // offers, for at most SETTLE_MS.
    let settling = false;
    const settleThenStop = async () => {
      if (settling) return;
      settling = true;
      const until = clock.now() + SETTLE_MS;
      while (!stop.signal.aborted && clock.now() < until && role.receiver.hasUnsettled) {
        await clock.sleep(50, stop.signal).catch(() => {});
      }
      stop.abort();
    };
    const role = await this.receiveFilesRole({
      out: options.out ?? process.cwd(),
      from,
      overwrite: options.overwrite,
      onEvent: (event) => {
        options.onEvent?.(event);
        if (event.event === 'done') {
          done.push(event);
          if (options.count !== undefined && done.length >= options.count) void settleThenStop();
        }
      },
    });
    const onAbort = () => stop.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) stop.abort();
    try {
      await this.serve({ signal: stop.signal });
      return done;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      stop.abort();
      await role.release();
    }
  }

  /**
   * Serves `dir` to the other peers until the signal fires: they list it, get files from it and,
   * when allowed, put files into it and delete them (src/serve/server.ts).
   */
  async serveFolder(dir: string, options: ServeOptions & { signal: AbortSignal }): Promise<void> {
    // One server per peer: two would both act on every request.
    const release = await acquireLock(this.components.home.lock('serve'), {
      waitMs: 0,
      purpose: 'another dftp serve or dmp daemon --serve',
      logger: this.components.logger,
    });
    try {
      const server = await FolderServer.open(this.components, dir, options);
      const undo = [this.node.register(server), this.fileReceivers.add(server.puts)];
      try {
        await this.serve({ signal: options.signal });
      } finally {
        for (const unregister of undo) unregister();
        await server.close();
      }
    } finally {
      await release();
    }
  }

  /** A peer whose folder this one may ask things of: known, accepted, and not blocked. */
  private async requireServer(peer: string): Promise<PeerId> {
    const id = await this.requirePeer(peer);
    await this.blockList.refresh();
    // Its answers would be read, but its transfers never taken: say so instead of waiting.
    if (this.blockList.has(id)) throw new DmpError('USAGE', `${id} is blocked here: dmp unblock ${id} first`);
    return id;
  }

  /** The entries of `path` ('' for the top) in the folder `from` serves. */
  async listFolder(from: string, path = '', options: AskOptions = {}): Promise<Listing> {
    return listServed(this.components, await this.requireServer(from), path, options);
  }

  /** Gets files from the folder `from` serves into `options.out`; one result per name. */
  async getFiles(from: string, names: readonly string[], options: GetOptions): Promise<FileResult[]> {
    const peer = await this.requireServer(from);
    const runtime = { receivers: this.fileReceivers, run: (signal: AbortSignal) => this.serve({ signal }) };
    return getServed(this.components, runtime, peer, names, options);
  }

  /** Puts files (folders recursively) into the folder `to` serves; one result per file. */
  async putFiles(
    to: string,
    paths: readonly string[],
    options: Omit<PutOptions, 'blockSize'> & { blockSize?: number } = {},
  ): Promise<FileResult[]> {
    const peer = await this.requireServer(to);
    const blockSize = options.blockSize ?? defaultBlockSize(this.quota);
    checkQuotaHoldsBlock(this.quota, blockSize);
    const { files, skipped } = await expandSources(paths);
    for (const skip of skipped) options.onEvent?.({ event: 'skipped', peer, file: skip.path, reason: skip.reason });
    return putServed(this.components, peer, files, { ...options, blockSize });
  }

  /** Deletes `name` in the folder `from` serves. */
  async removeFile(
    from: string,
    name: string,
    options: AskOptions & { passcode?: PasscodeSource } = {},
  ): Promise<string> {
    return removeServed(this.components, await this.requireServer(from), name, options);
  }

  /** Messages waiting each way between this peer and `other` (reads only). */
  async messageCounts(other: PeerId): Promise<MessageCounts> {
    const { relay, home, sealer } = this.components;
    await sealer.prepare?.(other);
    const ack = await this.messages.sender(other).peerAcked();
    const outgoing = (await relay.list(this.self, other)).filter((name) => (parseMessageName(name) ?? 0) > ack).length;
    const delivered = await deliveredThrough(home, other);
    const cursor = (await readJsonFile<ReadCursor>(home.stream(other, 'inbox.read')))?.offset ?? 0;
    let unread = 0;
    for await (const records of inboxOf(home, other).batches(cursor)) unread += records.length;
    const waiting = (await relay.list(other, this.self)).filter(
      (name) => (parseMessageName(name) ?? 0) > delivered,
    ).length;
    return { outgoing, incoming: waiting + unread };
  }

  /**
   * Says this peer is online, again every `intervalMs`, until the signal; then offline. The
   * daemon runs it; so will the chat.
   */
  publishPresence(signal: AbortSignal, intervalMs = DEFAULT_PRESENCE_INTERVAL_MS): Promise<void> {
    return this.publisher.run(signal, intervalMs);
  }

  /** Says offline now (dmp logout). */
  logout(): Promise<void> {
    return this.publisher.goOffline();
  }

  /** Records that something new of `peer` arrived (the daemon calls it on activity). */
  heard(peer: PeerId): Promise<void> {
    return this.tracker.heard(peer);
  }

  /** Every other peer: online now (by this machine's judgement) and when last seen. */
  async who(): Promise<WhoEntry[]> {
    const now = this.components.clock.now();
    const entries: WhoEntry[] = [];
    await this.blockList.refresh();
    for (const peer of await this.peers()) {
      // Nothing of a blocked peer reaches the user, its presence included.
      if (this.blockList.has(peer)) continue;
      await this.book.prepare(peer);
      // A quarantined peer's folder is not read: what was seen of it before is all there is.
      const quarantined = this.components.guard.quarantine(peer);
      const seen: Seen | undefined = quarantined ? (await this.tracker.all())[peer] : await this.tracker.observe(peer);
      entries.push({
        peer,
        online: isOnline(seen, now),
        ...(seen && seen.lastSeen > 0 ? { lastSeen: seen.lastSeen } : {}),
        ...(quarantined ? { quarantined } : {}),
      });
    }
    await this.tracker.flush();
    return entries;
  }

  /**
   * Messages received and sent, direct and broadcast, oldest first (what `listen` showed once,
   * shown again). Nothing of a blocked peer is listed.
   */
  async history(query: { peer?: string; since?: number; limit?: number } = {}): Promise<HistoryEntry[]> {
    const peer = query.peer === undefined ? undefined : parsePeerId(query.peer, 'peer');
    await this.blockList.refresh();
    const { readHistory } = await import('./history/history.js');
    const entries = await readHistory(this.components.home, this.self, await this.peers(), { ...query, peer });
    return entries.filter((entry) => !this.blockList.has(entry.from));
  }

  /** Peers seen (online, or anything of theirs arriving) since `since`, ms since the epoch. */
  async whoSince(since: number): Promise<WhoEntry[]> {
    return (await this.who()).filter(
      (entry) => entry.online || (entry.lastSeen ?? 0) >= since || entry.quarantined !== undefined,
    );
  }

  /** Bytes of this peer's files in the relay (what counts against the quota). */
  relayUsage(): Promise<number> {
    return this.components.relay.usage();
  }

  /** File transfers in flight or interrupted, both ways, from local state and the relay (reads only). */
  async transfers(): Promise<TransferRecord[]> {
    const { listTransfers } = await import('./transfer/records.js');
    return listTransfers(this.components);
  }

  /**
   * The transfer in flight or interrupted that `which` names: its id, the first 4 or more
   * characters of its id, or its file (the source path of a send, the destination path of a
   * receive). Fails with UNKNOWN_TRANSFER, or USAGE when several match.
   */
  async findTransfer(which: string): Promise<TransferRecord> {
    const records = await this.transfers();
    const text = which.trim().toLowerCase();
    let matches = records.filter((record) => record.tid === text);
    if (matches.length === 0 && /^[0-9a-f]{4,}$/.test(text)) {
      matches = records.filter((record) => record.tid.startsWith(text));
    }
    if (matches.length === 0) matches = records.filter((record) => record.path === resolve(which));
    if (matches.length === 0) {
      throw new DmpError('UNKNOWN_TRANSFER', `no transfer in flight matches '${which}' (dftp list shows them)`, {
        data: { which },
      });
    }
    if (matches.length > 1) {
      const ids = matches.map(
        (record) => `${record.tid} (${record.direction === 'send' ? 'to' : 'from'} ${record.peer})`,
      );
      throw new DmpError(
        'USAGE',
        `'${which}' matches ${matches.length} transfers: give the id of one: ${ids.join(', ')}`,
      );
    }
    return matches[0]!;
  }

  /**
   * Ends a transfer for good on both sides (see src/transfer/cancel.ts): a send is withdrawn, a
   * receive is refused and its partial file deleted. `which` as for findTransfer. Fails with
   * LOCKED while a process works on it.
   */
  async cancelTransfer(which: string): Promise<TransferRecord> {
    const record = await this.findTransfer(which);
    const { cancelIncoming, cancelOutgoing } = await import('./transfer/cancel.js');
    if (record.direction === 'send') await cancelOutgoing(this.components, record.tid);
    else await cancelIncoming(this.components, record.peer, record.tid);
    return record;
  }
}

/**
 * Relay files are staged in DMP_HOME/tmp when it is on the relay's file system (rename then
 * works, and sync tools never see a half-written file); otherwise as dot-names in the relay.
 */
async function stagingDir(relay: string, temp: string): Promise<string | undefined> {
  try {
    await mkdir(temp, { recursive: true });
    const [a, b] = await Promise.all([stat(relay), stat(temp)]);
    return a.dev === b.dev ? temp : undefined;
  } catch {
    return undefined;
  }
}
