/**
 * The receiving side of DFTP. Offers become hidden partial files inside the output folder;
 * chunks are written at their offsets, fsynced, and only then acknowledged in the status file;
 * the whole file's SHA-256 is checked before it is moved into place under a name of the
 * receiver's choosing.
 *
 * MUST rules enforced here (docs/PROTOCOL.md):
 * - Every chunk is authenticated and checked against its transfer, index, offset and length.
 * - A chunk is acknowledged only after it is fsynced in the partial file.
 * - The file appears under its final name only once its checksum matched; on a mismatch the
 *   partial is deleted and the transfer fails.
 * - The receiver decides every path, inside the output folder; an existing file is never
 *   replaced unless the user said --overwrite.
 */
import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, statfs, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { tokenLength } from '../crypto/fernet.js';
import { DmpError, errnoCode, isDmpError } from '../errors.js';
import { readJsonFile, writeJsonFile } from '../local/files.js';
import { MAX_CONTROL_FILE, PROTOCOL_VERSION } from '../node/envelope.js';
import { isRefused } from '../node/inbound.js';
import type { IncomingHandler, NodeComponents } from '../node/node.js';
import { openEnvelope, rejected, sealEnvelope } from '../node/open.js';
import { RepeatSchedule } from '../node/repeat.js';
import type { PeerId } from '../util/peer-id.js';
import { CHUNK_OVERHEAD } from './block-size.js';
import {
  type ChunkPlan,
  checkChunk,
  chunkRange,
  decodeChunkPlaintext,
  fromRanges,
  planChunks,
  toRanges,
} from './chunk-codec.js';
import { MAX_MTIME_MS, OFFER, type Offer, STATUS, type Status } from './control.js';
import type { TransferEvent, TransferEventListener } from './events.js';
import { FinishedTransfers } from './finished.js';
import { type IncomingState, incomingStatePath } from './incoming-state.js';
import { CHUNK, chunkName, offerName, parseChunkName, parseOfferName, parseStatusName, statusName } from './names.js';
import { localWriteError, openPartial, placeFile, syncDirectory } from './placement.js';
import { outputFolder, resolveInside, safeRelativePath } from './safe-path.js';

/**
 * Chunks read and decrypted ahead of the one being written. One keeps the worker busy while
 * this thread writes and hashes (a second bought no time, and cost 4 MiB more memory).
 */
const READ_AHEAD = 1;
/**
 * A pass that writes more than this starts making its chunks durable (fsync, record, status)
 * while it goes on writing, so that a burst (a sync engine delivering a whole window at once)
 * does not end with one fsync of everything: 128 MiB present at once took 0.69-0.97 s from
 * offer to verified, 0.49-0.50 s of it with no fsync at all.
 */
const COMMIT_BYTES = 16 * 1024 * 1024;
/** The longest reason a status carries (the sender's check allows 1000 characters). */
const MAX_REASON = 500;
/**
 * How long an offer must stay missing before it counts as withdrawn. A sync engine may replace
 * a file by deleting the old one before it moves the new one into place (Syncthing does), so
 * an offer the sender publishes again is missing for a moment: taken for a withdrawal, it cost
 * the partial file of a transfer still running. The folder is looked at again after this long.
 */
const WITHDRAWN_AFTER_MS = 250;
/** The largest round trip guessed from an offer's time stamp (a status then repeats after 10 s at the latest). */
const GUESSED_ROUND_TRIP_MAX_MS = 5000;

/** Bytes of the chunks the receiver holds, durable and recorded. */
function bytesHeld(incoming: Pick<Incoming, 'plan' | 'have'>): number {
  let bytes = 0;
  for (const index of incoming.have) bytes += chunkRange(incoming.plan, index).length;
  return bytes;
}

/** Errors of a folder that does not take files, as said to the sender. */
const WRITE_REFUSED: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
};

export interface ReceiveOptions {
  /** Where files land (created when missing), or where each sender's files land. */
  out: string | ((peer: PeerId) => string);
  /** Only accept transfers from this peer. */
  from?: PeerId;
  /** Replace existing files instead of choosing a free name. */
  overwrite?: boolean;
  onEvent?: TransferEventListener;
  /**
   * Which offers this receiver takes. @default those that answer no request: a transfer that
   * answers one (a served get, a put: `offer.request`) belongs to that exchange, and several
   * receivers, in this process or others of this peer, each take only their own.
   */
  accept?: (peer: PeerId, offer: Offer) => boolean;
}

/** What an ordinary receiver takes: plain sends. */
const PLAIN_SENDS = (_peer: PeerId, offer: Offer): boolean => offer.request === undefined;

interface Incoming {
  state: IncomingState;
  plan: ChunkPlan;
  /** Chunks fsynced and recorded: what the status acknowledges. */
  have: Set<number>;
  /** Chunks written into the partial file, durable or not yet (a superset of `have`). */
  written: Set<number>;
  /** The partial file, open while the transfer runs. */
  handle?: FileHandle;
  /** The fsync and record of chunks written before, running while the next pass reads. */
  commit?: Promise<void>;
  /** Chunks written and not yet in a commit: they go in the next one. */
  uncommitted: number[];
  /** A commit that failed: reported by the next pass. */
  failure?: unknown;
  /** Files that failed, by chunk index, with the version that failed. */
  bad: Map<number, string>;
  /** Running hash over the contiguous prefix of chunks, and the next index it needs. */
  hash: Hash | undefined;
  hashedIndex: number;
  lastStatus?: string;
  repeat: RepeatSchedule;
  /** The first status that acknowledged chunks the sender has not deleted yet: when, and which. */
  awaiting?: { at: number; chunks: number[] };
}

export type TransferReceiverComponents = Pick<
  NodeComponents,
  'self' | 'relay' | 'inbound' | 'sealer' | 'guard' | 'home' | 'clock' | 'logger' | 'feed'
>;

export class TransferReceiver implements IncomingHandler {
  readonly kinds = [OFFER, CHUNK];
  private readonly transfers = new Map<string, Incoming>();
  private readonly outFor: (peer: PeerId) => string;
  /** Offers that failed, by peer/tid, with the version that failed: read again once it changes. */
  private readonly rejectedOffers = new Map<string, string>();
  /** Chunk buffers to read into again. */
  private readonly buffers: Buffer[] = [];
  /** Finished transfers (peer/tid) whose sender has not yet withdrawn its offer. */
  private readonly unsettled = new Set<string>();
  /** Transfers finished and withdrawn before, kept in DMP_HOME: their offers are replays. */
  private readonly finished: FinishedTransfers;
  /** Replayed offers (peer/tid) being answered with their old verdict. */
  private readonly replays = new Map<string, { status: Status; repeat: RepeatSchedule; published: boolean }>();
  /** Transfers (peer/tid) whose offer was missing at the last look, and since when. */
  private readonly missingSince = new Map<string, number>();
  /**
   * How long each sender last took to delete chunks after a status acknowledged them, ms (or,
   * before that was seen, twice the way of its offer here): a status is not published again
   * sooner than twice that (RepeatSchedule.roundTrip).
   */
  private readonly roundTrips = new Map<PeerId, number>();
  /** Offers (peer/tid) this receiver does not take (yet), as read: looked at again, not reopened. */
  private readonly declined = new Map<string, { version: string; offer: Offer }>();
  private readonly accepts: (peer: PeerId, offer: Offer) => boolean;
  private closed = false;

  /**
   * Answers every offer waiting for this peer that it has not started with a `failed` status
   * saying `reason` (a receiver that cannot write where it was told to): its senders stop with
   * that line instead of waiting for ever. Transfers already under way are left as they are.
   */
  async refuseWaiting(reason: string): Promise<number> {
    const { relay, self, sealer } = this.ctx;
    let refused = 0;
    for (const peer of await relay.peers()) {
      if (peer === self || (this.options.from !== undefined && peer !== this.options.from)) continue;
      if ((await sealer.prepare?.(peer)) === false) continue;
      for (const name of await relay.list(peer, self)) {
        const tid = parseOfferName(name);
        if (tid === undefined || (await readJsonFile(this.statePath(peer, tid))) !== undefined) continue;
        // Only offers this receiver would take: one answering a request is its exchange's.
        const read = await this.ctx.inbound.read(peer, name, { maxBytes: MAX_CONTROL_FILE });
        if (!read || isRefused(read)) continue;
        const offer = openEnvelope(this.ctx, peer, name, read, { kind: OFFER }).envelope?.body;
        if (!offer || offer.tid !== tid || !this.accepts(peer, offer)) continue;
        const status: Status = { tid, state: 'failed', have: [], resend: [], reason: reason.slice(0, MAX_REASON) };
        await relay.publish(peer, [{ name: statusName(tid), data: this.sealStatus(peer, status) }], { durable: false });
        refused += 1;
      }
    }
    return refused;
  }

  /** True while a sender may not yet know a verdict: its offer is still there. */
  get hasUnsettled(): boolean {
    return this.unsettled.size > 0;
  }

  constructor(
    private readonly ctx: TransferReceiverComponents,
    private readonly options: ReceiveOptions,
  ) {
    const out = options.out;
    this.outFor = typeof out === 'string' ? () => out : out;
    this.finished = new FinishedTransfers(ctx.home);
    this.accepts = options.accept ?? PLAIN_SENDS;
  }

  private statePath(peer: PeerId, tid: string): string {
    return incomingStatePath(this.ctx.home, peer, tid);
  }

  /**
   * Closes the partial files this receiver holds open, once it no longer receives (its caller
   * stopped): what was written stays, and is resumed by the next receiver.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const incoming of this.transfers.values()) {
      await incoming.commit?.catch(() => {});
      await incoming.handle?.close().catch(() => {});
      incoming.handle = undefined;
    }
  }

  async handle(peer: PeerId, names: readonly string[], context?: { blocked: boolean }): Promise<boolean> {
    if (this.closed) return false;
    // A blocked peer's offers are left alone: no answer, as if no receiver ran.
    if (context?.blocked) return false;
    if (this.options.from !== undefined && peer !== this.options.from) return false;
    const offers = new Set<string>();
    const chunks = new Map<string, number[]>();
    for (const name of names) {
      const tid = parseOfferName(name);
      if (tid !== undefined) offers.add(tid);
      const chunk = parseChunkName(name);
      if (chunk) {
        const list = chunks.get(chunk.tid) ?? [];
        list.push(chunk.index);
        chunks.set(chunk.tid, list);
      }
    }
    for (const tid of offers) {
      this.missingSince.delete(`${peer}/${tid}`);
      if (await this.answerReplay(peer, tid)) continue;
      const incoming = await this.load(peer, tid);
      if (!incoming) continue;
      if (incoming.state.state === 'complete' || incoming.state.state === 'failed')
        this.unsettled.add(`${peer}/${tid}`);
      if (incoming.state.state === 'receiving' || incoming.state.state === 'paused') {
        try {
          await this.receiveChunks(
            incoming,
            (chunks.get(tid) ?? []).sort((a, b) => a - b),
          );
        } catch (error) {
          // Where the file was to go is a link, or leads out of the output folder: this
          // transfer fails for good, and the sender is told why in one line.
          if (!isDmpError(error, 'TRANSFER_FAILED')) throw error;
          await this.refuse(incoming, error);
        }
      }
      // The sender has not reacted to our status (chunks we have are still there, a resend has
      // not come, or it has not withdrawn a finished transfer): it may have reached it damaged.
      const present = chunks.get(tid) ?? [];
      this.timeReaction(peer, incoming, present);
      const ignored =
        incoming.bad.size > 0 ||
        incoming.state.state === 'complete' ||
        incoming.state.state === 'failed' ||
        present.some((index) => incoming.have.has(index));
      await this.publishStatus(incoming, ignored && incoming.repeat.due);
    }
    await this.collectGarbage(peer, offers);
    return false;
  }

  /** The transfer's state: from memory, from DMP_HOME after a restart, or from a new offer. */
  private async load(peer: PeerId, tid: string): Promise<Incoming | undefined> {
    const key = `${peer}/${tid}`;
    const known = this.transfers.get(key);
    if (known) return known;
    let state = await readJsonFile<IncomingState>(this.statePath(peer, tid));
    // Another receiver's transfer (another process of this peer may be working on it).
    if (state && !this.accepts(peer, state.offer)) return undefined;
    if (!state) {
      const read = await this.ctx.inbound.read(peer, offerName(tid), { maxBytes: MAX_CONTROL_FILE });
      if (!read) return undefined;
      if (this.rejectedOffers.get(key) === read.version) return undefined;
      const declined = this.declined.get(key);
      if (declined?.version === read.version && !this.accepts(peer, declined.offer)) return undefined;
      let offer: Offer | undefined;
      if (declined?.version === read.version) offer = declined.offer;
      else if (!isRefused(read)) {
        const envelope = openEnvelope(this.ctx, peer, offerName(tid), read, { kind: OFFER }).envelope;
        offer = envelope?.body;
        if (envelope && !this.roundTrips.has(peer)) {
          // Until a round trip is seen, the offer's way here says how slow the relay is. Clocks of
          // two machines may disagree: the guess is bounded, and only ever delays a repeat.
          const oneWay = this.ctx.clock.now() - envelope.sentAt;
          if (oneWay > 0) this.roundTrips.set(peer, Math.min(GUESSED_ROUND_TRIP_MAX_MS, 2 * oneWay));
        }
      }
      if (!offer || offer.tid !== tid) {
        // A damaged offer is a sync glitch (the sender publishes it again); an unauthenticated
        // peer is the guard's to report. Either way, ask for the offer again: a status that
        // needs it, for a transfer we do not know yet.
        this.rejectedOffers.set(key, read.version);
        const status: Status = { tid, state: 'receiving', have: [], resend: [], needOffer: true };
        await this.ctx.relay.publish(peer, [{ name: statusName(tid), data: this.sealStatus(peer, status) }], {
          durable: false,
        });
        return undefined;
      }
      this.rejectedOffers.delete(key);
      if (!this.accepts(peer, offer)) {
        // Not ours: no status, no partial. Whether it becomes ours (a get whose answer comes
        // later) is asked again on the next pass.
        this.declined.set(key, { version: read.version, offer });
        return undefined;
      }
      this.declined.delete(key);
      const parts = safeRelativePath(offer.name);
      const out = this.outFor(peer);
      const target = resolveInside(out, parts);
      state = {
        tid,
        peer,
        offer,
        out,
        parts,
        partial: join(dirname(target), `.${basename(target)}.${tid}.dftp-part`),
        have: [],
        state: 'receiving',
        startedAt: this.ctx.clock.now(),
      };
      await writeJsonFile(this.statePath(peer, tid), state);
    }
    const incoming: Incoming = {
      state,
      plan: planChunks(state.offer.size, state.offer.blockSize),
      have: fromRanges(state.have),
      written: fromRanges(state.have),
      bad: new Map(),
      hash: undefined,
      hashedIndex: 0,
      repeat: this.repeatSchedule(peer),
      uncommitted: [],
    };
    this.transfers.set(key, incoming);
    if (state.state === 'receiving' || state.state === 'paused') {
      // The crypto worker boots while the partial file is made.
      this.ctx.sealer.warm?.();
      this.options.onEvent?.({
        event: 'offer',
        peer,
        file: state.parts.join('/'),
        tid,
        total: state.offer.size,
        resumed: incoming.have.size > 0,
        // Where a resumed transfer starts: said at once ("resuming at 40%"), not at the next chunk.
        ...(incoming.have.size > 0 ? { bytes: bytesHeld(incoming) } : {}),
      });
    }
    return incoming;
  }

  private async receiveChunks(incoming: Incoming, present: number[]): Promise<void> {
    const { state, plan } = incoming;
    if (incoming.failure !== undefined) {
      const failure = incoming.failure;
      incoming.failure = undefined;
      throw failure;
    }
    const wanted = present.filter((index) => !incoming.written.has(index) && index < plan.count);
    if (wanted.length === 0) {
      // Everything was written by an earlier run that stopped before the end: finish now.
      if (incoming.commit === undefined && incoming.have.size === plan.count && state.sha256 !== undefined) {
        const handle = await this.partialHandle(incoming);
        if (!handle && state.state === 'paused') return;
        if (handle) await this.extendHash(incoming, handle);
        await this.finish(incoming);
      }
      return;
    }
    if (!(await this.hasRoom(incoming))) return;
    const handle = await this.partialHandle(incoming);
    if (!handle) return;
    const added: number[] = [];
    let addedBytes = 0;
    // Up to READ_AHEAD chunks are read and decrypted (in the crypto worker) while the main
    // thread writes and hashes the one before.
    const reads = new Map<number, Promise<Buffer | undefined>>();
    const startRead = (position: number) => {
      const index = wanted[position];
      if (index !== undefined) reads.set(position, this.readChunk(incoming, index));
    };
    for (let position = 0; position < READ_AHEAD; position += 1) startRead(position);
    try {
      for (const [position, index] of wanted.entries()) {
        const data = await reads.get(position);
        reads.delete(position);
        startRead(position + READ_AHEAD);
        if (!data) continue;
        try {
          await handle.write(data, 0, data.length, chunkRange(plan, index).offset);
        } catch (error) {
          if (errnoCode(error) === 'ENOSPC') {
            await this.pause(incoming, 'disk full: free some space, the transfer will continue');
            break;
          }
          throw localWriteError(error, state.partial);
        }
        added.push(index);
        addedBytes += data.length;
        incoming.written.add(index);
        // In-order data is hashed now; chunks that came early are read back in extendHash.
        if (index === incoming.hashedIndex && incoming.hash !== undefined) {
          incoming.hash.update(data);
          incoming.hashedIndex += 1;
        }
        this.recycle(data);
        // Never at the last chunk of the pass: a commit that completes the file must follow
        // extendHash below, and one that leaves a wanted chunk of this pass unwritten cannot.
        if (addedBytes >= COMMIT_BYTES && incoming.commit === undefined && position < wanted.length - 1) {
          incoming.uncommitted.push(...added.splice(0));
          addedBytes = 0;
          this.scheduleCommit(incoming, handle);
        }
      }
      await this.extendHash(incoming, handle);
    } finally {
      // Reads left over after an early stop settle quietly; their chunks are read again later.
      for (const pending of reads.values()) pending.catch(() => {});
    }
    incoming.uncommitted.push(...added);
    this.scheduleCommit(incoming, handle);
  }

  /**
   * The fsync, record and status of written chunks run behind the next passes, one commit at a
   * time; chunks written while one runs wait for it and then go together in the next. (One
   * commit per pass queued an fsync of the partial and one of the state file per pass: on a
   * local relay, 36 commits for 64 chunks, ~1 s of commits behind the data.)
   */
  private scheduleCommit(incoming: Incoming, handle: FileHandle): void {
    if (incoming.commit !== undefined || incoming.uncommitted.length === 0) return;
    const commit = this.commit(incoming, handle, incoming.uncommitted.splice(0));
    incoming.commit = commit;
    commit.then(
      () => {
        incoming.commit = undefined;
        this.scheduleCommit(incoming, handle);
      },
      (error: unknown) => {
        incoming.commit = undefined;
        incoming.failure = error;
      },
    );
  }

  /** The partial file, opened once per transfer; undefined when it vanished (start over). */
  private async partialHandle(incoming: Incoming): Promise<FileHandle | undefined> {
    if (incoming.handle) return incoming.handle;
    const { state } = incoming;
    try {
      state.partial = join(await outputFolder(state.out, state.parts.slice(0, -1)), basename(state.partial));
      // A resumed partial keeps what a previous run wrote; a fresh one is created, never reused.
      incoming.handle = await openPartial(state.partial, incoming.have.size > 0, this.partialShown(state));
    } catch (error) {
      if (isDmpError(error)) throw error;
      const refused = WRITE_REFUSED[errnoCode(error) ?? ''];
      if (refused) {
        // The output folder stopped taking files (its mode, a read-only mount): the sender is
        // told why with the status and waits; the transfer goes on once it can write again.
        await this.pause(incoming, `cannot write into ${state.out}: ${refused}; the transfer continues once it can`);
        return undefined;
      }
      if (errnoCode(error) === 'ENOENT' && incoming.have.size > 0) {
        // The partial vanished (deleted by hand): start this file over.
        this.ctx.logger.log('warn', 'partial-missing', { peer: state.peer, file: state.partial });
        incoming.have.clear();
        incoming.written.clear();
        state.have = [];
        incoming.hashedIndex = 0;
        incoming.hash = undefined;
        return undefined;
      }
      throw localWriteError(error, state.partial);
    }
    // A fresh hash can only start at the first chunk; after a restart extendHash re-reads the prefix.
    if (incoming.have.size === 0) {
      incoming.hash = createHash('sha256');
      incoming.hashedIndex = 0;
    }
    return incoming.handle;
  }

  /** Makes a pass's chunks durable, records them, acknowledges them, and finishes when whole. */
  private async commit(incoming: Incoming, handle: FileHandle, added: number[]): Promise<void> {
    const { state, plan } = incoming;
    await handle.sync();
    if (state.state === 'paused') state.state = 'receiving';
    state.have = toRanges([...incoming.have, ...added]);
    await writeJsonFile(this.statePath(state.peer, state.tid), state);
    // Only now may a status list them: a status published while the state file was being
    // written (each pass publishes one) let the sender delete chunks that a kill -9 at that
    // moment took out of the record, and the transfer waited for them for ever.
    for (const index of added) incoming.have.add(index);
    const bytes = bytesHeld(incoming);
    this.options.onEvent?.({
      event: 'progress',
      peer: state.peer,
      file: state.parts.join('/'),
      tid: state.tid,
      bytes,
      total: state.offer.size,
    });
    if (incoming.have.size === plan.count && state.sha256 !== undefined) await this.finish(incoming);
    else await this.publishStatus(incoming);
    incoming.awaiting ??= { at: this.ctx.clock.now(), chunks: added };
  }

  /**
   * Times the sender's reaction to the first status that acknowledged chunks still in the
   * relay: they are gone now. Through a sync engine that takes seconds, so do not publish a
   * status again sooner.
   */
  private timeReaction(peer: PeerId, incoming: Incoming, present: readonly number[]): void {
    const awaiting = incoming.awaiting;
    if (!awaiting) return;
    const listed = new Set(present);
    if (awaiting.chunks.some((index) => listed.has(index))) return;
    const ms = this.ctx.clock.now() - awaiting.at;
    incoming.awaiting = undefined;
    incoming.repeat.roundTrip(ms);
    this.roundTrips.set(peer, ms);
  }

  /** A repeat schedule for a status to `peer`, knowing how long it took to react last time. */
  private repeatSchedule(peer: PeerId): RepeatSchedule {
    const repeat = new RepeatSchedule(this.ctx.clock);
    const known = this.roundTrips.get(peer);
    if (known !== undefined) repeat.roundTrip(known);
    return repeat;
  }

  /** Reads, authenticates and checks one chunk; undefined when it is gone or bad. */
  private async readChunk(incoming: Incoming, index: number): Promise<Buffer | undefined> {
    const { state, plan } = incoming;
    const name = chunkName(state.tid, index);
    // A chunk is one block and its framing: anything larger is refused unread (a sparse file of
    // gigabytes named like a chunk costs a stat), and asked for again.
    const buffer = this.buffers.pop();
    const read = await this.ctx.inbound.read(state.peer, name, {
      buffer,
      maxBytes: tokenLength(plan.blockSize + CHUNK_OVERHEAD),
    });
    if (!read || isRefused(read)) {
      if (buffer) this.buffers.push(buffer);
      if (read) incoming.bad.set(index, read.version);
      return undefined;
    }
    if (incoming.bad.get(index) === read.version) {
      this.recycle(read.data);
      return undefined;
    }
    try {
      // Opened in place (in the crypto worker): the plaintext is a view of the buffer read into.
      const { header, data } = decodeChunkPlaintext(await this.ctx.sealer.openChunk(state.peer, read.data));
      checkChunk(header, { from: state.peer, to: this.ctx.self, tid: state.tid, index, plan });
      this.ctx.guard.authenticated(state.peer, name);
      if (header.sha256 !== undefined) state.sha256 = header.sha256;
      incoming.bad.delete(index);
      return data;
    } catch (error) {
      if (!isDmpError(error, 'AUTH') && !isDmpError(error, 'PROTOCOL')) throw error;
      incoming.bad.set(index, read.version);
      rejected(this.ctx, state.peer, name, read.version, error);
      return undefined;
    }
  }

  /** Keeps a chunk buffer for the next read (a few at most: memory stays flat). */
  recycle(view: Buffer): void {
    if (view.buffer.byteLength > 64 * 1024 && this.buffers.length < READ_AHEAD + 1) {
      this.buffers.push(Buffer.from(view.buffer, 0, view.buffer.byteLength));
    }
  }

  private async extendHash(incoming: Incoming, handle: FileHandle): Promise<void> {
    incoming.hash ??= createHash('sha256');
    let buffer: Buffer | undefined;
    while (incoming.hashedIndex < incoming.plan.count && incoming.written.has(incoming.hashedIndex)) {
      buffer ??= Buffer.allocUnsafe(Math.min(incoming.plan.blockSize, 16 * 1024 * 1024));
      const { offset, length } = chunkRange(incoming.plan, incoming.hashedIndex);
      for (let done = 0; done < length; ) {
        const want = Math.min(buffer.length, length - done);
        const { bytesRead } = await handle.read(buffer, 0, want, offset + done);
        if (bytesRead === 0) throw new DmpError('IO', `partial file ${incoming.state.partial} is shorter than written`);
        incoming.hash.update(buffer.subarray(0, bytesRead));
        done += bytesRead;
      }
      incoming.hashedIndex += 1;
    }
  }

  /** Checks free space before writing; pauses (and says why) when the disk cannot take the rest. */
  private async hasRoom(incoming: Incoming): Promise<boolean> {
    let missing = incoming.state.offer.size;
    for (const index of incoming.written) missing -= chunkRange(incoming.plan, index).length;
    if (missing <= 0) return true;
    let free: number;
    const folder = await outputFolder(incoming.state.out, incoming.state.parts.slice(0, -1));
    try {
      const info = await statfs(folder);
      free = info.bavail * info.bsize;
    } catch {
      return true;
    }
    if (free >= missing) return true;
    await this.pause(incoming, `not enough space in ${incoming.state.out}: ${missing} bytes needed, ${free} free`);
    return false;
  }

  private async pause(incoming: Incoming, reason: string): Promise<void> {
    const { state } = incoming;
    if (state.state === 'paused' && state.reason === reason) return;
    state.state = 'paused';
    state.reason = reason;
    this.options.onEvent?.({ event: 'waiting', peer: state.peer, file: state.parts.join('/'), tid: state.tid, reason });
  }

  /**
   * Verifies the whole file and moves it into place, or deletes it on a mismatch. Publishes the
   * verdict before telling the caller, so a caller that stops at 'done' leaves the sender told.
   */
  private async finish(incoming: Incoming): Promise<void> {
    const event = await this.verifyAndPlace(incoming);
    this.unsettled.add(`${incoming.state.peer}/${incoming.state.tid}`);
    await this.publishStatus(incoming);
    this.options.onEvent?.(event);
  }

  private async verifyAndPlace(incoming: Incoming): Promise<TransferEvent> {
    const { state } = incoming;
    const file = state.parts.join('/');
    const digest = incoming.hashedIndex === incoming.plan.count ? incoming.hash?.digest('hex') : undefined;
    if (digest === state.sha256 && digest !== undefined) await this.restoreTime(incoming);
    await incoming.handle?.close();
    incoming.handle = undefined;
    if (digest === undefined || digest !== state.sha256) {
      await this.removePartial(state);
      state.state = 'failed';
      state.reason = `checksum mismatch (expected ${state.sha256}, got ${digest}); the partial file was deleted`;
      await writeJsonFile(this.statePath(state.peer, state.tid), state);
      return { event: 'failed', peer: state.peer, file, tid: state.tid, reason: state.reason };
    }
    // The folders on the way are checked again: one may have become a link meanwhile.
    const folder = await outputFolder(state.out, state.parts.slice(0, -1));
    const target = join(folder, state.parts.at(-1) ?? basename(state.partial));
    state.path = await placeFile(state.partial, target, this.options.overwrite ?? false, state.parts.join('/'));
    await syncDirectory(dirname(state.path));
    state.state = 'complete';
    delete state.reason;
    await writeJsonFile(this.statePath(state.peer, state.tid), state);
    return {
      event: 'done',
      peer: state.peer,
      file,
      tid: state.tid,
      path: state.path,
      bytes: state.offer.size,
      sha256: digest,
    };
  }

  /**
   * Gives the verified partial the sender's modification time, through its open handle (a path
   * could have been swapped for a link meanwhile). Only a sane time is set: a state kept from
   * before offers were checked may hold 1e300, which utimes refuses (EINVAL). A time that
   * cannot be set is not a reason to fail a verified file: it keeps the time it has.
   */
  private async restoreTime(incoming: Incoming): Promise<void> {
    const { state } = incoming;
    const mtimeMs = state.offer.mtimeMs;
    const handle = incoming.handle;
    if (!handle || !(Number.isFinite(mtimeMs) && mtimeMs >= 0 && mtimeMs <= MAX_MTIME_MS)) {
      this.ctx.logger.log('warn', 'mtime-not-restored', { peer: state.peer, file: state.parts.join('/') });
      return;
    }
    try {
      // Seconds as a number keep the sub-millisecond part that a Date would drop.
      await handle.utimes(this.ctx.clock.now() / 1000, mtimeMs / 1000);
    } catch (error) {
      this.ctx.logger.log('warn', 'mtime-not-restored', {
        peer: state.peer,
        file: state.parts.join('/'),
        error: errnoCode(error) ?? String(error),
      });
    }
  }

  private async publishStatus(incoming: Incoming, force = false): Promise<void> {
    const { state } = incoming;
    const status: Status = {
      tid: state.tid,
      state: state.state,
      have: toRanges(incoming.have),
      resend: [...incoming.bad.keys()],
      ...(state.reason ? { reason: state.reason } : {}),
      ...(state.state === 'complete' && state.sha256 ? { sha256: state.sha256 } : {}),
    };
    const summary = JSON.stringify([status, [...incoming.bad.values()]]);
    if (summary === incoming.lastStatus && !force) return;
    const data = this.sealStatus(state.peer, status);
    // Not fsynced: a status is derived from the state file and is published again after a crash.
    await this.ctx.relay.publish(state.peer, [{ name: statusName(state.tid), data }], { durable: false });
    incoming.repeat.published(summary !== incoming.lastStatus);
    incoming.lastStatus = summary;
  }

  /**
   * When the sender withdrew an offer (done, or cancelled), drop our status file, and drop the
   * partial of a transfer that never completed. An offer is withdrawn when it is still missing
   * WITHDRAWN_AFTER_MS after a look first found it missing: it may only be being replaced.
   */
  private async collectGarbage(peer: PeerId, offers: Set<string>): Promise<void> {
    for (const key of this.declined.keys()) {
      if (key.startsWith(`${peer}/`) && !offers.has(key.slice(peer.length + 1))) this.declined.delete(key);
    }
    const ours = await this.ctx.relay.list(this.ctx.self, peer);
    const missing = new Set<string>();
    for (const name of ours) {
      const tid = parseStatusName(name);
      if (tid !== undefined && !offers.has(tid)) missing.add(tid);
    }
    // A transfer of ours whose offer is gone is over even when another receiver of this peer
    // (each takes its own offers, all share the status files) already removed its status.
    for (const incoming of this.transfers.values()) {
      if (incoming.state.peer === peer && !offers.has(incoming.state.tid)) missing.add(incoming.state.tid);
    }
    const now = this.ctx.clock.now();
    const stale = [...missing].filter((tid) => {
      const key = `${peer}/${tid}`;
      const since = this.missingSince.get(key);
      if (since === undefined) {
        this.missingSince.set(key, now);
        this.ctx.clock.timeout(WITHDRAWN_AFTER_MS, () => this.ctx.feed.announce({ owner: peer, dir: this.ctx.self }));
      }
      return since !== undefined && now - since >= WITHDRAWN_AFTER_MS;
    });
    for (const tid of stale) {
      const name = statusName(tid);
      const key = `${peer}/${tid}`;
      this.missingSince.delete(key);
      const state = this.transfers.get(key)?.state ?? (await readJsonFile<IncomingState>(this.statePath(peer, tid)));
      const known = this.transfers.get(key);
      // Whoever sees it settles a transfer whose offer is gone; only its owner tells its caller.
      const ours = known !== undefined || (state !== undefined && this.accepts(peer, state.offer));
      await known?.handle?.close().catch(() => {});
      this.replays.delete(key);
      if (state && (state.state === 'complete' || state.state === 'failed')) {
        // Remembered before the state goes: its offer coming back is then a replay.
        await this.finished.add(peer, {
          tid,
          state: state.state,
          file: state.parts.join('/'),
          count: state.offer.count,
          ...(state.sha256 === undefined ? {} : { sha256: state.sha256 }),
          ...(state.reason === undefined ? {} : { reason: state.reason }),
          at: this.ctx.clock.now(),
        });
      } else if (state) {
        await this.removePartial(state);
        if (ours)
          this.options.onEvent?.({
            event: 'failed',
            peer,
            file: state.parts.join('/'),
            tid,
            reason: `${peer} withdrew the transfer`,
          });
      }
      this.transfers.delete(key);
      this.unsettled.delete(key);
      await unlink(this.statePath(peer, tid)).catch(() => {});
      await this.ctx.relay.remove(peer, [name]);
    }
  }

  /**
   * An offer of a transfer that finished and was withdrawn before, come back (a replay, an old
   * copy of the relay restored, a sender restored from a backup): it is never received again.
   * It is answered with the verdict it had, so a sender that is really there withdraws it as it
   * did the first time, and told once as `skipped`. Returns false for any other offer.
   */
  private async answerReplay(peer: PeerId, tid: string): Promise<boolean> {
    const key = `${peer}/${tid}`;
    if (this.transfers.has(key)) return false;
    let replay = this.replays.get(key);
    if (!replay) {
      const finished = await this.finished.get(peer, tid);
      if (!finished) return false;
      const status: Status = {
        tid,
        state: finished.state,
        have: finished.state === 'complete' ? [[0, finished.count]] : [],
        resend: [],
        ...(finished.reason === undefined ? {} : { reason: finished.reason }),
        ...(finished.sha256 === undefined || finished.state !== 'complete' ? {} : { sha256: finished.sha256 }),
      };
      replay = { status, repeat: this.repeatSchedule(peer), published: false };
      this.replays.set(key, replay);
      const reason =
        finished.state === 'complete'
          ? `already received (transfer ${tid}): not received again`
          : `already failed (transfer ${tid}): not received again`;
      this.ctx.logger.log('info', 'transfer-replayed', { peer, tid, file: finished.file });
      this.options.onEvent?.({ event: 'skipped', peer, file: finished.file, reason });
    }
    // Its offer is still there, so the sender (if any) has not seen the verdict: say it again,
    // ever less often.
    if (!replay.published || replay.repeat.due) {
      const data = this.sealStatus(peer, replay.status);
      await this.ctx.relay.publish(peer, [{ name: statusName(tid), data }], { durable: false });
      replay.repeat.published(!replay.published);
      replay.published = true;
    }
    return true;
  }

  /**
   * Fails a transfer for good with `error`'s one-line reason: the state records it, the sender
   * gets a `failed` status saying it, the caller a `failed` event. Nothing is written or
   * deleted where the file was to go: that place is not ours to touch.
   */
  private async refuse(incoming: Incoming, error: DmpError): Promise<void> {
    const { state } = incoming;
    // The fsync of an earlier pass may still run on the handle: let it end first, and start no other.
    incoming.uncommitted = [];
    await incoming.commit?.catch(() => {});
    await incoming.handle?.close().catch(() => {});
    incoming.handle = undefined;
    state.state = 'failed';
    state.reason = error.message.slice(0, MAX_REASON);
    await writeJsonFile(this.statePath(state.peer, state.tid), state);
    this.ctx.logger.log('warn', 'transfer-refused', {
      peer: state.peer,
      file: state.parts.join('/'),
      reason: state.reason,
    });
    this.unsettled.add(`${state.peer}/${state.tid}`);
    await this.publishStatus(incoming);
    this.options.onEvent?.({
      event: 'failed',
      peer: state.peer,
      file: state.parts.join('/'),
      tid: state.tid,
      reason: state.reason,
    });
  }

  /** Deletes a transfer's partial file, only when every folder on its way is still a real one. */
  private async removePartial(state: IncomingState): Promise<void> {
    try {
      const folder = await outputFolder(state.out, state.parts.slice(0, -1), { create: false });
      if (folder !== undefined) await unlink(join(folder, basename(state.partial)));
    } catch {
      // Gone already, or behind a link now: leave it.
    }
  }

  /** The partial's name relative to the output folder, for messages that reach the sender. */
  private partialShown(state: IncomingState): string {
    return [...state.parts.slice(0, -1), basename(state.partial)].join('/');
  }

  private sealStatus(peer: PeerId, status: Status): string {
    return sealEnvelope(this.ctx, {
      v: PROTOCOL_VERSION,
      type: STATUS.type,
      from: this.ctx.self,
      to: peer,
      seq: 0,
      sentAt: this.ctx.clock.now(),
      body: status,
    });
  }
}
