import type { Clock } from '../clock.js';

const FIRST_MS = 1000;
const LONGEST_MS = 60_000;

/**
 * When to publish again a file the other side seems not to have seen (an ack or a status that
 * may have reached it damaged): after 1 s, then 2, 4, ... up to 60 s, and back to 1 s whenever
 * the content changes. A single glitch heals in a second; a peer that is simply away costs one
 * small rewrite a minute.
 */
export class RepeatSchedule {
  private lastAt = 0;
  private delayMs = FIRST_MS;

  constructor(private readonly clock: Clock) {}

  get due(): boolean {
    return this.clock.now() - this.lastAt >= this.delayMs;
  }

  /** Call after every publish; `changed` says whether the content was new. */
  published(changed: boolean): void {
    this.delayMs = changed ? FIRST_MS : Math.min(LONGEST_MS, this.delayMs * 2);
    this.lastAt = this.clock.now();
  }
}
