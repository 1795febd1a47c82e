/**
 * The client side of a served folder (docs/PROTOCOL.md, "Serving a folder"): `dftp ls`, `get`,
 * `put` and `rm`. Each request is one `serve-req` file with a fresh id; its answer is the
 * server's `serve-res` parts for that id. The request is published again (a fresh token) while
 * no readable answer has come, in case it reached the server damaged, and removed once answered
 * or given up. Files ride DFTP: a get's offer answers the request, and only the transfers the
 * answers named are taken; a put is sent once the server accepted it.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { DmpError, type ErrorCode, isDmpError, throwIfAborted } from '../errors.js';
import { readJsonFile } from '../local/files.js';
import { MAX_CONTROL_FILE, PROTOCOL_VERSION } from '../node/envelope.js';
import { isRefused } from '../node/inbound.js';
import type { NodeComponents } from '../node/node.js';
import { openEnvelope, sealEnvelope } from '../node/open.js';
import { publishWithinQuota } from '../node/quota.js';
import { RepeatSchedule } from '../node/repeat.js';
import type { TransferEvent, TransferEventListener } from '../transfer/events.js';
import { type IncomingState, incomingStatePath } from '../transfer/incoming-state.js';
import { TransferReceiver } from '../transfer/receiver.js';
import type { ReceiverSet } from '../transfer/receivers.js';
import { sendFile } from '../transfer/sender.js';
import type { SourceFile } from '../transfer/walk.js';
import type { PeerId } from '../util/peer-id.js';
import {
  type AnswerCode,
  joinResponse,
  type ListEntry,
  type ResponsePart,
  requestName,
  responseName,
  SERVE_REQUEST,
  SERVE_RESPONSE,
  type ServeRequest,
  type ServeResponse,
} from './control.js';

export type ServeClientComponents = Pick<
  NodeComponents,
  'self' | 'relay' | 'inbound' | 'sealer' | 'guard' | 'home' | 'clock' | 'logger' | 'feed' | 'quota'
>;

/** How long a client waits for an answer by default, ms. */
export const DEFAULT_ANSWER_TIMEOUT_MS = 30_000;
/** How long a get waits, once its files arrived, for the server to see its last verdicts. */
const SETTLE_MS = 10_000;
/** A server that says `busy` without saying how long is asked again after this long. */
const BUSY_WAIT_MS = 5000;

export interface AskOptions {
  /** How long to wait for an answer, ms. @default 30 000 */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The passcode of a protected file, asked for when the server says one is needed. */
export type PasscodeSource = (file: string) => Promise<string | undefined>;

export interface Listing {
  entries: ListEntry[];
  /** The folder holds more than the answer could carry. */
  truncated: boolean;
}

export interface GetOptions extends AskOptions {
  /** Where the files land. */
  out: string;
  /** Replace existing files instead of choosing a free name. @default false */
  overwrite?: boolean;
  passcode?: PasscodeSource;
  /** Files in flight at once. @default 4 */
  concurrency?: number;
  onEvent?: TransferEventListener;
}

export interface PutOptions extends AskOptions {
  /** Protect the files put with a passcode (asked once through `passcode`). @default false */
  protect?: boolean;
  passcode?: PasscodeSource;
  /** Bytes per chunk. */
  blockSize: number;
  /** Files in flight at once. @default 4 */
  concurrency?: number;
  onEvent?: TransferEventListener;
}

/** What became of one file of a get or a put. */
export interface FileResult {
  /** The name asked for (get), or the source's name (put). */
  name: string;
  /** get: where it landed; put: the name it has in the served folder. */
  path?: string;
  bytes?: number;
  sha256?: string;
  /** Why it failed. */
  error?: DmpError;
}

const ERROR_CODES: Record<AnswerCode, ErrorCode> = {
  'bad-request': 'PROTOCOL',
  'not-found': 'NOT_FOUND',
  'not-served': 'DENIED',
  'not-allowed': 'DENIED',
  'passcode-needed': 'DENIED',
  denied: 'DENIED',
  exists: 'DENIED',
  busy: 'DENIED',
  failed: 'IO',
};

/** A refusal as a typed error: `data = { peer, reason, retryAfterMs? }`. */
function refusal(peer: PeerId, response: ServeResponse): DmpError {
  const error = response.error ?? { code: 'failed' as const, message: 'refused' };
  return new DmpError(ERROR_CODES[error.code], `${peer}: ${error.message}`, {
    data: {
      peer,
      reason: error.code,
      ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
    },
  });
}

/**
 * Sends one request to `peer` and waits for its answer. Fails with TIMEOUT when none comes
 * (the server does not run), AUTH when the peer's files do not authenticate, ABORTED.
 */
export async function ask(
  ctx: ServeClientComponents,
  peer: PeerId,
  request: ServeRequest,
  options: AskOptions = {},
): Promise<ServeResponse> {
  const { clock, relay, feed, guard } = ctx;
  const id = randomBytes(8).toString('hex');
  const timeoutMs = options.timeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
  const name = requestName(id);
  const publish = async () => {
    const data = sealEnvelope(ctx, {
      v: PROTOCOL_VERSION,
      type: SERVE_REQUEST.type,
      from: ctx.self,
      to: peer,
      seq: 0,
      sentAt: clock.now(),
      body: { id, ...request },
    });
    // Not fsynced: a request lost in a crash is asked again by whoever still waits for it.
    await publishWithinQuota(ctx, data.length, () => relay.publish(peer, [{ name, data }], { durable: false }), {
      signal: options.signal,
    });
  };
  const { wakeup, unsubscribe } = feed.subscribe((change) => change.owner === peer && change.dir === ctx.self);
  const repeat = new RepeatSchedule(clock);
  const parts = new Map<number, { version: string; part: ResponsePart }>();
  try {
    await publish();
    repeat.published(true);
    const deadline = clock.elapsed() + timeoutMs;
    for (;;) {
      const response = await readAnswer(ctx, peer, id, parts);
      if (response) return response;
      if (guard.isUnauthenticated(peer)) {
        throw new DmpError('AUTH', `cannot authenticate answers from ${peer}: wrong relay key?`, { data: { peer } });
      }
      throwIfAborted(options.signal);
      const left = deadline - clock.elapsed();
      if (left <= 0) {
        throw new DmpError(
          'TIMEOUT',
          `no answer from ${peer} in ${Math.round(timeoutMs / 1000)} s: is dftp serve (or dmp daemon --serve) running there? dmp who shows whether ${peer} is online`,
          { data: { peer, timeoutMs } },
        );
      }
      if (repeat.due) {
        await publish();
        repeat.published(false);
      }
      // The answer's name is known: look for it on events, and now and then without one.
      await wakeup.wait(Math.min(left, 250), options.signal);
    }
  } finally {
    await relay.remove(peer, [name]).catch(() => {});
    unsubscribe();
  }
}

/** Every part of the answer to `id` when all are there and readable; undefined until then. */
async function readAnswer(
  ctx: ServeClientComponents,
  peer: PeerId,
  id: string,
  parts: Map<number, { version: string; part: ResponsePart }>,
): Promise<ServeResponse | undefined> {
  let count = 1;
  for (let index = 0; index < count; index += 1) {
    const file = responseName(id, index);
    const read = await ctx.inbound.read(peer, file, { maxBytes: MAX_CONTROL_FILE });
    if (read === undefined || isRefused(read)) return undefined;
    let known = parts.get(index);
    if (known?.version !== read.version) {
      const opened = openEnvelope(ctx, peer, file, read, { kind: SERVE_RESPONSE });
      // A damaged part: the request is published again, and the server then its answer.
      if (!opened.envelope || opened.envelope.body.id !== id || opened.envelope.body.part !== index) return undefined;
      known = { version: read.version, part: opened.envelope.body };
      parts.set(index, known);
    }
    count = known.part.parts;
  }
  try {
    return joinResponse([...parts.values()].filter((entry) => entry.part.part < count).map((entry) => entry.part));
  } catch {
    return undefined;
  }
}

/** Asks, and asks again while the server is busy. */
async function askPatiently(
  ctx: ServeClientComponents,
  peer: PeerId,
  request: ServeRequest,
  options: AskOptions,
): Promise<ServeResponse> {
  for (;;) {
    const response = await ask(ctx, peer, request, options);
    if (response.ok || response.error?.code !== 'busy') return response;
    await ctx.clock.sleep(response.error.retryAfterMs ?? BUSY_WAIT_MS, options.signal);
  }
}

/** Asks; when the server says the file is protected, asks again with its passcode. */
async function askWithPasscode(
  ctx: ServeClientComponents,
  peer: PeerId,
  request: Extract<ServeRequest, { op: 'get' | 'rm' | 'put' }>,
  options: AskOptions & { passcode?: PasscodeSource },
): Promise<ServeResponse> {
  const response = await askPatiently(ctx, peer, request, options);
  if (response.ok || response.error?.code !== 'passcode-needed' || request.passcode !== undefined) return response;
  const passcode = await options.passcode?.(request.name);
  if (passcode === undefined) return response;
  return askPatiently(ctx, peer, { ...request, passcode }, options);
}

/** The entries of `path` ('' for the top) in the folder `peer` serves. */
export async function listServed(
  ctx: ServeClientComponents,
  peer: PeerId,
  path: string,
  options: AskOptions = {},
): Promise<Listing> {
  const response = await askPatiently(ctx, peer, { op: 'ls', path }, options);
  if (!response.ok) throw refusal(peer, response);
  return { entries: response.entries ?? [], truncated: response.truncated ?? false };
}

/** Deletes `name` in the folder `peer` serves; resolves to the name removed. */
export async function removeServed(
  ctx: ServeClientComponents,
  peer: PeerId,
  name: string,
  options: AskOptions & { passcode?: PasscodeSource } = {},
): Promise<string> {
  const response = await askWithPasscode(ctx, peer, { op: 'rm', name }, options);
  if (!response.ok) throw refusal(peer, response);
  return response.name ?? name;
}

/** Runs `work` on each item, at most `concurrency` at once, keeping the order of the results. */
async function eachAtMost<T, R>(items: readonly T[], concurrency: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  return results;
}

function failure(error: unknown): DmpError {
  if (isDmpError(error)) return error;
  return new DmpError('IO', error instanceof Error ? error.message : String(error), { cause: error });
}

/** A transfer a get waits for: whether it showed up yet, and its end. */
interface Waiter {
  started: boolean;
  ended: Promise<TransferEvent>;
  end: (event: TransferEvent) => void;
}

export interface GetRuntime {
  /** The receivers of this process: the get's own joins them while it runs. */
  receivers: ReceiverSet;
  /** Runs the node's loop until the signal (the receiver is one of its handlers). */
  run: (signal: AbortSignal) => Promise<void>;
}

/**
 * Gets `names` from the folder `peer` serves into `options.out`: each is asked for, and its
 * transfer (named by the answer) received like any DFTP transfer, verified, and put in place.
 * A get interrupted and asked again resumes: the server carries on with the same transfer.
 * Never throws for one file: each result says what became of it.
 */
export async function getServed(
  ctx: ServeClientComponents,
  runtime: GetRuntime,
  peer: PeerId,
  names: readonly string[],
  options: GetOptions,
): Promise<FileResult[]> {
  const waiting = new Map<string, Waiter>();
  const receiver = new TransferReceiver(ctx, {
    out: options.out,
    from: peer,
    overwrite: options.overwrite,
    // Only the transfers the answers named: "the offer answers the request".
    accept: (from, offer) => from === peer && offer.request !== undefined && waiting.has(offer.tid),
    onEvent: (event) => {
      options.onEvent?.(event);
      const waiter = 'tid' in event ? waiting.get(event.tid) : undefined;
      if (waiter && event.event !== 'waiting') waiter.started = true;
      if (waiter && (event.event === 'done' || event.event === 'failed')) waiter.end(event);
    },
  });
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const aborted = new Promise<never>((_, reject) => {
    const fail = () => reject(new DmpError('ABORTED', 'cancelled; run the same command again to resume'));
    if (stop.signal.aborted) fail();
    stop.signal.addEventListener('abort', fail, { once: true });
  });
  aborted.catch(() => {});
  const remove = runtime.receivers.add(receiver);
  const loop = runtime.run(stop.signal).catch(() => {});
  const timeoutMs = options.timeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
  try {
    // One transfer per file, however often it was named.
    const unique = [...new Set(names)];
    const results = await eachAtMost(unique, options.concurrency ?? 4, async (name): Promise<FileResult> => {
      try {
        for (;;) {
          const response = await askWithPasscode(ctx, peer, { op: 'get', name }, options);
          if (!response.ok || !response.file) return { name, error: refusal(peer, response) };
          const { tid } = response.file;
          let waiter = waiting.get(tid);
          if (!waiter) {
            let end: (event: TransferEvent) => void = () => {};
            const ended = new Promise<TransferEvent>((resolve) => {
              end = resolve;
            });
            waiter = { started: false, ended, end };
            waiting.set(tid, waiter);
          }
          // Received whole by an earlier run that stopped before the server saw it: done already.
          const earlier = await readJsonFile<IncomingState>(incomingStatePath(ctx.home, peer, tid)).catch(
            () => undefined,
          );
          if (earlier?.state === 'complete' && earlier.path) {
            return {
              name,
              path: earlier.path,
              bytes: earlier.offer.size,
              ...(earlier.sha256 ? { sha256: earlier.sha256 } : {}),
            };
          }
          // A transfer that never shows up (its offer withdrawn before we saw it: the file changed
          // on the server) is asked for again: the server names the one that runs now.
          const quiet = ctx.clock.sleep(timeoutMs, stop.signal).then(
            () => 'quiet' as const,
            () => 'quiet' as const,
          );
          let event = await Promise.race([waiter.ended, aborted, quiet]);
          if (event === 'quiet' && waiter.started) event = await Promise.race([waiter.ended, aborted]);
          if (event === 'quiet') continue;
          if (event.event === 'done') return { name, path: event.path, bytes: event.bytes, sha256: event.sha256 };
          const reason = event.event === 'failed' ? event.reason : 'failed';
          return { name, error: new DmpError('TRANSFER_FAILED', `${name}: ${reason}`, { data: { peer, name } }) };
        }
      } catch (error) {
        return { name, error: failure(error) };
      }
    });
    // The server learns from our last verdicts that it may withdraw: wait a little for that.
    const until = ctx.clock.now() + SETTLE_MS;
    while (!stop.signal.aborted && receiver.hasUnsettled && ctx.clock.now() < until) {
      await ctx.clock.sleep(50, stop.signal).catch(() => {});
    }
    return results;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    stop.abort();
    await loop;
    remove();
    await receiver.close();
  }
}

/**
 * Puts `files` into the folder `peer` serves: each is offered in a request, and sent as a DFTP
 * transfer carrying that request once the server accepted it. An interrupted put resumes when
 * asked again. Never throws for one file: each result says what became of it.
 */
export async function putServed(
  ctx: ServeClientComponents,
  peer: PeerId,
  files: readonly SourceFile[],
  options: PutOptions,
): Promise<FileResult[]> {
  return eachAtMost(files, options.concurrency ?? 4, async (file): Promise<FileResult> => {
    try {
      const info = await stat(file.path).catch((error: unknown) => {
        throw new DmpError('IO', `cannot read ${file.path}: ${(error as Error).message}`, { cause: error });
      });
      let passcode: string | undefined;
      if (options.protect) {
        passcode = await options.passcode?.(file.name);
        if (passcode === undefined) throw new DmpError('USAGE', 'a protected put needs a passcode');
      }
      const response = await askWithPasscode(
        ctx,
        peer,
        {
          op: 'put',
          name: file.name,
          size: info.size,
          mtimeMs: info.mtimeMs,
          protect: options.protect ?? false,
          ...(passcode === undefined ? {} : { passcode }),
        },
        options,
      );
      if (!response.ok) return { name: file.name, error: refusal(peer, response) };
      const sent = await sendFile(ctx, peer, file, {
        blockSize: options.blockSize,
        request: response.id,
        signal: options.signal,
        onEvent: options.onEvent,
      });
      return { name: file.name, path: response.name ?? file.name, bytes: sent.bytes, sha256: sent.sha256 };
    } catch (error) {
      return { name: file.name, error: failure(error) };
    }
  });
}
