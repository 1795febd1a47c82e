/**
 * Flow control: a peer never holds more than its quota of bytes in its relay folder, measured
 * on disk, across all its local processes (a lock in DMP_HOME serialises the check-and-publish).
 * Room appears when the receivers' acknowledgements let the sender delete files.
 */

import { throwIfAborted } from '../errors.js';
import { withLock } from '../local/lock.js';
import type { NodeComponents } from './node.js';

export type QuotaComponents = Pick<NodeComponents, 'relay' | 'home' | 'clock' | 'quota'>;

export interface WaitForRoom {
  signal?: AbortSignal;
  /** Called once each time publishing has to wait, with the bytes held. */
  onWaiting?: (held: number) => void;
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
  let waiting = false;
  for (;;) {
    throwIfAborted(options.signal);
    const outcome = await withLock(ctx.home.lock('quota'), async () => {
      const held = await ctx.relay.usage();
      if (held + bytes > ctx.quota) return { held };
      return { held, value: await publish() };
    });
    if ('value' in outcome) return outcome.value as T;
    if (!waiting) options.onWaiting?.(outcome.held);
    waiting = true;
    await (options.pause ? options.pause() : ctx.clock.sleep(100, options.signal));
  }
}
