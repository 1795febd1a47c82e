import { performance } from 'node:perf_hooks';
import { DmpError } from './errors.js';

/** Cancels a timer; calling it after the timer fired, or twice, does nothing. */
export type Cancel = () => void;

/**
 * Time is injected: every timeout, retry, back-off, rescan and repeat in the library goes
 * through a Clock, so tests run them on a ManualClock, instantly and replayably.
 */
export interface Clock {
  /** Milliseconds since the epoch (wall time: stored, compared with other machines' files). */
  now(): number;
  /** Milliseconds on a monotonic clock with sub-millisecond precision, for measuring durations. */
  elapsed(): number;
  /** Resolves after `ms`, or rejects with an ABORTED DmpError when the signal fires. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `fn` once after `ms`. */
  timeout(ms: number, fn: () => void): Cancel;
}

/** Calls `fn` every `ms` until the signal fires (the first call after `ms`). */
export function every(clock: Clock, ms: number, fn: () => void, signal: AbortSignal): void {
  if (signal.aborted) return;
  let cancel: Cancel = () => {};
  const tick = () => {
    if (signal.aborted) return;
    cancel = clock.timeout(ms, tick);
    fn();
  };
  cancel = clock.timeout(ms, tick);
  signal.addEventListener('abort', () => cancel(), { once: true });
}

/** A sleep built on `timeout`, shared by every clock. */
function sleepWith(timeout: Clock['timeout'], ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DmpError('ABORTED', 'cancelled', { cause: signal.reason }));
      return;
    }
    const onAbort = () => {
      cancel();
      reject(new DmpError('ABORTED', 'cancelled', { cause: signal?.reason }));
    };
    const cancel = timeout(ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function systemTimeout(ms: number, fn: () => void): Cancel {
  const timer = setTimeout(fn, ms);
  return () => clearTimeout(timer);
}

export const systemClock: Clock = {
  now: () => Date.now(),
  elapsed: () => performance.now(),
  sleep: (ms, signal) => sleepWith(systemTimeout, ms, signal),
  timeout: systemTimeout,
};

interface ManualTimer {
  at: number;
  order: number;
  fn: () => void;
}

/**
 * A clock for tests. Time moves only when told: `advance(ms)` fires the timers due in order,
 * and `run()` moves it on by itself whenever the process has nothing else to do (no file
 * operation in flight, no callback queued), jumping straight to the next timer. A simulated-sync
 * suite then takes as long as its computation, not as long as its delays, and a seed replays the
 * same delays and the same order of timers.
 */
export class ManualClock implements Clock {
  private time: number;
  private readonly start: number;
  private readonly timers: ManualTimer[] = [];
  private order = 0;
  private running = false;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.time = start;
    this.start = start;
  }

  now(): number {
    return this.time;
  }

  elapsed(): number {
    return this.time - this.start;
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.length;
  }

  timeout(ms: number, fn: () => void): Cancel {
    const timer: ManualTimer = { at: this.time + Math.max(0, ms), order: this.order++, fn };
    // Kept sorted by (at, order): equal times fire in the order they were set.
    let index = this.timers.length;
    while (index > 0 && this.later(this.timers[index - 1]!, timer)) index -= 1;
    this.timers.splice(index, 0, timer);
    return () => {
      const at = this.timers.indexOf(timer);
      if (at >= 0) this.timers.splice(at, 1);
    };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepWith((delay, fn) => this.timeout(delay, fn), ms, signal);
  }

  private later(a: ManualTimer, b: ManualTimer): boolean {
    return a.at > b.at || (a.at === b.at && a.order > b.order);
  }

  /** Moves time forward by `ms`, firing every timer that falls due, each after the previous settled. */
  async advance(ms: number): Promise<void> {
    const until = this.time + ms;
    for (;;) {
      await settle();
      const next = this.timers[0];
      if (!next || next.at > until) break;
      this.fireNext();
    }
    this.time = until;
  }

  /**
   * Moves time on by itself until `stop()` is called: whenever nothing else can run, the next
   * timer fires. Returns stop.
   */
  run(): () => void {
    if (this.running) throw new Error('ManualClock.run() is already running');
    this.running = true;
    void (async () => {
      while (this.running) {
        await settle();
        if (!this.running) break;
        if (this.timers.length === 0) {
          // Nothing scheduled: something real (a worker thread, a child process) may still
          // answer. Look again shortly without spinning.
          await new Promise((resolve) => setTimeout(resolve, 1));
          continue;
        }
        this.fireNext();
      }
    })();
    return () => {
      this.running = false;
    };
  }

  private fireNext(): void {
    const timer = this.timers.shift();
    if (!timer) return;
    this.time = Math.max(this.time, timer.at);
    timer.fn();
  }
}

/** Resources that mean a file operation is still on its way back to this thread. */
const IO_IN_FLIGHT = /^(FSReq|FileHandleCloseReq|CloseReq)/;

/** Resolves once queued callbacks have run and no file operation is in flight. */
async function settle(): Promise<void> {
  for (let quiet = 0; quiet < 3; ) {
    await new Promise((resolve) => setImmediate(resolve));
    if (process.getActiveResourcesInfo().some((name) => IO_IN_FLIGHT.test(name))) quiet = 0;
    else quiet += 1;
  }
}
