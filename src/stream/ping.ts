/**
 * Ping: ephemeral files, outside the ordered stream, so any running process of the peer can
 * answer and no stream state is touched. The pinger publishes `ping-<nonce>.dmp`; a responder
 * answers with `pong-<nonce>.dmp` in its own folder; the pinger deletes its ping when answered
 * or given up, and the responder deletes a pong once its ping is gone.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DmpError, isDmpError } from '../errors.js';
import type { PeerId } from '../util/peer-id.js';
import type { PeerContext } from './context.js';
import { decodeEnvelope, type Envelope, encodeEnvelope, type PingBody, PROTOCOL_VERSION } from './envelope.js';
import type { ChangeFeed } from './feed.js';
import { parsePingName, parsePongName, pingName, pongName } from './names.js';

/** Pings older than this (by the pinger's clock) are not answered: nobody waits for them. */
const PING_MAX_AGE_MS = 5 * 60_000;

export class PingResponder {
  private readonly answered = new Set<string>();

  constructor(private readonly ctx: PeerContext) {}

  /** Answers the pings in `names` (a fresh listing of `<relay>/<peer>/<self>/`). */
  async poll(peer: PeerId, names: readonly string[]): Promise<void> {
    const pings = new Set<string>();
    for (const name of names) {
      const nonce = parsePingName(name);
      if (nonce === undefined) continue;
      pings.add(nonce);
      if (this.answered.has(nonce)) continue;
      this.answered.add(nonce);
      const read = await this.ctx.relay.read(peer, this.ctx.self, name);
      if (read === undefined) continue;
      let ping: Envelope;
      try {
        ping = decodeEnvelope(this.ctx.key, read.data, { from: peer, to: this.ctx.self, type: 'ping' });
      } catch (error) {
        if (!isDmpError(error)) throw error;
        this.ctx.logger.log('warn', 'ping-rejected', { peer, file: name, reason: error.message });
        continue;
      }
      if ((ping.body as PingBody).nonce !== nonce) continue;
      if (this.ctx.clock.now() - ping.sentAt > PING_MAX_AGE_MS) continue;
      const pong: Envelope = { ...ping, type: 'pong', from: this.ctx.self, to: peer, sentAt: this.ctx.clock.now() };
      await this.ctx.relay.publish(peer, [{ name: pongName(nonce), data: encodeEnvelope(this.ctx.key, pong) }], {
        durable: false,
      });
    }
    // Garbage: our pongs whose ping is gone.
    for (const nonce of this.answered) if (!pings.has(nonce)) this.answered.delete(nonce);
    const stale = (await this.ctx.relay.list(this.ctx.self, peer)).filter((name) => {
      const nonce = parsePongName(name);
      return nonce !== undefined && !pings.has(nonce);
    });
    if (stale.length > 0) await this.ctx.relay.remove(peer, stale);
  }
}

export interface PingReply {
  seq: number;
  rttMs: number;
}

export interface PingOptions {
  count?: number;
  /** Pause between pings, ms (default 1000, as ping(8)). */
  intervalMs?: number;
  /** How long to wait for each reply, ms (default 10 000). */
  timeoutMs?: number;
  signal?: AbortSignal;
  onReply?: (reply: PingReply) => void;
  onTimeout?: (seq: number) => void;
}

/** Pings `peer` `count` times; returns the replies (missing ones timed out). */
export async function ping(
  ctx: PeerContext,
  feed: ChangeFeed,
  peer: PeerId,
  options: PingOptions = {},
): Promise<PingReply[]> {
  const count = options.count ?? 4;
  const intervalMs = options.intervalMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const replies: PingReply[] = [];
  const { wakeup, unsubscribe } = feed.subscribe((change) => change.owner === peer && change.dir === ctx.self);
  try {
    for (let seq = 1; seq <= count; seq += 1) {
      if (options.signal?.aborted) break;
      const nonce = randomBytes(8).toString('hex');
      const started = performance.now();
      const envelope: Envelope = {
        v: PROTOCOL_VERSION,
        type: 'ping',
        from: ctx.self,
        to: peer,
        seq,
        sentAt: ctx.clock.now(),
        body: { nonce } satisfies PingBody,
      };
      await ctx.relay.publish(peer, [{ name: pingName(nonce), data: encodeEnvelope(ctx.key, envelope) }], {
        durable: false,
      });
      let answered = false;
      try {
        const deadline = started + timeoutMs;
        while (!answered && performance.now() < deadline && !options.signal?.aborted) {
          const read = await ctx.relay.read(peer, ctx.self, pongName(nonce));
          if (read !== undefined) {
            try {
              const pong = decodeEnvelope(ctx.key, read.data, { from: peer, to: ctx.self, type: 'pong' });
              answered = (pong.body as PingBody).nonce === nonce;
            } catch (error) {
              if (!isDmpError(error, 'AUTH')) throw error;
              throw new DmpError('AUTH', `cannot authenticate replies from ${peer}: wrong relay key?`, {
                cause: error,
              });
            }
          }
          if (!answered) {
            // The pong's name is known, so look for it directly as well as on events: every
            // 1 ms at first, backing off to 10 ms. On a polled share this keeps our side of the
            // round trip short, and it costs one failed open() per look.
            const lookAgainMs = Math.min(10, 1 + Math.floor((performance.now() - started) / 20));
            await wakeup.wait(Math.min(lookAgainMs, Math.max(1, deadline - performance.now())), options.signal);
          }
        }
      } finally {
        await ctx.relay.remove(peer, [pingName(nonce)]);
      }
      if (answered) {
        const reply = { seq, rttMs: performance.now() - started };
        replies.push(reply);
        options.onReply?.(reply);
      } else if (!options.signal?.aborted) {
        options.onTimeout?.(seq);
      }
      if (seq < count && intervalMs > 0) await ctx.clock.sleep(intervalMs, options.signal).catch(() => {});
    }
  } finally {
    unsubscribe();
  }
  return replies;
}
