/**
 * A served folder: the server side of `dftp serve` (docs/PROTOCOL.md, "Serving a folder").
 * Requests come as `serve-req` files in each client's folder for us; every one is read within
 * bounds, checked, answered once with a `serve-res` (one line when refused) and never acted on
 * twice. Files go out as ordinary DFTP transfers whose offers answer the request (`get`) and
 * come in the same way (`put`), taken only when they match a put this server accepted.
 *
 * MUST rules enforced here:
 * - Nothing but visible regular files and folders reached through real folders is listed or
 *   served; a path that is a link (wherever it leads), a FIFO, a device or hidden is refused.
 * - A request is answered from what was remembered when it comes again (same id): a sync tool
 *   delivering it twice never makes the server act twice.
 * - A protected file is read, replaced or deleted only with its passcode; three wrong ones lock
 *   that peer out of that file for a while, counted per request id.
 * - A blocked peer gets nothing: its requests are never answered, its transfers stop.
 * - Trouble with one request is that request's answer; the server goes on serving everyone.
 */
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, realpath, unlink } from 'node:fs/promises';
import { basename, relative, sep } from 'node:path';
import { DmpError, isDmpError } from '../errors.js';
import { MAX_CONTROL_FILE, PROTOCOL_VERSION } from '../node/envelope.js';
import { isRefused } from '../node/inbound.js';
import type { IncomingHandler, NodeComponents } from '../node/node.js';
import { openEnvelope, sealEnvelope } from '../node/open.js';
import { publishWithinQuota } from '../node/quota.js';
import { checkQuotaHoldsBlock, defaultBlockSize } from '../transfer/block-size.js';
import type { TransferEvent } from '../transfer/events.js';
import { parseChunkName } from '../transfer/names.js';
import { TransferReceiver } from '../transfer/receiver.js';
import { safeRelativePath } from '../transfer/safe-path.js';
import { sendFile } from '../transfer/sender.js';
import { type PeerId, parsePeerId } from '../util/peer-id.js';
import { ChecksumIndex } from './checksum-index.js';
import {
  type AnswerCode,
  type ListEntry,
  MAX_ENTRIES,
  MAX_REQUEST_FILE,
  parseRequestName,
  parseResponseName,
  type ResponsePart,
  responseName,
  SERVE_REQUEST,
  SERVE_RESPONSE,
  type ServeOp,
  type ServeRequest,
  type ServeResponse,
  splitResponse,
} from './control.js';
import { Limiter } from './limiter.js';
import { Lockout, type LockoutInit } from './lockout.js';
import { type PasscodeHasher, PasscodeStore, scryptPasscodes } from './passcodes.js';
import { PendingPuts } from './pending-puts.js';
import { listServedFolder, lookInto, parseServedPath, type Resolved, resolveServed } from './served-path.js';

export type ServerComponents = Pick<
  NodeComponents,
  'self' | 'relay' | 'inbound' | 'sealer' | 'guard' | 'home' | 'clock' | 'logger' | 'feed' | 'quota'
>;

export interface ServeOptions {
  /** Only these peers may use the folder. @default every peer whose identity is accepted */
  allow?: readonly string[];
  /** Peers may put files into the folder. @default false */
  allowPut?: boolean;
  /** Peers may delete files from the folder. @default false */
  allowDelete?: boolean;
  /** A put may replace an existing file (a protected one only with its passcode). @default false */
  allowOverwrite?: boolean;
  /** Bytes per chunk of the files sent. @default 4 MiB, less for a small quota */
  blockSize?: number;
  /** How passcodes are hashed and checked. @default scryptPasscodes() (OWASP's scrypt parameters) */
  passcodes?: PasscodeHasher;
  /** Wrong passcodes and locks. @default 3 attempts, 1 minute doubling to a day */
  lockout?: LockoutInit;
  /** A get nobody makes progress on for this long is parked: its chunks leave the relay. @default 10 min */
  parkAfterMs?: number;
  /** What the server did, for a log. */
  onEvent?: (event: ServeEvent) => void;
}

export type ServeEvent =
  | { event: 'answered'; peer: PeerId; op: ServeOp | 'bad'; path: string; ok: boolean; code?: AnswerCode }
  | { event: 'transfer'; side: 'send' | 'receive'; transfer: TransferEvent };

/** A request nobody waits for any more is not answered (by the server's clock). */
export const REQUEST_MAX_AGE_MS = 60 * 60 * 1000;
/** Requests of one peer waiting their turn; more stay in the relay until there is room. */
const MAX_QUEUED = 32;
/** Gets in flight per peer, and in all; beyond them a get is answered `busy`. */
const SENDS_PER_PEER = 4;
const SENDS_IN_ALL = 16;
const BUSY_RETRY_MS = 5000;
/** Answers remembered (for requests that come again), in bytes of JSON at most. */
const MAX_REMEMBERED_BYTES = 16 * 1024 * 1024;
/** What one remembered answer counts at least. */
const ANSWER_ENTRY_BYTES = 256;
/** The part of the quota kept for answers: gets fill the rest. */
const ANSWER_RESERVE_MAX = 16 * 1024 * 1024;
/** How long a listing may spend hashing files new to the index before it answers, ms. */
const HASH_BUDGET_MS = 10_000;
/** A listing's entries are cut so that its answer fits in this share of the quota. */
const ENTRY_BYTES_ESTIMATE = 300;

/** A refusal: the request's one-line answer. */
class Refusal extends Error {
  constructor(
    readonly code: AnswerCode,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

interface Queued {
  id: string;
  version: string;
  request?: ServeRequest;
  bad?: string;
}

interface Answered {
  version: string;
  parts: ResponsePart[];
  bytes: number;
  at: number;
}

interface Send {
  peer: PeerId;
  tid: Promise<string>;
  controller: AbortController;
  lastActivity: number;
  settled: Promise<void>;
}

/** "1 min", "2 h 5 min": how long a lock lasts, for the one line a client sees. */
function duration(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 120) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export class FolderServer implements IncomingHandler {
  readonly kinds = [SERVE_REQUEST];
  /** Takes the puts this server accepted; the Peer adds it to its receivers. */
  readonly puts: TransferReceiver;
  private readonly queues = new Map<PeerId, Queued[]>();
  private readonly working = new Map<PeerId, Promise<void>>();
  /** Requests queued or being answered, by peer/id. */
  private readonly inFlight = new Set<string>();
  private readonly answered = new Map<string, Answered>();
  private rememberedBytes = 0;
  /** Requests that failed to open, by peer/id, with the version that failed. */
  private readonly unopened = new Map<string, string>();
  private readonly sends = new Map<string, Send>();
  private readonly hashing = new Limiter(1);
  private readonly closer = new AbortController();
  private readonly allow: ReadonlySet<string> | undefined;
  private readonly hasher: PasscodeHasher;
  private readonly sendCtx: ServerComponents;
  private readonly blockSize: number;

  private constructor(
    private readonly ctx: ServerComponents,
    /** The served folder's real path. */
    readonly root: string,
    private readonly options: ServeOptions,
    private readonly index: ChecksumIndex,
    private readonly passcodes: PasscodeStore,
    private readonly lockout: Lockout,
    private readonly pendingPuts: PendingPuts,
  ) {
    this.allow = options.allow === undefined ? undefined : new Set(options.allow);
    this.hasher = options.passcodes ?? scryptPasscodes();
    // Gets leave room in the quota for answers, so a client that stopped reading never
    // silences the server for everyone else.
    const reserve = Math.min(Math.floor(ctx.quota / 4), ANSWER_RESERVE_MAX);
    this.sendCtx = { ...ctx, quota: ctx.quota - reserve };
    this.blockSize = options.blockSize ?? defaultBlockSize(this.sendCtx.quota);
    checkQuotaHoldsBlock(this.sendCtx.quota, this.blockSize);
    this.puts = new TransferReceiver(ctx, {
      out: root,
      overwrite: options.allowOverwrite ?? false,
      accept: (peer, offer) =>
        offer.request !== undefined &&
        this.permitted(peer, 'put') &&
        this.pendingPuts.accepts(peer, offer.request, safeRelativePath(offer.name).join('/'), offer.size),
      onEvent: (event) => void this.onPutEvent(event),
    });
  }

  /** A server for `dir`, with what it kept of that folder in DMP_HOME. */
  static async open(ctx: ServerComponents, dir: string, options: ServeOptions = {}): Promise<FolderServer> {
    let root: string;
    try {
      root = await realpath(dir);
      if (!(await lstat(root)).isDirectory()) throw new Error('not a folder');
    } catch {
      throw new DmpError('USAGE', `cannot serve ${dir}: not a folder`);
    }
    for (const peer of options.allow ?? []) parsePeerId(peer, 'peer');
    const folder = createHash('sha256').update(root).digest('hex').slice(0, 16);
    const file = (name: string) => ctx.home.serve(folder, name);
    return new FolderServer(
      ctx,
      root,
      options,
      await ChecksumIndex.load(file('index.json')),
      await PasscodeStore.load(file('passcodes.json')),
      await Lockout.load(ctx.clock, file('lockout.json'), options.lockout),
      await PendingPuts.load(ctx.clock, file('puts.json')),
    );
  }

  /** Stops answering and sending; what was sent so far resumes when asked again. */
  async close(): Promise<void> {
    this.closer.abort();
    for (const send of this.sends.values()) send.controller.abort();
    await Promise.allSettled([...this.working.values(), ...[...this.sends.values()].map((send) => send.settled)]);
    await this.puts.close();
    await this.index.save().catch(() => {});
  }

  async handle(peer: PeerId, names: readonly string[], context?: { blocked: boolean }): Promise<void> {
    // A blocked peer gets nothing, and no answer that says so: as if nobody served.
    if (context?.blocked) {
      for (const send of this.sends.values()) if (send.peer === peer) this.park(send);
      return;
    }
    this.parkIdle();
    const requests = new Map<string, string>();
    for (const name of names) {
      const id = parseRequestName(name);
      if (id !== undefined) requests.set(id, name);
    }
    const ours = await this.ctx.relay.list(this.ctx.self, peer);
    const published = new Map<string, Set<number>>();
    const stale: string[] = [];
    for (const name of ours) {
      const response = parseResponseName(name);
      if (!response) continue;
      // An answer whose request is gone was read: it goes too.
      if (!requests.has(response.id)) stale.push(name);
      else published.set(response.id, (published.get(response.id) ?? new Set()).add(response.part));
    }
    if (stale.length > 0) await this.ctx.relay.remove(peer, stale);
    const queue = this.queues.get(peer) ?? [];
    this.queues.set(peer, queue);
    for (const [id, name] of requests) {
      const key = `${peer}/${id}`;
      if (this.inFlight.has(key)) continue;
      const answered = this.answered.get(key);
      if (answered) {
        // Off the loop: publishing may wait for room in the quota.
        this.answerAgain(peer, id, name, answered, published.get(id));
        continue;
      }
      if (queue.length >= MAX_QUEUED) break;
      const item = await this.take(peer, id, name);
      if (!item) continue;
      this.inFlight.add(key);
      queue.push(item);
    }
    if (queue.length > 0 && !this.working.has(peer)) {
      const work = this.work(peer).finally(() => this.working.delete(peer));
      this.working.set(peer, work);
    }
    this.forgetOld();
  }

  /** Reads and opens a request; undefined when there is nothing to answer (now). */
  private async take(peer: PeerId, id: string, name: string): Promise<Queued | undefined> {
    const key = `${peer}/${id}`;
    const read = await this.ctx.inbound.read(peer, name, { maxBytes: MAX_REQUEST_FILE });
    if (read === undefined || this.unopened.get(key) === read.version) return undefined;
    if (isRefused(read)) {
      const reason =
        read.refused.data.reason === 'too-large' ? 'the request is too large' : 'the request is not a file';
      return { id, version: read.version, bad: reason };
    }
    const opened = openEnvelope(this.ctx, peer, name, read, { kind: SERVE_REQUEST });
    if (opened.error) {
      // A token that does not open may be damage in transit: the client publishes it again.
      if (!isDmpError(opened.error, 'PROTOCOL')) {
        this.unopened.set(key, read.version);
        return undefined;
      }
      return { id, version: read.version, bad: `malformed request: ${opened.error.message}` };
    }
    const { envelope } = opened;
    if (this.ctx.clock.now() - envelope.sentAt > REQUEST_MAX_AGE_MS) {
      // Nobody waits for it any more: remembered as answered with nothing.
      this.remember(peer, id, { version: read.version, parts: [], bytes: 0, at: this.ctx.clock.now() });
      return undefined;
    }
    const body = envelope.body;
    if ('bad' in body) return { id, version: read.version, bad: body.bad };
    if (body.id !== id) return { id, version: read.version, bad: 'the request id does not match its file name' };
    return { id, version: read.version, request: body.request };
  }

  /** Answers the queued requests of one peer, one at a time, in order. */
  private async work(peer: PeerId): Promise<void> {
    const queue = this.queues.get(peer) ?? [];
    while (queue.length > 0 && !this.closer.signal.aborted) {
      const item = queue.shift() as Queued;
      const key = `${peer}/${item.id}`;
      try {
        const response = await this.answer(peer, item);
        const parts = splitResponse(response);
        const bytes = parts.reduce((sum, part) => sum + JSON.stringify(part).length, 0);
        try {
          await this.publish(peer, parts);
          this.remember(peer, item.id, { version: item.version, parts, bytes, at: this.ctx.clock.now() });
        } catch (error) {
          // Closing: the request stays in the relay and is answered by the next server. Anything
          // else: never answered (the client says it got no answer), never acted on again.
          if (!isDmpError(error, 'ABORTED')) {
            this.remember(peer, item.id, { version: item.version, parts: [], bytes: 0, at: this.ctx.clock.now() });
          }
          throw error;
        }
      } catch (error) {
        this.ctx.logger.log('warn', 'serve-answer-failed', {
          peer,
          error: isDmpError(error) ? error.message : String(error),
        });
      } finally {
        this.inFlight.delete(key);
      }
    }
  }

  /** The response to one request: its result, or a refusal in one line. */
  private async answer(peer: PeerId, item: Queued): Promise<ServeResponse> {
    const { id, request } = item;
    const path = request === undefined ? '' : 'path' in request ? request.path : request.name;
    const op = request?.op ?? 'bad';
    let response: ServeResponse;
    try {
      if (request === undefined) throw new Refusal('bad-request', item.bad ?? 'malformed request');
      if (!this.permitted(peer, request.op)) this.refuseNotAllowed(peer, request.op);
      response = { id, ok: true, ...(await this.act(peer, id, request)) };
    } catch (error) {
      const refusal = this.asRefusal(peer, op, error);
      response = {
        id,
        ok: false,
        error: {
          code: refusal.code,
          message: refusal.message,
          ...(refusal.retryAfterMs === undefined ? {} : { retryAfterMs: Math.ceil(refusal.retryAfterMs) }),
        },
      };
    }
    this.options.onEvent?.({
      event: 'answered',
      peer,
      op,
      path,
      ok: response.ok,
      ...(response.error ? { code: response.error.code } : {}),
    });
    return response;
  }

  private async act(peer: PeerId, id: string, request: ServeRequest): Promise<Omit<ServeResponse, 'id' | 'ok'>> {
    switch (request.op) {
      case 'ls':
        return this.list(request.path);
      case 'get': {
        const file = await resolveServed(this.root, parseServedPath(request.name), 'file');
        await this.checkPasscode(peer, id, file.rel, request.passcode);
        const tid = await this.startSend(peer, id, file);
        return { file: { name: file.rel, tid, size: file.info.size, mtimeMs: file.info.mtimeMs } };
      }
      case 'put':
        return this.acceptPut(peer, id, request);
      case 'rm': {
        const file = await resolveServed(this.root, parseServedPath(request.name), 'file');
        await this.checkPasscode(peer, id, file.rel, request.passcode);
        // unlink removes the name, never what a link would point to.
        await unlink(file.path);
        this.index.forget(file.rel);
        await this.index.save();
        await this.passcodes.forget(file.rel);
        await this.lockout.forgetFile(file.rel);
        return { name: file.rel };
      }
    }
  }

  private async list(path: string): Promise<Omit<ServeResponse, 'id' | 'ok'>> {
    const folder = await resolveServed(this.root, parseServedPath(path, { allowRoot: true }), 'folder');
    // The answer must fit in the relay beside the gets in flight.
    const limit = Math.min(MAX_ENTRIES, Math.floor((this.ctx.quota - this.sendCtx.quota) / ENTRY_BYTES_ESTIMATE));
    const { entries, truncated } = await listServedFolder(folder.path, limit);
    const listed: ListEntry[] = [];
    const present = new Set<string>();
    // A listing answers in time: what is not hashed by then is listed without its checksum and
    // hashed afterwards, for the next listing.
    const hashUntil = this.ctx.clock.elapsed() + HASH_BUDGET_MS;
    const unhashed: { rel: string; path: string; info: Stats }[] = [];
    for (const entry of entries) {
      const rel = folder.rel === '' ? entry.name : `${folder.rel}/${entry.name}`;
      if (entry.type === 'folder') {
        listed.push({ name: entry.name, type: 'folder', size: 0, mtimeMs: entry.mtimeMs });
        continue;
      }
      present.add(entry.name);
      let sha256 = this.index.known(rel, entry.info);
      if (sha256 === undefined && this.ctx.clock.elapsed() < hashUntil) {
        sha256 = await this.hashing.run(() => this.index.digest(rel, entry.path, entry.info)).catch(() => undefined);
      } else if (sha256 === undefined) {
        unhashed.push({ rel, path: entry.path, info: entry.info });
      }
      listed.push({
        name: entry.name,
        type: 'file',
        size: entry.size,
        mtimeMs: entry.mtimeMs,
        ...(sha256 === undefined ? {} : { sha256 }),
        ...(this.passcodes.has(rel) ? { protected: true } : {}),
      });
    }
    if (!truncated) this.index.prune(folder.rel, present);
    await this.index.save();
    if (unhashed.length > 0) void this.hashLater(unhashed);
    return { entries: listed, ...(truncated ? { truncated } : {}) };
  }

  /** Hashes files a listing had no time for, one at a time, until the server closes. */
  private async hashLater(files: readonly { rel: string; path: string; info: Stats }[]): Promise<void> {
    for (const file of files) {
      if (this.closer.signal.aborted) break;
      await this.hashing.run(() => this.index.digest(file.rel, file.path, file.info)).catch(() => undefined);
    }
    await this.index.save().catch(() => {});
  }

  private async acceptPut(
    peer: PeerId,
    id: string,
    request: Extract<ServeRequest, { op: 'put' }>,
  ): Promise<Omit<ServeResponse, 'id' | 'ok'>> {
    // The receiver cleans the name of the offer; the put is judged by that same name.
    const parts = parseServedPath(safeRelativePath(request.name).join('/'));
    const rel = parts.join('/');
    const existing = await lookInto(this.root, parts);
    if (existing !== undefined) {
      if (!existing.isFile()) throw new Refusal('not-served', `${rel} exists and is not a file`);
      if (!this.options.allowOverwrite)
        throw new Refusal('exists', `${rel} exists (this server does not replace files)`);
      // Replacing a protected file is deleting it: its passcode is needed.
      await this.checkPasscode(peer, id, rel, request.passcode);
    }
    let protect: Awaited<ReturnType<PasscodeHasher['hash']>> | undefined;
    if (request.protect) {
      const passcode = request.passcode;
      if (passcode === undefined) throw new Refusal('bad-request', 'a protected put needs a passcode');
      protect = await this.hashing.run(() => this.hasher.hash(passcode));
    }
    await this.pendingPuts.add({
      peer,
      id,
      name: rel,
      size: request.size,
      ...(protect ? { protect } : {}),
      at: this.ctx.clock.now(),
    });
    return { name: rel };
  }

  /**
   * A protected file needs its passcode. Locked out: refused before anything is hashed. A wrong
   * passcode is "denied", with nothing that tells it from any other wrong one; once locked, the
   * answer says until when.
   */
  private async checkPasscode(peer: PeerId, id: string, rel: string, passcode: string | undefined): Promise<void> {
    const record = this.passcodes.get(rel);
    if (record === undefined) return;
    const locked = this.lockout.lockedFor(peer, rel);
    if (locked > 0) throw new Refusal('denied', `${rel}: denied, try again after ${duration(locked)}`, locked);
    if (passcode === undefined) throw new Refusal('passcode-needed', `${rel} is protected: a passcode is needed`);
    if (await this.hashing.run(() => this.hasher.verify(passcode, record))) {
      await this.lockout.right(peer, rel);
      return;
    }
    const lockedNow = await this.lockout.wrong(peer, rel, id);
    if (lockedNow > 0) throw new Refusal('denied', `${rel}: denied, try again after ${duration(lockedNow)}`, lockedNow);
    throw new Refusal('denied', `${rel}: denied`);
  }

  /** Starts sending `file` to `peer` (or finds it being sent); resolves to the transfer id. */
  private async startSend(peer: PeerId, id: string, file: Resolved): Promise<string> {
    const key = `${peer}\n${file.rel}`;
    const running = this.sends.get(key);
    if (running) return running.tid;
    const mine = [...this.sends.values()].filter((send) => send.peer === peer).length;
    if (mine >= SENDS_PER_PEER || this.sends.size >= SENDS_IN_ALL) {
      throw new Refusal('busy', 'busy: too many files in flight; asking again shortly', BUSY_RETRY_MS);
    }
    const controller = new AbortController();
    const onClose = () => controller.abort();
    this.closer.signal.addEventListener('abort', onClose, { once: true });
    let tidOf: (tid: string) => void = () => {};
    let failed: (error: unknown) => void = () => {};
    const tid = new Promise<string>((resolve, reject) => {
      tidOf = resolve;
      failed = reject;
    });
    tid.catch(() => {});
    const send: Send = { peer, tid, controller, lastActivity: this.ctx.clock.now(), settled: Promise.resolve() };
    this.sends.set(key, send);
    const sending = sendFile(
      this.sendCtx,
      peer,
      { path: file.path, name: basename(file.path) },
      {
        blockSize: this.blockSize,
        request: id,
        noFollow: true,
        signal: controller.signal,
        onEvent: (event) => {
          if (event.event === 'offer') tidOf(event.tid);
          if (event.event === 'offer' || event.event === 'progress') send.lastActivity = this.ctx.clock.now();
          this.options.onEvent?.({ event: 'transfer', side: 'send', transfer: event });
        },
      },
    );
    send.settled = sending.then(
      () => {},
      (error: unknown) => {
        failed(error);
        if (!isDmpError(error, 'ABORTED')) {
          this.ctx.logger.log('warn', 'serve-send-failed', {
            peer,
            file: file.rel,
            error: isDmpError(error) ? error.message : String(error),
          });
        }
      },
    );
    void send.settled.finally(() => {
      this.closer.signal.removeEventListener('abort', onClose);
      if (this.sends.get(key) === send) this.sends.delete(key);
    });
    return tid;
  }

  /**
   * Stops a get that nobody reads: its chunks leave the relay (room for others), its offer and
   * state stay, so the same get asked again resumes where the client got to.
   */
  private park(send: Send): void {
    if (send.controller.signal.aborted) return;
    send.controller.abort();
    void (async () => {
      await send.settled;
      const tid = await send.tid.catch(() => undefined);
      if (tid === undefined) return;
      const chunks = (await this.ctx.relay.list(this.ctx.self, send.peer)).filter(
        (name) => parseChunkName(name)?.tid === tid,
      );
      await this.ctx.relay.remove(send.peer, chunks);
    })().catch(() => {});
  }

  private parkIdle(): void {
    const after = this.options.parkAfterMs ?? 10 * 60_000;
    const now = this.ctx.clock.now();
    for (const send of this.sends.values()) if (now - send.lastActivity > after) this.park(send);
  }

  /** A put's transfer ended: the file is in place (with its passcode, its checksum) or failed. */
  private async onPutEvent(event: TransferEvent): Promise<void> {
    this.options.onEvent?.({ event: 'transfer', side: 'receive', transfer: event });
    try {
      if (event.event === 'done' && event.path !== undefined) {
        const rel = relative(this.root, event.path).split(sep).join('/');
        const put = this.pendingPuts.latest(event.peer, event.file);
        await this.passcodes.set(rel, put?.protect);
        await this.lockout.forgetFile(rel);
        const info = await lstat(event.path);
        this.index.record(rel, info, event.sha256);
        await this.index.save();
        await this.pendingPuts.settle(event.peer, event.file);
      } else if (event.event === 'failed') {
        await this.pendingPuts.settle(event.peer, event.file);
      }
    } catch (error) {
      this.ctx.logger.log('warn', 'serve-put-bookkeeping', { peer: event.peer, error: String(error) });
    }
  }

  private permitted(peer: PeerId, op: ServeOp): boolean {
    if (this.allow !== undefined && !this.allow.has(peer)) return false;
    if (op === 'put') return this.options.allowPut ?? false;
    if (op === 'rm') return this.options.allowDelete ?? false;
    return true;
  }

  private refuseNotAllowed(peer: PeerId, op: ServeOp): never {
    if (this.allow !== undefined && !this.allow.has(peer)) {
      throw new Refusal('not-allowed', `${this.ctx.self} does not serve this folder to ${peer}`);
    }
    throw new Refusal(
      'not-allowed',
      op === 'put'
        ? 'this folder takes no files (the server allows no put)'
        : 'files cannot be deleted here (the server allows no rm)',
    );
  }

  /** What to answer for an error: a refusal as it is; a local failure in a line that names no path. */
  private asRefusal(peer: PeerId, op: string, error: unknown): Refusal {
    if (error instanceof Refusal) return error;
    if (isDmpError(error, 'NOT_FOUND')) return new Refusal('not-found', error.message);
    if (isDmpError(error, 'DENIED')) {
      const reason = error.data.reason;
      return new Refusal(reason === 'bad-path' ? 'bad-request' : 'not-served', error.message);
    }
    // Anything else happened on this machine: logged here, told there in words without paths.
    this.ctx.logger.log('warn', 'serve-request-failed', {
      peer,
      op,
      error: isDmpError(error) ? error.message : String(error),
    });
    const code = isDmpError(error) ? error.code : 'an unexpected error';
    return new Refusal('failed', `the server could not do it (${code})`);
  }

  private async publish(peer: PeerId, parts: readonly ResponsePart[]): Promise<void> {
    const files = parts.map((part) => ({
      name: responseName(part.id, part.part),
      data: sealEnvelope(this.ctx, {
        v: PROTOCOL_VERSION,
        type: SERVE_RESPONSE.type,
        from: this.ctx.self,
        to: peer,
        seq: 0,
        sentAt: this.ctx.clock.now(),
        body: part,
      }),
    }));
    const bytes = files.reduce((sum, file) => sum + file.data.length, 0);
    if (files.some((file) => file.data.length > MAX_CONTROL_FILE)) {
      throw new DmpError('PROTOCOL', 'a response part is larger than a control file may be');
    }
    // Not fsynced: an answer is made again from memory, or the request is answered again.
    await publishWithinQuota(this.ctx, bytes, () => this.ctx.relay.publish(peer, files, { durable: false }), {
      signal: this.closer.signal,
    });
  }

  /**
   * A request that was answered, seen again: its answer is published again when a part of it is
   * missing or the client published the request anew (it did not get a readable answer).
   */
  private answerAgain(
    peer: PeerId,
    id: string,
    name: string,
    answered: Answered,
    published: Set<number> | undefined,
  ): void {
    if (answered.parts.length === 0) return;
    const key = `${peer}/${id}`;
    this.inFlight.add(key);
    void (async () => {
      const complete = answered.parts.every((part) => published?.has(part.part));
      const read = complete ? await this.ctx.inbound.read(peer, name, { maxBytes: MAX_REQUEST_FILE }) : undefined;
      if (complete && (read === undefined || read.version === answered.version)) return;
      if (read !== undefined) answered.version = read.version;
      await this.publish(peer, answered.parts);
    })()
      .catch((error: unknown) => {
        this.ctx.logger.log('debug', 'serve-answer-again-failed', { peer, error: String(error) });
      })
      .finally(() => this.inFlight.delete(key));
  }

  private remember(peer: PeerId, id: string, answered: Answered): void {
    const key = `${peer}/${id}`;
    // Even an empty answer costs its entry: a flood of requests is bounded too.
    answered.bytes = Math.max(ANSWER_ENTRY_BYTES, answered.bytes);
    this.answered.set(key, answered);
    this.rememberedBytes += answered.bytes;
  }

  /** Forgets answers older than a request may be, and the oldest while they take too much room. */
  private forgetOld(): void {
    const now = this.ctx.clock.now();
    for (const [key, answered] of this.answered) {
      if (now - answered.at <= REQUEST_MAX_AGE_MS && this.rememberedBytes <= MAX_REMEMBERED_BYTES) break;
      this.answered.delete(key);
      this.rememberedBytes -= answered.bytes;
    }
    if (this.unopened.size > 10_000) this.unopened.clear();
  }
}
