/**
 * Ping: ephemeral files, outside the ordered stream, so any running process of the peer can
 * answer and no stream state is touched. The pinger publishes `ping-<nonce>.dmp`; a responder
 * answers with `pong-<nonce>.dmp` in its own folder; the pinger deletes its ping when answered
 * or given up, and the responder deletes a pong once its ping is gone.
 */
import { randomBytes } from 'node:crypto';
import { DmpError } from '../errors.js';
import { defineKind, type Envelope, MAX_CONTROL_FILE, PROTOCOL_VERSION } from '../node/envelope.js';
import { isRefused } from '../node/inbound.js';
import type { IncomingHandler, NodeComponents } from '../node/node.js';
import { openEnvelope, sealEnvelope } from '../node/open.js';
import type { PeerId } from '../util/peer-id.js';
import { parsePingName, parsePongName, pingName, pongName } from './names.js';

export interface PingBody {
  nonce: string;
}

function parsePingBody(body: unknown): PingBody {
  const nonce = (body as Partial<PingBody> | null)?.nonce;
  if (typeof nonce !== 'string' || !/^[0-9a-f]{16}$/.test(nonce))
    throw new DmpError('PROTOCOL', 'ping body is malformed');
  return { nonce };
}

export const PING = defineKind('ping', /^ping-[0-9a-f]{16}\.dmp$/, parsePingBody);
export const PONG = defineKind('pong', /^pong-[0-9a-f]{16}\.dmp$/, parsePingBody);

export type PingComponents = Pick<
  NodeComponents,
  'self' | 'relay' | 'inbound' | 'sealer' | 'guard' | 'clock' | 'logger' | 'feed'
>;

/** Pings older than this (by the pinger's clock) are not answered: nobody waits for them. */
const PING_MAX_AGE_MS = 5 * 60_000;

export class PingResponder implements IncomingHandler {
  readonly kinds = [PING];
  private readonly answered = new Set<string>();

  constructor(private readonly ctx: Omit<PingComponents, 'feed'>) {}

  /** Answers the pings in `names` (the ping files of a fresh listing of `<relay>/<peer>/<self>/`). */
  async handle(peer: PeerId, names: readonly string[], context?: { blocked: boolean }): Promise<void> {
    // A blocked peer's pings go unanswered, as if nobody ran.
    if (context?.blocked) return;
    const pings = new Set<string>();
    for (const name of names) {
      const nonce = parsePingName(name);
      if (nonce === undefined) continue;
      pings.add(nonce);
      if (this.answered.has(nonce)) continue;
      this.answered.add(nonce);
      const read = await this.ctx.inbound.read(peer, name, { maxBytes: MAX_CONTROL_FILE });
      if (read === undefined || isRefused(read)) continue;
      const { envelope: ping } = openEnvelope(this.ctx, peer, name, read, { kind: PING });
      if (!ping || ping.body.nonce !== nonce) continue;
      if (this.ctx.clock.now() - ping.sentAt > PING_MAX_AGE_MS) continue;
      // Built from the checked fields alone: nothing else of the ping is echoed.
      const pong: Envelope<PingBody> = {
        v: PROTOCOL_VERSION,
        type: PONG.type,
        from: this.ctx.self,
        to: peer,
        seq: ping.seq,
        sentAt: this.ctx.clock.now(),
        body: { nonce },
      };
      await this.ctx.relay.publish(peer, [{ name: pongName(nonce), data: sealEnvelope(this.ctx, pong) }], {
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
export async function ping(ctx: PingComponents, peer: PeerId, options: PingOptions = {}): Promise<PingReply[]> {
  const count = options.count ?? 4;
  const intervalMs = options.intervalMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const replies: PingReply[] = [];
  const { wakeup, unsubscribe } = ctx.feed.subscribe((change) => change.owner === peer && change.dir === ctx.self);
  try {
    for (let seq = 1; seq <= count; seq += 1) {
      if (options.signal?.aborted) break;
      const nonce = randomBytes(8).toString('hex');
      const started = ctx.clock.elapsed();
      const envelope: Envelope = {
        v: PROTOCOL_VERSION,
        type: PING.type,
        from: ctx.self,
        to: peer,
        seq,
        sentAt: ctx.clock.now(),
        body: { nonce } satisfies PingBody,
      };
      await ctx.relay.publish(peer, [{ name: pingName(nonce), data: sealEnvelope(ctx, envelope) }], {
        durable: false,
      });
      let answered = false;
      let rejectedVersion: string | undefined;
      try {
        const deadline = started + timeoutMs;
        while (!answered && ctx.clock.elapsed() < deadline && !options.signal?.aborted) {
          const read = await ctx.inbound.read(peer, pongName(nonce), { maxBytes: MAX_CONTROL_FILE });
          if (read !== undefined && !isRefused(read) && read.version !== rejectedVersion) {
            const opened = openEnvelope(ctx, peer, pongName(nonce), read, { kind: PONG });
            answered = opened.envelope?.body.nonce === nonce;
            if (opened.error) {
              rejectedVersion = read.version;
              if (opened.verdict === 'unauthenticated') {
                throw new DmpError('AUTH', `cannot authenticate replies from ${peer}: wrong relay key?`, {
                  data: { peer },
                  cause: opened.error,
                });
              }
            }
          }
          if (!answered) {
            // The pong's name is known, so look for it directly as well as on events: every
            // 1 ms at first, backing off to 10 ms. On a polled share this keeps our side of the
            // round trip short, and it costs one failed open() per look.
            const lookAgainMs = Math.min(10, 1 + Math.floor((ctx.clock.elapsed() - started) / 20));
            await wakeup.wait(Math.min(lookAgainMs, Math.max(1, deadline - ctx.clock.elapsed())), options.signal);
          }
        }
      } finally {
        await ctx.relay.remove(peer, [pingName(nonce)]);
      }
      if (answered) {
        const reply = { seq, rttMs: ctx.clock.elapsed() - started };
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
