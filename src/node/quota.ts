/**
 * Flow control: a peer never holds more than its quota of bytes in its relay folder, measured
 * on disk, across all its local processes (a lock in DMP_HOME serialises the check-and-publish).
 * Room appears when the receivers' acknowledgements let the sender delete files.
 *
 * A relay whose disk is full is a pause too, not a failure: publishing waits, with a back-off,
 * until space returns (receivers catching up let senders delete, or the user frees some).
 */

import { type DmpError, isDmpError, throwIfAborted } from '../errors.js';
import { withLock } from '../local/lock.js';
import type { NodeComponents } from './node.js';

export type QuotaComponents = Pick<NodeComponents, 'relay' | 'home' | 'clock' | 'quota'>;

/** Retries of a publish that met a full relay: after 1 s, doubling up to 30 s. */
const FIRST_FULL_WAIT_MS = 1000;
const LONGEST_FULL_WAIT_MS = 30_000;

/** Why publishing waits: the peer's quota is full, or the disk holding the relay is. */
export type WaitReason = 'quota' | 'relay-full';

export interface WaitForRoom {
  signal?: AbortSignal;
  /** Called once each time publishing starts to wait (or waits for another reason), with the bytes held. */
  onWaiting?: (held: number, reason: WaitReason) => void;
  /** Waits for something that may free room (an ack); default: sleep 100 ms. */
  pause?: () => Promise<void>;
}

/**
 * Runs `publish` once `bytes` more fit under the quota, holding the quota lock so no other local
 * process can fill the same room. Returns what `publish` returned.
 */
export async function publishWithinQuota<T>(
  ctx: QuotaComponents,
  bytes: number,
  publish: () => Promise<T>,
  options: WaitForRoom = {},
): Promise<T> {
  let waiting: WaitReason | undefined;
  let fullMs = 0;
  for (;;) {
    throwIfAborted(options.signal);
    const outcome: { held: number; value?: T; full?: DmpError } = await withLock(ctx.home.lock('quota'), async () => {
      const held = await ctx.relay.usage();
      if (held + bytes > ctx.quota) return { held };
      try {
        return { held, value: await publish() };
      } catch (error) {
        if (isDmpError(error, 'DISK_FULL')) return { held, full: error };
        throw error;
      }
    });
    if (outcome.full === undefined && 'value' in outcome) return outcome.value as T;
    const reason: WaitReason = outcome.full ? 'relay-full' : 'quota';
    if (waiting !== reason) options.onWaiting?.(outcome.held, reason);
    waiting = reason;
    if (reason === 'relay-full') {
      fullMs = Math.min(LONGEST_FULL_WAIT_MS, Math.max(FIRST_FULL_WAIT_MS, fullMs * 2));
      await ctx.clock.sleep(fullMs, options.signal);
      // Acting on acknowledgements meanwhile may free the very space we wait for.
      if (options.pause) await options.pause();
      continue;
    }
    fullMs = 0;
    await (options.pause ? options.pause() : ctx.clock.sleep(100, options.signal));
  }
}
