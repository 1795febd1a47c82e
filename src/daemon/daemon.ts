/**
 * `dmp daemon`: one long-running process per peer that does everything without a person.
 * It answers pings, receives messages into the inbox (for `dmp listen` to show later), receives
 * files into DMP_HOME/inbox/<sender>/, and sends every file dropped into the outbox spool, one
 * at a time per peer, in order. Everything it does resumes after a crash from DMP_HOME.
 */
import { link, mkdir, readdir, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { type Cancel, type Clock, systemClock } from '../clock.js';
import type { ServeConfig } from '../config.js';
import { DmpError, isDmpError } from '../errors.js';
import { readJsonFile, writeJsonFile } from '../local/files.js';
import { freeName } from '../local/free-name.js';
import { HomeLayout } from '../local/home.js';
import { acquireLock, type Release } from '../local/lock.js';
import type { Logger } from '../log.js';
import { Peer, type PeerOptions } from '../peer.js';
import type { ServeEvent } from '../serve/server.js';
import type { TransferEvent } from '../transfer/events.js';
import type { PeerId } from '../util/peer-id.js';
import { Spool, type SpoolFile } from './spool.js';

export interface DaemonOptions extends PeerOptions {
  logger: Logger;
  signal: AbortSignal;
  /** Where received files land; default DMP_HOME/inbox/<sender>/. */
  inbox?: string;
  blockSize?: number;
  /** How long a spool file must stay unchanged before it is taken, ms (default 1000). */
  stableMs?: number;
  /** How often the spool is looked at, ms (default 500). */
  spoolIntervalMs?: number;
  /** How often presence is published, ms. @default 30 000 */
  presenceIntervalMs?: number;
  /** A folder to serve to the other peers (dmp daemon --serve DIR, or the config). @default none */
  serve?: ServeConfig;
}

/** Failures that no retry can fix: the file goes to failed/ with the reason beside it. */
const PERMANENT = new Set(['TRANSFER_FAILED', 'USAGE', 'PROTOCOL']);

export interface Presence {
  [peer: string]: { lastHeard: number };
}

export async function runDaemon(options: DaemonOptions): Promise<void> {
  const { logger, signal } = options;
  const home = new HomeLayout(options.home);
  await mkdir(options.home, { recursive: true });
  const daemonLock = await acquireLock(home.lock('daemon'), {
    waitMs: 0,
    purpose: `a dmp daemon for ${options.id}`,
    logger,
  });
  const releases: Release[] = [daemonLock];
  try {
    const peer = await openWithRetry(options);
    if (!peer) return;
    await writeJsonFile(home.daemonInfo, { pid: process.pid, quota: peer.quota, startedAt: peer.clock.now() });
    logger.log('info', 'daemon-started', {
      peer: peer.self,
      relay: typeof options.relay === 'string' ? options.relay : 'memory',
      pid: process.pid,
    });
    // The receiving roles are taken as soon as no `dmp listen` / `dftp receive` holds them.
    const roles = takeRolesWhenFree(peer, home, logger, signal, releases, options);
    const presence = trackPresence(home, peer.clock);
    peer.onError((error, from) => logger.log('warn', 'error', { peer: from, code: error.code, error: error.message }));
    peer.onActivity((from) => {
      presence.heard(from);
      void peer.heard(from);
    });
    const online = peer
      .publishPresence(signal, options.presenceIntervalMs)
      .catch((error: unknown) => logger.log('warn', 'presence-stopped', { error: String(error) }));
    const service = peer
      .serve({ signal })
      .catch((error: unknown) => logger.log('error', 'service-stopped', { error: String(error) }));
    const spool = runSpool(peer, home, options);
    const serving = options.serve && serveFolder(peer, options.serve, logger, signal);
    await Promise.all([service, spool, roles, online, serving]);
    await presence.flush();
    peer.close();
    logger.log('info', 'daemon-stopped', { peer: peer.self });
  } finally {
    for (const release of releases.reverse()) await release();
  }
}

/** Opens the peer, waiting with backoff while the relay folder is missing or unwritable. */
async function openWithRetry(options: DaemonOptions): Promise<Peer | undefined> {
  let delay = 1000;
  for (;;) {
    try {
      return await Peer.open(options);
    } catch (error) {
      if (!isDmpError(error, 'RELAY_MISSING') && !isDmpError(error, 'RELAY_READ_ONLY')) throw error;
      options.logger.log('warn', 'relay-unavailable', { error: error.message, retryInMs: delay });
      try {
        await (options.clock ?? systemClock).sleep(delay, options.signal);
      } catch {
        return undefined;
      }
      delay = Math.min(60_000, delay * 2);
    }
  }
}

async function takeRolesWhenFree(
  peer: Peer,
  home: HomeLayout,
  logger: Logger,
  signal: AbortSignal,
  releases: Release[],
  options: DaemonOptions,
): Promise<void> {
  const roles = [
    {
      what: 'messages',
      take: () =>
        peer.receiveMessages((from, messages) =>
          logger.log('info', 'messages-received', { peer: from, count: messages.length, last: messages.at(-1)?.seq }),
        ),
    },
    {
      what: 'files',
      take: async () =>
        (
          await peer.receiveFilesRole({
            out: (from: PeerId) => (options.inbox ? join(options.inbox, from) : home.folder('inbox', from)),
            onEvent: (event: TransferEvent) => logTransferEvent(logger, 'receive', event),
          })
        ).release,
    },
  ];
  let warned = new Set<string>();
  while (roles.length > 0 && !signal.aborted) {
    for (const role of [...roles]) {
      try {
        releases.push(await role.take());
        roles.splice(roles.indexOf(role), 1);
        if (warned.has(role.what)) logger.log('info', 'receiving', { what: role.what });
      } catch (error) {
        if (!isDmpError(error, 'LOCKED')) throw error;
        if (!warned.has(role.what)) {
          logger.log('warn', 'role-busy', {
            what: role.what,
            reason: `${error.message}; the daemon takes over when it ends`,
          });
          warned = new Set([...warned, role.what]);
        }
      }
    }
    if (roles.length > 0) await peer.clock.sleep(2000, signal).catch(() => {});
  }
}

/** Serves a folder alongside everything else; trouble with it is logged, the daemon goes on. */
async function serveFolder(peer: Peer, serve: ServeConfig, logger: Logger, signal: AbortSignal): Promise<void> {
  logger.log('info', 'serving', { dir: serve.dir, allow: serve.allow ?? 'every peer' });
  const onEvent = (event: ServeEvent) => {
    if (event.event === 'transfer') {
      logTransferEvent(logger, event.side, event.transfer);
      return;
    }
    const { event: _, ...fields } = event;
    logger.log(event.ok ? 'info' : 'warn', 'serve-answered', fields);
  };
  await peer
    .serveFolder(serve.dir, { ...serve, signal, onEvent })
    .catch((error: unknown) =>
      logger.log('error', 'serve-stopped', { error: String((error as Error).message ?? error) }),
    );
}

function logTransferEvent(logger: Logger, side: 'send' | 'receive', event: TransferEvent): void {
  if (event.event === 'progress') {
    logger.log('debug', `${side}-progress`, {
      peer: event.peer,
      file: event.file,
      bytes: event.bytes,
      total: event.total,
    });
    return;
  }
  const { event: name, ...fields } = event;
  logger.log(name === 'failed' ? 'warn' : 'info', `${side}-${name}`, fields);
}

/** Records when each peer was last heard from (files of theirs changed), for `dmp status`. */
function trackPresence(home: HomeLayout, clock: Clock) {
  let pending: Presence | undefined;
  let cancel: Cancel | undefined;
  const flush = async () => {
    cancel?.();
    cancel = undefined;
    if (!pending) return;
    const update = pending;
    pending = undefined;
    const stored = (await readJsonFile<Presence>(home.presence).catch(() => undefined)) ?? {};
    await writeJsonFile(home.presence, { ...stored, ...update }).catch(() => {});
  };
  return {
    heard(peer: PeerId) {
      pending = { ...pending, [peer]: { lastHeard: clock.now() } };
      cancel ??= clock.timeout(5000, () => void flush());
    },
    flush,
  };
}

/** Sends what appears in the outbox spool, one file at a time per peer, in order. */
async function runSpool(peer: Peer, home: HomeLayout, options: DaemonOptions): Promise<void> {
  const { logger, signal } = options;
  const spool = new Spool(home.folder('outbox'), options.stableMs ?? 1000, () => peer.clock.now());
  await mkdir(spool.root, { recursive: true });
  const busy = new Map<PeerId, Promise<void>>();
  const retryAt = new Map<string, { at: number; delay: number }>();
  while (!signal.aborted) {
    let ready: SpoolFile[] = [];
    try {
      ready = await spool.ready();
    } catch (error) {
      logger.log('warn', 'spool-error', { error: String(error) });
    }
    for (const file of ready) {
      if (busy.has(file.peer)) continue;
      const retry = retryAt.get(file.path);
      if (retry && retry.at > peer.clock.now()) continue;
      const job = sendSpoolFile(peer, home, spool, file, options)
        .then(() => {
          retryAt.delete(file.path);
        })
        .catch((error: unknown) => {
          const delay = Math.min(300_000, (retry?.delay ?? 1000) * 2);
          retryAt.set(file.path, { at: peer.clock.now() + delay, delay });
          logger.log('warn', 'send-retry', {
            peer: file.peer,
            file: file.name,
            error: String((error as Error).message ?? error),
            retryInMs: delay,
          });
        })
        .finally(() => busy.delete(file.peer));
      busy.set(file.peer, job);
    }
    await peer.clock.sleep(options.spoolIntervalMs ?? 500, signal).catch(() => {});
  }
  await Promise.all(busy.values());
}

async function sendSpoolFile(
  peer: Peer,
  home: HomeLayout,
  spool: Spool,
  file: SpoolFile,
  options: DaemonOptions,
): Promise<void> {
  const { logger, signal } = options;
  if (!(await peer.peers()).includes(file.peer)) {
    throw new DmpError('UNKNOWN_PEER', `no peer '${file.peer}' in the relay yet`);
  }
  try {
    await peer.sendFile(file.peer, file, {
      blockSize: options.blockSize,
      signal,
      onEvent: (event) => logTransferEvent(logger, 'send', event),
    });
  } catch (error) {
    if (isDmpError(error) && PERMANENT.has(error.code)) {
      const moved = await moveOut(spool, home.folder('failed', file.peer), file);
      await writeFile(`${moved}.reason.txt`, `${error.message}\n`).catch(() => {});
      logger.log('error', 'send-failed', { peer: file.peer, file: file.name, reason: error.message, movedTo: moved });
      return;
    }
    throw error;
  }
  const moved = await moveOut(spool, home.folder('sent', file.peer), file);
  logger.log('info', 'spool-sent', { peer: file.peer, file: file.name, movedTo: moved });
}

/** Moves a spool file to sent/ or failed/, keeping its relative path, never replacing a file. */
async function moveOut(spool: Spool, destination: string, file: SpoolFile): Promise<string> {
  const target = await freeName(join(destination, ...file.name.split('/')));
  await mkdir(dirname(target), { recursive: true });
  try {
    await rename(file.path, target);
  } catch {
    // Another file system: copy by link where possible, else leave it and say so.
    await link(file.path, target);
    await unlink(file.path);
  }
  spool.forget(file.path);
  // Remove folders the move emptied, up to the peer's spool folder.
  let dir = dirname(file.path);
  const top = spool.folder(file.peer);
  while (dir !== top && relative(top, dir) && !relative(top, dir).startsWith(`..${sep}`)) {
    if ((await readdir(dir).catch(() => ['x'])).length > 0) break;
    await rmdir(dir).catch(() => {});
    dir = dirname(dir);
  }
  return target;
}
