/**
 * The public API: one Peer per (relay, id, key, home). The CLI is a thin layer over this.
 */
import { mkdir, stat } from 'node:fs/promises';
import { type Clock, systemClock } from './clock.js';
import { CryptoPool } from './crypto/crypto-pool.js';
import { type FernetKey, parseKey } from './crypto/fernet.js';
import { DmpError, isDmpError } from './errors.js';
import { readJsonFile, writeJsonFile } from './local/files.js';
import { HomeLayout } from './local/home.js';
import { acquireLock } from './local/lock.js';
import { type Logger, silentLogger } from './log.js';
import { FolderRelay } from './relay/folder-relay.js';
import type { RelayStorage } from './relay/storage.js';
import type { PeerContext } from './stream/context.js';
import { ChangeFeed, Wakeup } from './stream/feed.js';
import { type PingOptions, type PingReply, ping } from './stream/ping.js';
import { type InboxMessage, MessageReceiver } from './stream/receiver.js';
import { MessageSender } from './stream/sender.js';
import { type IncomingHandler, runService, type ServiceOptions } from './stream/service.js';
import type { TransferEvent, TransferEventListener } from './transfer/events.js';
import { TransferReceiver } from './transfer/receiver.js';
import { checkQuotaHoldsBlock, defaultBlockSize, type SendFileResult, sendFile } from './transfer/sender.js';
import { expandSources } from './transfer/walk.js';
import { type PeerId, parsePeerId } from './util/peer-id.js';

export const DEFAULT_QUOTA = 64 * 1024 * 1024;
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
  /** Full rescan interval, ms (default 2000). */
  rescanMs?: number;
  /** Bytes this peer may hold in its relay folder (default 64 MiB). */
  quota?: number;
  clock?: Clock;
  logger?: Logger;
  /** Only look (dmp status): do not create or probe this peer's folder. */
  inspectOnly?: boolean;
}

export interface SendOptions {
  /** Wait until the peer has acknowledged every message sent. */
  wait?: boolean;
  /** With `wait`: give up after this many ms (TIMEOUT). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Publishing waits for room under the quota. */
  onWaiting?: (held: number) => void;
}

export interface ListenOptions {
  /** Only messages from this peer. */
  from?: string;
  /** Stop after this many messages. */
  count?: number;
  /** Give up after this many ms (TIMEOUT) when `count` messages have not come. */
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

interface ReadCursor {
  offset: number;
}

export class Peer {
  readonly self: PeerId;
  readonly ctx: PeerContext;
  private readonly senders = new Map<PeerId, MessageSender>();
  private readonly receivers = new Map<PeerId, MessageReceiver>();
  private readonly closer = new AbortController();
  private feedInstance: ChangeFeed | undefined;

  private constructor(ctx: PeerContext) {
    this.ctx = ctx;
    this.self = ctx.self;
  }

  static async open(options: PeerOptions): Promise<Peer> {
    const self = parsePeerId(options.id, 'id');
    const key: FernetKey = parseKey(options.key);
    const home = new HomeLayout(options.home, self);
    const logger = options.logger ?? silentLogger;
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
    return new Peer({
      self,
      relay,
      key,
      home,
      clock: options.clock ?? systemClock,
      logger,
      quota: options.quota ?? DEFAULT_QUOTA,
      cryptoPool: new CryptoPool(),
    });
  }

  /** Stops watchers; the Peer cannot be used afterwards. */
  close(): void {
    this.closer.abort();
    this.ctx.cryptoPool.close();
  }

  get feed(): ChangeFeed {
    this.feedInstance ??= new ChangeFeed(this.ctx.relay, this.ctx.clock, this.closer.signal);
    return this.feedInstance;
  }

  sender(peer: PeerId): MessageSender {
    let sender = this.senders.get(peer);
    if (!sender) {
      sender = new MessageSender(this.ctx, peer);
      this.senders.set(peer, sender);
    }
    return sender;
  }

  private receiver(peer: PeerId): MessageReceiver {
    let receiver = this.receivers.get(peer);
    if (!receiver) {
      receiver = new MessageReceiver(this.ctx, peer);
      this.receivers.set(peer, receiver);
    }
    return receiver;
  }

  /** Fails with UNKNOWN_PEER when `peer` has no folder in the relay. */
  async requirePeer(peer: string): Promise<PeerId> {
    const id = parsePeerId(peer, 'peer');
    if (id === this.self) throw new DmpError('USAGE', `${id} is this peer's own id`);
    if (!(await this.ctx.relay.peers()).includes(id)) {
      throw new DmpError('UNKNOWN_PEER', `no peer '${id}' in the relay (has it run dmp init with this relay?)`, {
        data: { peer: id },
      });
    }
    return id;
  }

  /** Sends each text as one message. Returns their sequence numbers. */
  async send(to: string, texts: readonly string[], options: SendOptions = {}): Promise<number[]> {
    const peer = await this.requirePeer(to);
    const sender = this.sender(peer);
    // Housekeeping first: delete what was delivered since we last looked.
    await sender.processAck();
    const seqs = await sender.send(texts, { signal: options.signal, onWaiting: options.onWaiting });
    if (options.wait && seqs.length > 0) await this.waitForAck(peer, seqs.at(-1) ?? 0, options);
    return seqs;
  }

  private async waitForAck(peer: PeerId, through: number, options: SendOptions): Promise<void> {
    const sender = this.sender(peer);
    const { wakeup, unsubscribe } = this.feed.subscribe((change) => change.owner === peer && change.dir === this.self);
    const deadline =
      options.timeoutMs === undefined ? Number.POSITIVE_INFINITY : this.ctx.clock.now() + options.timeoutMs;
    try {
      for (;;) {
        const ack = await sender.processAck();
        if (ack && ack.through >= through) return;
        if (sender.suspectWrongKey) {
          throw new DmpError('AUTH', `cannot authenticate acknowledgements from ${peer}: wrong relay key?`, {
            data: { peer },
          });
        }
        if (options.signal?.aborted) throw new DmpError('ABORTED', 'cancelled');
        const left = deadline - this.ctx.clock.now();
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

  /** Pings `to` like ping(8). */
  async ping(to: string, options: PingOptions = {}): Promise<PingReply[]> {
    const peer = await this.requirePeer(to);
    return ping(this.ctx, this.feed, peer, options);
  }

  /**
   * Prints (through `onMessage`) messages as they arrive, acknowledging them. Messages that
   * arrived earlier but were never shown come first. Runs until `count` messages, the timeout,
   * or the signal.
   */
  async listen(options: ListenOptions): Promise<number> {
    const from = options.from === undefined ? undefined : parsePeerId(options.from, 'peer');
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let shown = 0;
    let failure: unknown;
    const fail = (error: unknown) => {
      failure ??= error;
      stop.abort();
    };
    const printer = new Wakeup(this.ctx.clock);
    const show = async () => {
      for (const peer of from ? [from] : await this.otherPeers()) {
        if (options.count !== undefined && shown >= options.count) return;
        const cursorPath = this.ctx.home.stream(peer, 'inbox.read');
        const cursor = (await readJsonFile<ReadCursor>(cursorPath)) ?? { offset: 0 };
        const { records, ends } = await this.receiver(peer).inbox.read(cursor.offset);
        if (records.length === 0) continue;
        let taken = 0;
        for (const record of records) {
          if (options.count !== undefined && shown >= options.count) break;
          options.onMessage(record);
          shown += 1;
          taken += 1;
        }
        await writeJsonFile(cursorPath, { offset: ends[taken - 1] ?? cursor.offset } satisfies ReadCursor);
      }
      if (options.count !== undefined && shown >= options.count) stop.abort();
    };
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(
            () =>
              fail(
                new DmpError('TIMEOUT', `${shown} of ${options.count ?? 'the'} messages arrived in time`, {
                  data: { shown },
                }),
              ),
            options.timeoutMs,
          );
    let release: (() => Promise<void>) | undefined;
    try {
      await show();
      if (stop.signal.aborted) return shown;
      try {
        release = await acquireLock(this.ctx.home.lock('receive-messages'), {
          waitMs: 0,
          purpose: 'another dmp listen or the daemon',
        });
      } catch (error) {
        if (!isDmpError(error, 'LOCKED')) throw error;
        options.onShared?.();
      }
      const handlers = release ? [this.messageHandler(() => printer.poke())] : [];
      const service = this.serve({ signal: stop.signal, handlers }).catch(fail);
      while (!stop.signal.aborted) {
        await show().catch(fail);
        // The receiver in this process pokes at once; a receiver elsewhere is polled.
        await printer.wait(release ? 1000 : 100, stop.signal);
      }
      await service;
      if (failure) throw failure;
      return shown;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      stop.abort();
      await release?.();
    }
  }

  /**
   * Sends files and directories (recursively) to `to`. Resolves once the receiver has verified
   * every file; an interrupted call resumes when called again with the same paths.
   */
  async sendFiles(to: string, paths: readonly string[], options: SendFilesOptions = {}): Promise<SendFileResult[]> {
    const peer = await this.requirePeer(to);
    const blockSize = options.blockSize ?? defaultBlockSize(this.ctx.quota);
    checkQuotaHoldsBlock(this.ctx.quota, blockSize);
    const { files, skipped } = await expandSources(paths);
    for (const skip of skipped) options.onEvent?.({ event: 'skipped', peer, file: skip.path, reason: skip.reason });
    // The message service runs alongside: acks get processed and pings answered meanwhile.
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
          results.push(await sendFile(this.ctx, this.feed, peer, file, { ...options, blockSize }));
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
    const from = options.from === undefined ? undefined : parsePeerId(options.from, 'peer');
    const release = await acquireLock(this.ctx.home.lock('receive-files'), {
      waitMs: 0,
      purpose: 'another dftp receive or the daemon',
    });
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const done: TransferEvent[] = [];
    let receiver: TransferReceiver | undefined;
    // With `count`, the last verdict must reach its sender before we stop (it may have reached
    // it damaged and need publishing again): serve on until the senders have withdrawn their
    // offers, for at most SETTLE_MS.
    let settling = false;
    const settleThenStop = async () => {
      if (settling) return;
      settling = true;
      const until = this.ctx.clock.now() + SETTLE_MS;
      while (!stop.signal.aborted && this.ctx.clock.now() < until && receiver?.hasUnsettled !== false) {
        await this.ctx.clock.sleep(50, stop.signal).catch(() => {});
      }
      stop.abort();
    };
    try {
      receiver = new TransferReceiver(this.ctx, {
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
      await this.serve({ signal: stop.signal, handlers: [receiver] });
      return done;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      stop.abort();
      await release();
    }
  }

  /**
   * The consumer of incoming message streams: delivers into the inbox, acknowledges, and calls
   * `onDelivered` when something new is there. Whoever runs it must hold the receive-messages lock.
   */
  messageHandler(onDelivered: (peer: PeerId, messages: InboxMessage[]) => void): IncomingHandler {
    return {
      handle: async (peer, names) => {
        const receiver = this.receiver(peer);
        const delivered = await receiver.poll(names);
        if (receiver.suspectWrongKey) {
          throw new DmpError('AUTH', `cannot authenticate messages from ${peer}: wrong relay key?`, {
            data: { peer },
          });
        }
        if (delivered.length > 0) onDelivered(peer, delivered);
        return receiver.hasMore;
      },
    };
  }

  /**
   * Runs the service loop until the signal fires: answers pings, processes acks, and feeds the
   * handlers given (a handler added to the array later is picked up on the next pass).
   */
  async serve(
    options: Pick<ServiceOptions, 'signal'> & Partial<Omit<ServiceOptions, 'signal' | 'senderFor'>>,
  ): Promise<void> {
    await runService(this.ctx, this.feed, {
      onError: (error) => this.ctx.logger.log('warn', 'relay-error', { error: error.message }),
      ...options,
      handlers: options.handlers ?? [],
      senderFor: (peer) => this.sender(peer),
    });
  }

  /** The other peers of the relay: whoever may have sent us messages. */
  private async otherPeers(): Promise<PeerId[]> {
    return (await this.ctx.relay.peers()).filter((peer) => peer !== this.self);
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
