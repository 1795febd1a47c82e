/**
 * The node: one per process and peer. It owns the relay, the change feed, the sealing port, the
 * authentication guard and the one service loop. Services register handlers for the kinds of
 * file they consume; each pass lists `<relay>/<peer>/<self>/` once per peer and hands every
 * handler the names of its kinds. Commands (listen, receive, the daemon) are compositions of
 * registered handlers over this one loop, never loops of their own.
 *
 * A new service: define its kinds (src/node/envelope.ts `defineKind`) and a handler in its own
 * folder, take what it needs from NodeComponents, and `register` the handler. Nothing here
 * changes.
 */
import type { Clock } from '../clock.js';
import { type DmpError, isDmpError } from '../errors.js';
import type { HomeLayout } from '../local/home.js';
import type { Logger } from '../log.js';
import type { RelayStorage } from '../relay/storage.js';
import type { PeerId } from '../util/peer-id.js';
import type { AuthGuard } from './auth-guard.js';
import type { FileKind } from './envelope.js';
import { ChangeFeed } from './feed.js';
import { InboundReader } from './inbound.js';
import type { Sealer } from './seal.js';

/** Every collaborator a service may ask for. A service declares the few it uses with Pick<>. */
export interface NodeComponents {
  readonly self: PeerId;
  readonly relay: RelayStorage;
  readonly sealer: Sealer;
  readonly guard: AuthGuard;
  readonly home: HomeLayout;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly feed: ChangeFeed;
  /** The one way to read what other peers wrote for this one: bounded, and per entry. */
  readonly inbound: InboundReader;
  /** Bytes this peer may hold in its relay folder, every kind of file together. */
  readonly quota: number;
}

/** A consumer of some kinds of file in the folders other peers write for this one. */
export interface IncomingHandler {
  readonly kinds: readonly FileKind[];
  /**
   * Called once per pass for each peer with the names of its kinds in `<peer>/<self>/` (maybe
   * none). Resolves to true when it stopped short (a batch limit) and wants another pass at once:
   * it is then called again soon, without a new listing, with the same names (files may have
   * gone or come since: they are a guide, the reads are the truth).
   * `blocked`: the user blocked this peer; nothing of it may reach the user (each handler says
   * what that means for its kind: acknowledge and drop, leave unanswered, ignore).
   */
  handle(peer: PeerId, names: readonly string[], context: { blocked: boolean }): Promise<unknown>;
}

export interface NodeInit {
  /** Longest sleep between passes when nothing happens, ms. @default 1000 */
  idleMs?: number;
  /** The user's block list; consulted before every look at a folder. @default nobody blocked */
  blocked?: { refresh(): Promise<void>; has(peer: string): boolean };
}

/** Relay-wide trouble: no use looking at other peers until it passes. */
const RELAY_WIDE = new Set(['RELAY_MISSING', 'RELAY_READ_ONLY', 'DISK_FULL']);
const FIRST_BACKOFF_MS = 250;
const LONGEST_BACKOFF_MS = 30_000;

export class Node {
  readonly components: NodeComponents;
  private readonly handlers = new Set<IncomingHandler>();
  private readonly claimed = new Map<string, IncomingHandler>();
  private readonly errorListeners = new Set<(error: DmpError, peer?: PeerId) => void>();
  private readonly activityListeners = new Set<(peer: PeerId) => void>();
  private readonly closer = new AbortController();
  private readonly idleMs: number;
  private readonly blocked: NodeInit['blocked'];
  /** The running loop, shared by every caller of run(), and how many callers need it. */
  private loop: { controller: AbortController; done: Promise<void>; users: number } | undefined;

  constructor(components: Omit<NodeComponents, 'feed' | 'inbound'>, init: NodeInit = {}) {
    const feed = new ChangeFeed(components.relay, components.clock, this.closer.signal);
    this.components = {
      ...components,
      feed,
      inbound: new InboundReader({ ...components, feed }, this.closer.signal),
    };
    this.idleMs = init.idleMs ?? 1000;
    this.blocked = init.blocked;
  }

  /**
   * Registers a handler for its kinds; each kind has one consumer per process. Returns the
   * function that unregisters it. A handler registered while the loop runs is served from the
   * next pass on.
   */
  register(handler: IncomingHandler): () => void {
    for (const kind of handler.kinds) {
      if (this.claimed.has(kind.type)) throw new Error(`a handler for ${kind.type} files is already registered`);
    }
    for (const kind of handler.kinds) this.claimed.set(kind.type, handler);
    this.handlers.add(handler);
    return () => {
      this.handlers.delete(handler);
      for (const kind of handler.kinds) if (this.claimed.get(kind.type) === handler) this.claimed.delete(kind.type);
    };
  }

  /** Something failed for one peer's folder or for the whole relay; the loop backs off and goes on. */
  onError(listener: (error: DmpError, peer?: PeerId) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** Files from this peer changed since the last look. */
  onActivity(listener: (peer: PeerId) => void): () => void {
    this.activityListeners.add(listener);
    return () => this.activityListeners.delete(listener);
  }

  /**
   * Runs the service loop until `signal` fires. Callers share one loop: the first starts it,
   * the last to stop ends it. Rejects only on a bug (an error that is not a DmpError).
   */
  async run(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    if (!this.loop) {
      const controller = new AbortController();
      this.loop = { controller, done: this.serve(controller.signal), users: 0 };
    }
    const loop = this.loop;
    loop.users += 1;
    const stopped = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    try {
      await Promise.race([stopped, loop.done]);
    } finally {
      loop.users -= 1;
      if (loop.users === 0) {
        loop.controller.abort();
        if (this.loop === loop) this.loop = undefined;
        await loop.done.catch(() => {});
      }
    }
    // A loop that ended by itself failed: let every caller know.
    if (!signal.aborted) await loop.done;
  }

  /** Stops watching the relay and releases the sealer's threads; the node cannot run again. */
  close(): void {
    this.loop?.controller.abort();
    this.closer.abort();
    this.components.sealer.close();
  }

  private report(error: DmpError, peer?: PeerId): void {
    for (const listener of this.errorListeners) listener(error, peer);
  }

  private async serve(signal: AbortSignal): Promise<void> {
    const { relay, self, feed, clock, guard } = this.components;
    const dirty = new Set<PeerId>();
    const seen = new Map<PeerId, string>();
    // Handlers that stopped short, per peer, with the names they were given: continued without
    // listing the folder again (a backlog of 100,000 files is listed once, not once per batch).
    const continuing = new Map<PeerId, Map<IncomingHandler, readonly string[]>>();
    // Per-peer back-off: trouble in one peer's folder never slows the others.
    const backoff = new Map<PeerId, { until: number; ms: number }>();
    let everyone = true;
    let relayBackoffMs = 0;
    const { wakeup, unsubscribe } = feed.subscribe((change) => {
      if (change.dir !== self || change.owner === self) return false;
      dirty.add(change.owner);
      return true;
    });
    try {
      while (!signal.aborted) {
        const again = new Set<PeerId>();
        let relayFailed = false;
        // Quarantines begun here are written, ones lifted elsewhere noticed (both local files).
        await guard.sync();
        try {
          const fresh = everyone ? (await relay.peers()).filter((peer) => peer !== self) : [...dirty];
          const peers = [...new Set([...fresh, ...continuing.keys()])];
          const listed = new Set(fresh);
          everyone = false;
          dirty.clear();
          for (const peer of peers) {
            if (signal.aborted) break;
            const waiting = backoff.get(peer);
            if (waiting && waiting.until > clock.now()) continue;
            try {
              // Keys first (an identity may have appeared, rotated, or been accepted meanwhile).
              if ((await this.components.sealer.prepare?.(peer)) === false) continue;
              if (!guard.shouldLook(peer)) continue;
              const more = listed.has(peer)
                ? await this.pass(peer, seen, continuing)
                : await this.resume(peer, continuing);
              if (more) again.add(peer);
              backoff.delete(peer);
            } catch (error) {
              continuing.delete(peer);
              if (!isDmpError(error) || RELAY_WIDE.has(error.code)) throw error;
              this.report(error, peer);
              const ms = Math.min(LONGEST_BACKOFF_MS, Math.max(FIRST_BACKOFF_MS, (waiting?.ms ?? 0) * 2));
              backoff.set(peer, { until: clock.now() + ms, ms });
            }
          }
        } catch (error) {
          if (!isDmpError(error)) throw error;
          this.report(error);
          relayFailed = true;
        }
        if (relayFailed) {
          relayBackoffMs = Math.min(LONGEST_BACKOFF_MS, Math.max(FIRST_BACKOFF_MS, relayBackoffMs * 2));
          everyone = true;
          await clock.sleep(relayBackoffMs, signal).catch(() => {});
          continue;
        }
        relayBackoffMs = 0;
        if (again.size > 0) continue;
        await wakeup.wait(this.idleMs, signal);
        // Rescan ticks poke every subscriber without naming an owner: look at everyone then.
        if (dirty.size === 0) everyone = true;
      }
    } finally {
      unsubscribe();
      // A quarantine begun in the last pass is kept, even when the process ends now.
      await guard.sync();
    }
  }

  /** One look at one peer's folder for us: every handler gets the names of its kinds. */
  private async pass(
    peer: PeerId,
    seen: Map<PeerId, string>,
    continuing: Map<PeerId, Map<IncomingHandler, readonly string[]>>,
  ): Promise<boolean> {
    const names = await this.components.relay.list(peer, this.components.self);
    // Failures of files no longer there no longer count toward a quarantine.
    this.components.guard.listed(peer, names);
    const context = await this.contextOf(peer);
    const signature = signatureOf(names);
    if (seen.has(peer) && seen.get(peer) !== signature) {
      for (const listener of this.activityListeners) listener(peer);
    }
    seen.set(peer, signature);
    continuing.delete(peer);
    const more = new Map<IncomingHandler, readonly string[]>();
    for (const handler of [...this.handlers]) {
      const mine = names.filter((name) => handler.kinds.some((kind) => kind.files.test(name)));
      if ((await handler.handle(peer, mine, context)) === true) more.set(handler, mine);
    }
    if (more.size > 0) continuing.set(peer, more);
    return more.size > 0;
  }

  /** What every handler is told about `peer` with its files. */
  private async contextOf(peer: PeerId): Promise<{ blocked: boolean }> {
    await this.blocked?.refresh();
    return { blocked: this.blocked?.has(peer) ?? false };
  }

  /** Continues the handlers of `peer` that stopped short, with the names of their last pass. */
  private async resume(
    peer: PeerId,
    continuing: Map<PeerId, Map<IncomingHandler, readonly string[]>>,
  ): Promise<boolean> {
    const pending = continuing.get(peer);
    continuing.delete(peer);
    if (!pending) return false;
    const context = await this.contextOf(peer);
    const more = new Map<IncomingHandler, readonly string[]>();
    for (const [handler, names] of pending) {
      if (!this.handlers.has(handler)) continue;
      if ((await handler.handle(peer, names, context)) === true) more.set(handler, names);
    }
    if (more.size > 0) continuing.set(peer, more);
    return more.size > 0;
  }
}

/**
 * A short fingerprint of a listing, to notice that it changed (FNV-1a over the names, and their
 * count), rather than a string as long as the listing itself.
 */
function signatureOf(names: readonly string[]): string {
  let hash = 0x811c9dc5;
  for (const name of names) {
    for (let index = 0; index < name.length; index += 1) {
      hash ^= name.charCodeAt(index);
      hash = Math.imul(hash, 0x01000193);
    }
    hash ^= 0x2f;
    hash = Math.imul(hash, 0x01000193);
  }
  return `${names.length}:${(hash >>> 0).toString(16)}`;
}
