/**
 * Turns relay change events into wake-ups. Each consumer gets a Wakeup that says "something you
 * care about may have changed"; consumers then list the folder. Events only ever cause a look;
 * the files are the truth, so a missed or duplicated event costs at most a rescan interval.
 */
import type { Clock } from '../clock.js';
import type { RelayChange, RelayStorage } from '../relay/storage.js';

export type ChangeFilter = (change: RelayChange) => boolean;

export class Wakeup {
  private dirty = true;
  private resolve: (() => void) | undefined;

  constructor(private readonly clock: Clock) {}

  /** Wakes the consumer if it waits, or marks it so that its next wait returns at once. */
  poke(): void {
    const resolve = this.resolve;
    this.resolve = undefined;
    if (resolve) resolve();
    else this.dirty = true;
  }

  /**
   * Resolves at once when poked since the last call, else on the next poke or after `timeoutMs`.
   * Never rejects: an abort simply ends the wait, and the caller checks its signal.
   */
  async wait(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.dirty || signal?.aborted) {
      this.dirty = false;
      return;
    }
    const poked = new Promise<void>((resolve) => {
      this.resolve = resolve;
    });
    const inner = new AbortController();
    const onAbort = () => inner.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) inner.abort();
    try {
      await Promise.race([poked, this.clock.sleep(timeoutMs, inner.signal).catch(() => {})]);
    } finally {
      inner.abort();
      signal?.removeEventListener('abort', onAbort);
      this.resolve = undefined;
    }
  }
}

export class ChangeFeed {
  private readonly subscribers = new Set<{ filter: ChangeFilter; wakeup: Wakeup }>();
  private readonly listeners = new Set<(change: RelayChange | null) => void>();

  constructor(
    relay: RelayStorage,
    private readonly clock: Clock,
    signal: AbortSignal,
  ) {
    relay.watch({ signal, onChange: (change) => this.announce(change) });
  }

  /**
   * Tells everyone of a change as the relay would: for a service that wants another look at a
   * folder later without any event to bring it (a file it found missing may only be being
   * replaced).
   */
  announce(change: RelayChange | null): void {
    for (const listener of this.listeners) listener(change);
    for (const subscriber of this.subscribers) {
      if (change === null || subscriber.filter(change)) subscriber.wakeup.poke();
    }
  }

  /**
   * Hears every change as it is reported, and every periodic rescan as `null`; returns the
   * unsubscribe function. For bookkeeping that must forget what a change may have replaced.
   */
  listen(listener: (change: RelayChange | null) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  subscribe(filter: ChangeFilter): { wakeup: Wakeup; unsubscribe: () => void } {
    const entry = { filter, wakeup: new Wakeup(this.clock) };
    this.subscribers.add(entry);
    return { wakeup: entry.wakeup, unsubscribe: () => this.subscribers.delete(entry) };
  }
}
