/**
 * The loop every long-running process of a peer runs: it answers pings, processes the acks of
 * its outgoing streams (deleting what was delivered, publishing again what was asked for) and
 * hands each peer's folder listing to the receivers it was given. One listing of
 * `<relay>/<peer>/<self>/` per pass serves every component.
 */
import { type DmpError, isDmpError } from '../errors.js';
import type { PeerId } from '../util/peer-id.js';
import type { PeerContext } from './context.js';
import type { ChangeFeed } from './feed.js';
import { ACK_NAME } from './names.js';
import { PingResponder } from './ping.js';
import type { MessageSender } from './sender.js';

/** Something that consumes part of a peer's incoming folder (messages, file transfers). */
export interface IncomingHandler {
  /** Returns true when it stopped short (a batch limit) and wants another pass at once. */
  handle(peer: PeerId, names: readonly string[]): Promise<boolean>;
}

export interface ServiceOptions {
  signal: AbortSignal;
  /** Senders of this process, by peer, whose acks to process. Created on demand. */
  senderFor: (peer: PeerId) => MessageSender;
  handlers: readonly IncomingHandler[];
  /** Longest sleep between passes when nothing happens, ms. Default 1000. */
  idleMs?: number;
  /**
   * Something failed for one peer (a rejected file, a full disk) or for the relay (gone for a
   * while). The loop logs it through here, backs off and goes on, unless `isFatal` says stop.
   */
  onError?: (error: DmpError, peer?: PeerId) => void;
  /** Errors that end the loop (default: AUTH, so a wrong key is reported, not retried forever). */
  isFatal?: (error: DmpError) => boolean;
  /** Files from this peer changed since the last look. */
  onActivity?: (peer: PeerId) => void;
}

/** Relay-wide trouble: no use looking at other peers until it passes. */
const RELAY_WIDE = new Set(['RELAY_MISSING', 'RELAY_READ_ONLY', 'DISK_FULL']);

export async function runService(ctx: PeerContext, feed: ChangeFeed, options: ServiceOptions): Promise<void> {
  const { signal } = options;
  const isFatal = options.isFatal ?? ((error: DmpError) => error.code === 'AUTH');
  const responder = new PingResponder(ctx);
  const dirty = new Set<PeerId>();
  const seen = new Map<PeerId, string>();
  let everyone = true;
  const { wakeup, unsubscribe } = feed.subscribe((change) => {
    if (change.dir !== ctx.self || change.owner === ctx.self) return false;
    dirty.add(change.owner);
    return true;
  });
  let backoffMs = 0;
  try {
    while (!signal.aborted) {
      let failed = false;
      const again = new Set<PeerId>();
      try {
        const peers = everyone ? (await ctx.relay.peers()).filter((p) => p !== ctx.self) : [...dirty];
        everyone = false;
        dirty.clear();
        for (const peer of peers) {
          if (signal.aborted) break;
          try {
            const names = await ctx.relay.list(peer, ctx.self);
            const signature = names.join('/');
            if (seen.has(peer) && seen.get(peer) !== signature) options.onActivity?.(peer);
            seen.set(peer, signature);
            await responder.poll(peer, names);
            if (names.includes(ACK_NAME)) await options.senderFor(peer).processAck();
            for (const handler of options.handlers) {
              if ((await handler.handle(peer, names)) === true) again.add(peer);
            }
          } catch (error) {
            if (!isDmpError(error) || isFatal(error) || RELAY_WIDE.has(error.code)) throw error;
            options.onError?.(error, peer);
            failed = true;
          }
        }
      } catch (error) {
        if (!isDmpError(error) || isFatal(error)) throw error;
        options.onError?.(error);
        failed = true;
      }
      if (failed) {
        backoffMs = Math.min(30_000, Math.max(250, backoffMs * 2));
        everyone = true;
        await ctx.clock.sleep(backoffMs, signal).catch(() => {});
        continue;
      }
      backoffMs = 0;
      if (again.size > 0) {
        for (const peer of again) dirty.add(peer);
        continue;
      }
      await wakeup.wait(options.idleMs ?? 1000, signal);
      // Rescan ticks poke every subscriber without naming an owner: look at everyone then.
      if (dirty.size === 0) everyone = true;
    }
  } finally {
    unsubscribe();
  }
}
