import { DmpError } from './errors.js';

/**
 * Time is injected so that ordering, timeout and retry logic can be tested instantly and
 * deterministically with a manual clock.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or rejects with an ABORTED DmpError when the signal fires. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new DmpError('ABORTED', 'cancelled', { cause: signal.reason }));
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(new DmpError('ABORTED', 'cancelled', { cause: signal?.reason }));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};
