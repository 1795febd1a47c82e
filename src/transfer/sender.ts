/**
 * The sending side of DFTP: one file, one transfer id, chunks dripped into the relay as the
 * quota allows, deleted as the receiver's status acknowledges them.
 *
 * MUST rules enforced here (docs/PROTOCOL.md):
 * - The sender's folder never holds more than its quota (publishWithinQuota).
 * - Chunks are published in index order, hashed as they are read; the last chunk carries the
 *   SHA-256 of the whole file.
 * - A chunk file is deleted only once the receiver's status lists it as durably written.
 * - The source must not change during the transfer: size and mtime are checked at every chunk.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { DmpError, errnoCode } from '../errors.js';
import { acquireLock, removeDeadLocks } from '../local/lock.js';
import { MAX_CONTROL_FILE, PROTOCOL_VERSION } from '../node/envelope.js';
import { isRefused } from '../node/inbound.js';
import type { NodeComponents } from '../node/node.js';
import { openEnvelope, sealEnvelope } from '../node/open.js';
import { publishWithinQuota } from '../node/quota.js';
import { RepeatSchedule } from '../node/repeat.js';
import type { PeerId } from '../util/peer-id.js';
import { checkBlockSize, checkQuotaHoldsBlock } from './block-size.js';
import { type ChunkPlan, chunkRange, fromRanges, planChunks, writeChunkHeader } from './chunk-codec.js';
import { OFFER, type Offer, STATUS, type Status } from './control.js';
import type { TransferEventListener } from './events.js';
import { chunkName, offerName, parseChunkName, statusName } from './names.js';
import { type OutgoingState, resumeOrStart, touchOutgoing, withdraw } from './outgoing-state.js';

export type TransferSenderComponents = Pick<
  NodeComponents,
  'self' | 'relay' | 'inbound' | 'sealer' | 'guard' | 'home' | 'clock' | 'logger' | 'feed' | 'quota'
>;

/** Chunks read ahead and encrypting while the oldest one waits for room in the quota. */
const PIPELINE_DEPTH = 2;
/**
 * Where a block is read into its chunk's buffer: the chunk header goes just before it, and the
 * token is then written over both (Sealer.sealChunk), so each chunk in flight needs one buffer,
 * not a block and a token. Room for the token's 25-byte head and a header of up to 997 bytes.
 */
const DATA_AT = 1024;
/** After the data: a block of padding and the HMAC. */
const TOKEN_TAIL = 16 + 32;
/** The first repeat of an offer no readable status has answered (then 10 s, 20 s, ... 60 s). */
const OFFER_REPEAT_MS = 5000;
/** How often progress is recorded in the state file (its mtime: the last activity `dftp list` shows). */
const TOUCH_EVERY_MS = 5000;

export interface SendFileOptions {
  blockSize: number;
  signal?: AbortSignal;
  onEvent?: TransferEventListener;
  /** The request this transfer answers (a served get, a put): carried in the offer. @default none */
  request?: string;
  /** Refuse a source that is a symbolic link (a served folder). @default false: follow it */
  noFollow?: boolean;
}

/**
 * The source is opened without waiting (a FIFO put in its place would block a thread for good)
 * and, when asked, without following a link; what was opened must be a regular file.
 */
const NON_BLOCKING = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

export interface SendFileResult {
  tid: string;
  bytes: number;
  sha256: string;
}

/** Sends one file to `peer` and resolves once the receiver has verified it whole. */
export async function sendFile(
  ctx: TransferSenderComponents,
  peer: PeerId,
  source: { path: string; name: string },
  options: SendFileOptions,
): Promise<SendFileResult> {
  checkBlockSize(options.blockSize);
  checkQuotaHoldsBlock(ctx.quota, options.blockSize);
  // The crypto worker boots while the offer is published.
  ctx.sealer.warm?.();
  const path = resolve(source.path);
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (error) {
    throw new DmpError('IO', `cannot read ${source.path}: ${errnoCode(error) ?? (error as Error).message}`, {
      cause: error,
    });
  }
  if (!info.isFile()) throw new DmpError('USAGE', `${source.path} is not a regular file`);

  const state = await resumeOrStart(ctx, peer, path, source.name, info, options.blockSize, options.request);
  const release = await acquireLock(ctx.home.lock(`send-${state.tid}`), {
    waitMs: 0,
    purpose: `another dftp send of ${source.name}`,
  });
  try {
    return await new OutgoingTransfer(ctx, state, options).run();
  } finally {
    await release();
    // A sender killed mid-transfer leaves its lock and pid file until that transfer runs again,
    // which may be never.
    await removeDeadLocks(dirname(ctx.home.lock('send-')), 'send-');
  }
}

class OutgoingTransfer {
  private readonly plan: ChunkPlan;
  private readonly hash = createHash('sha256');
  private sha256: string | undefined;
  /** Chunks the receiver has durably written. */
  private have = new Set<number>();
  /** Chunks it asked for again. */
  private resend = new Set<number>();
  /** Chunks of ours in the relay. */
  private readonly inRelay = new Set<number>();
  private lastStatusVersion: string | undefined;
  private waitingSaid = false;
  /** Whether the offer event was emitted: no progress event may come before it. */
  private announced = false;
  /** When the state file last recorded progress. */
  private touchedAt = 0;
  /** What the last 'waiting' event from the quota said. */
  private lastWaiting: string | undefined;
  /** When the offer was last published: it is published again while no status ever came. */
  private offerAt = 0;
  private readonly offerRepeat: RepeatSchedule;
  /** Bytes this run wrote into the relay (offer and chunks, resends included). */
  private relayBytes = 0;
  private status: Status | undefined;
  private handle: FileHandle | undefined;
  private readonly wakeup;
  private readonly unsubscribe;

  constructor(
    private readonly ctx: TransferSenderComponents,
    private readonly state: OutgoingState & { resumed?: boolean },
    private readonly options: SendFileOptions,
  ) {
    this.plan = planChunks(state.size, state.blockSize);
    // A first status takes more than a second to come back through a sync engine, and an offer
    // rewritten before it was carried is only carried later: wait longer before the first repeat.
    this.offerRepeat = new RepeatSchedule(ctx.clock, { firstMs: OFFER_REPEAT_MS });
    const subscription = ctx.feed.subscribe((change) => change.owner === state.peer && change.dir === ctx.self);
    this.wakeup = subscription.wakeup;
    this.unsubscribe = subscription.unsubscribe;
  }

  /** Bytes the receiver has durably written, by its last status. */
  private haveBytes(): number {
    let bytes = 0;
    for (const index of this.have) if (index < this.plan.count) bytes += chunkRange(this.plan, index).length;
    return bytes;
  }

  private emitProgress(): void {
    this.waitingSaid = false;
    // The offer event comes first; it carries what the receiver held at the start.
    if (!this.announced) return;
    const now = this.ctx.clock.now();
    if (now - this.touchedAt >= TOUCH_EVERY_MS) {
      this.touchedAt = now;
      void touchOutgoing(this.ctx, this.state.tid);
    }
    this.options.onEvent?.({
      event: 'progress',
      peer: this.state.peer,
      file: this.state.name,
      tid: this.state.tid,
      bytes: this.haveBytes(),
      total: this.state.size,
    });
  }

  async run(): Promise<SendFileResult> {
    const { ctx, state } = this;
    const signal = this.options.signal;
    try {
      const noFollow = this.options.noFollow ? (constants.O_NOFOLLOW ?? 0) : 0;
      this.handle = await open(state.path, NON_BLOCKING | noFollow).catch((error: unknown) => {
        const code = errnoCode(error);
        if (code === 'ELOOP') throw new DmpError('TRANSFER_FAILED', `${state.name} is a symbolic link: not sent`);
        throw new DmpError('IO', `cannot read ${state.path}: ${code ?? (error as Error).message}`, { cause: error });
      });
      if (!(await this.handle.stat()).isFile()) {
        throw new DmpError('TRANSFER_FAILED', `${state.name} is not a regular file any more: not sent`);
      }
      const present = await ctx.relay.list(ctx.self, state.peer);
      for (const name of present) {
        const chunk = parseChunkName(name);
        if (chunk?.tid === state.tid) this.inRelay.add(chunk.index);
      }
      // A resumed send says how far the receiver got before it says anything else.
      if (state.resumed) await this.readStatus();
      this.announced = true;
      this.options.onEvent?.({
        event: 'offer',
        peer: state.peer,
        file: state.name,
        tid: state.tid,
        total: state.size,
        resumed: state.resumed ?? false,
        bytes: this.haveBytes(),
        blockSize: state.blockSize,
        ...(state.resumed && this.options.blockSize !== state.blockSize
          ? { askedBlockSize: this.options.blockSize }
          : {}),
      });
      if (!present.includes(offerName(state.tid))) await this.publishOffer();
      await this.readStatus();
      // A pipeline: blocks are read and hashed here in order, encrypted in the crypto worker
      // while the next ones are read, and published in order as the quota allows. Each chunk's
      // buffer goes round (read, worker, relay, again), so memory stays flat.
      const bufferSize = DATA_AT + Math.max(1, this.plan.blockSize) + TOKEN_TAIL;
      const free: Buffer[] = [];
      const encrypting: { index: number; token: Promise<Buffer> }[] = [];
      const publishOldest = async () => {
        const oldest = encrypting.shift();
        if (!oldest) return;
        const token = await oldest.token;
        await this.publishToken(oldest.index, token);
        // The token is a view of the chunk's buffer, back from the worker.
        free.push(Buffer.from(token.buffer, 0, token.buffer.byteLength));
        await this.readStatus();
        await this.serveResends(oldest.index);
      };
      try {
        for (let index = 0; index < this.plan.count; index += 1) {
          if (this.status?.state === 'complete' || this.status?.state === 'failed') break;
          const buffer = free.pop() ?? Buffer.allocUnsafeSlow(bufferSize);
          const data = await this.readBlock(index, buffer.subarray(DATA_AT));
          this.hash.update(data);
          if (index === this.plan.count - 1) this.sha256 = this.hash.digest('hex');
          if (this.have.has(index) || (this.inRelay.has(index) && !this.resend.has(index))) {
            free.push(buffer);
            continue;
          }
          const start = this.writeHeader(index, buffer);
          const token = ctx.sealer.sealChunk(state.peer, buffer, start, DATA_AT + data.length);
          // Awaited in order below; until then a failure must not count as unhandled.
          token.catch(() => {});
          encrypting.push({ index, token });
          while (encrypting.length >= PIPELINE_DEPTH) await publishOldest();
        }
        while (encrypting.length > 0) await publishOldest();
      } finally {
        // On an early exit, let the tokens still in the worker settle quietly.
        for (const item of encrypting) item.token.catch(() => {});
      }
      // Everything is out: wait for the receiver's verdict.
      for (;;) {
        await this.readStatus();
        if (this.status?.state === 'complete') break;
        if (this.status?.state === 'failed') {
          await withdraw(ctx, state);
          throw new DmpError(
            'TRANSFER_FAILED',
            `${state.peer} rejected ${state.name}: ${this.status.reason ?? 'failed'}`,
          );
        }
        await this.serveResends(this.plan.count);
        if (signal?.aborted) throw new DmpError('ABORTED', 'cancelled; run the same command again to resume');
        if (!this.waitingSaid && this.have.size === 0) {
          this.waitingSaid = true;
          this.options.onEvent?.({
            event: 'waiting',
            peer: state.peer,
            file: state.name,
            tid: state.tid,
            reason: `waiting for ${state.peer}`,
          });
        }
        await this.wakeup.wait(1000, signal);
      }
      const sha256 = this.status.sha256 ?? this.sha256 ?? '';
      if (this.sha256 !== undefined && sha256 !== this.sha256) {
        throw new DmpError('TRANSFER_FAILED', `${state.peer} verified ${state.name} with another checksum`);
      }
      await withdraw(ctx, state);
      this.options.onEvent?.({
        event: 'done',
        peer: state.peer,
        file: state.name,
        tid: state.tid,
        bytes: state.size,
        sha256,
        relayBytes: this.relayBytes,
      });
      return { tid: state.tid, bytes: state.size, sha256 };
    } finally {
      this.unsubscribe();
      await this.handle?.close();
    }
  }

  private async publishOffer(): Promise<void> {
    const { ctx, state } = this;
    const offer: Offer = {
      tid: state.tid,
      name: state.name,
      size: state.size,
      mtimeMs: state.mtimeMs,
      blockSize: state.blockSize,
      count: this.plan.count,
      ...(state.request === undefined ? {} : { request: state.request }),
    };
    const data = sealEnvelope(ctx, {
      v: PROTOCOL_VERSION,
      type: OFFER.type,
      from: ctx.self,
      to: state.peer,
      seq: 0,
      sentAt: ctx.clock.now(),
      body: offer,
    });
    await this.withinQuota(data.length, () => ctx.relay.publish(state.peer, [{ name: offerName(state.tid), data }]));
    this.relayBytes += data.length;
    this.offerRepeat.published(this.offerAt === 0);
    this.offerAt = ctx.clock.now();
  }

  /** Publishes again the chunks below `limit` that the receiver asked for. */
  private async serveResends(limit: number): Promise<void> {
    for (const index of [...this.resend]) {
      if (index < limit && !this.have.has(index)) await this.publishChunk(index);
    }
  }

  /** Reads block `index` from the source, and fails if the source changed under us. */
  private async readBlock(index: number, into?: Buffer): Promise<Buffer> {
    const handle = this.handle!;
    const { offset, length } = chunkRange(this.plan, index);
    const info = await handle.stat();
    if (info.size !== this.state.size || info.mtimeMs !== this.state.mtimeMs) {
      await withdraw(this.ctx, this.state);
      throw new DmpError('TRANSFER_FAILED', `${this.state.path} changed while it was being sent; send it again`);
    }
    const data = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await handle.read(data, filled, length - filled, offset + filled);
      if (bytesRead === 0) throw new DmpError('TRANSFER_FAILED', `${this.state.path} shrank while it was being sent`);
      filled += bytesRead;
    }
    return data;
  }

  /**
   * Writes the binding header of chunk `index` just before its data (at DATA_AT in `buffer`);
   * returns where the plaintext starts.
   */
  private writeHeader(index: number, buffer: Buffer): number {
    const { offset, length } = chunkRange(this.plan, index);
    const last = index === this.plan.count - 1;
    return writeChunkHeader(
      {
        v: PROTOCOL_VERSION,
        from: this.ctx.self,
        to: this.state.peer,
        tid: this.state.tid,
        index,
        offset,
        length,
        ...(last ? { sha256: this.sha256 } : {}),
      },
      buffer,
      DATA_AT,
    );
  }

  /** Reads, seals and publishes chunk `index` again (a resend), in a buffer of its own. */
  private async publishChunk(index: number): Promise<void> {
    const buffer = Buffer.allocUnsafeSlow(DATA_AT + chunkRange(this.plan, index).length + TOKEN_TAIL);
    const data = await this.readBlock(index, buffer.subarray(DATA_AT));
    const token = await this.ctx.sealer.sealChunk(
      this.state.peer,
      buffer,
      this.writeHeader(index, buffer),
      DATA_AT + data.length,
    );
    await this.publishToken(index, token);
  }

  private async publishToken(index: number, token: Buffer): Promise<void> {
    const { ctx, state } = this;
    // Chunks are not fsynced: the source can always make them again, and a torn one fails
    // authentication and is asked for again.
    await this.withinQuota(token.length, () =>
      ctx.relay.publish(state.peer, [{ name: chunkName(state.tid, index), data: token }], { durable: false }),
    );
    this.relayBytes += token.length;
    this.inRelay.add(index);
    this.resend.delete(index);
  }

  private async withinQuota(bytes: number, publish: () => Promise<void>): Promise<void> {
    await publishWithinQuota(this.ctx, bytes, publish, {
      signal: this.options.signal,
      onWaiting: (_held, why) => {
        // Said once until the receiver makes progress again, or the reason changes.
        const reason =
          why === 'relay-full' ? 'relay full: waiting for space' : `relay quota full, waiting for ${this.state.peer}`;
        if (this.waitingSaid && this.lastWaiting === reason) return;
        this.waitingSaid = true;
        this.lastWaiting = reason;
        this.options.onEvent?.({
          event: 'waiting',
          peer: this.state.peer,
          file: this.state.name,
          tid: this.state.tid,
          reason,
        });
      },
      pause: async () => {
        await this.wakeup.wait(1000, this.options.signal);
        await this.readStatus();
      },
    });
  }

  /** Reads the receiver's status; deletes the chunks it acknowledges. */
  private async readStatus(): Promise<void> {
    const { ctx, state } = this;
    const read = await ctx.inbound.read(state.peer, statusName(state.tid), { maxBytes: MAX_CONTROL_FILE });
    if (this.status === undefined && this.offerAt > 0 && this.offerRepeat.due) {
      // No readable word from the receiver yet: it may not run, or our offer (or its request
      // for it) reached the other side damaged. Publish the offer again, ever less often.
      await this.publishOffer();
    }
    // A status we cannot read is no status: the receiver publishes it again, replacing this one.
    if (read === undefined || isRefused(read) || read.version === this.lastStatusVersion) return;
    this.lastStatusVersion = read.version;
    const opened = openEnvelope(ctx, state.peer, statusName(state.tid), read, { kind: STATUS });
    const status = opened.envelope?.body;
    if (!status || status.tid !== state.tid) {
      // A damaged status is a sync glitch: the receiver publishes it again. A receiver none of
      // whose files ever opened holds another key.
      if (opened.error && opened.verdict === 'unauthenticated' && this.status === undefined) {
        throw new DmpError('AUTH', `cannot authenticate the status from ${state.peer}: wrong relay key?`, {
          data: { peer: state.peer },
          cause: opened.error,
        });
      }
      return;
    }
    this.status = status;
    const have = fromRanges(status.have);
    const acked = [...this.inRelay].filter((index) => have.has(index));
    if (acked.length > 0) {
      await ctx.relay.remove(
        state.peer,
        acked.map((index) => chunkName(state.tid, index)),
      );
      for (const index of acked) this.inRelay.delete(index);
    }
    if (status.needOffer) {
      // A fresh token, so the sync tool carries new content.
      await this.publishOffer();
      return;
    }
    const grew = have.size !== this.have.size;
    this.have = have;
    this.resend = new Set(status.resend.filter((index) => !have.has(index)));
    if (status.state === 'paused' && status.reason) {
      this.options.onEvent?.({
        event: 'waiting',
        peer: state.peer,
        file: state.name,
        tid: state.tid,
        reason: status.reason,
      });
    }
    if (grew) this.emitProgress();
  }
}
