import type { Clock } from '../clock.js';

const FIRST_MS = 1000;
const LONGEST_MS = 60_000;

/**
 * When to publish again a file the other side seems not to have seen (an ack or a status that
 * may have reached it damaged): after 1 s, then 2, 4, ... up to 60 s, and back to 1 s whenever
 * the content changes. A single glitch heals in a second; a peer that is simply away costs one
 * small rewrite a minute.
 *
 * Never sooner than twice the round trip seen (`roundTrip`), nor than `firstMs`: through a sync
 * engine that waits for a file to settle before it carries it (Syncthing picks up a file once
 * it has not changed for half a second), a copy published again before the first one was
 * carried only delays it, by a second or more.
 */
export class RepeatSchedule {
  private lastAt = 0;
  private readonly firstMs: number;
  private delayMs: number;
  private floorMs: number;

  constructor(
    private readonly clock: Clock,
    options: { firstMs?: number } = {},
  ) {
    this.firstMs = options.firstMs ?? FIRST_MS;
    this.delayMs = this.firstMs;
    this.floorMs = this.firstMs;
  }

  get due(): boolean {
    return this.clock.now() - this.lastAt >= Math.max(this.delayMs, this.floorMs);
  }

  /** Call after every publish; `changed` says whether the content was new. */
  published(changed: boolean): void {
    this.delayMs = changed ? this.firstMs : Math.min(LONGEST_MS, this.delayMs * 2);
    this.lastAt = this.clock.now();
  }

  /** The other side was seen to act on a publish `ms` after it: repeat no sooner than twice that. */
  roundTrip(ms: number): void {
    this.floorMs = Math.min(LONGEST_MS, Math.max(this.firstMs, 2 * ms));
  }
}
