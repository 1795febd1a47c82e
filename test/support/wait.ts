/**
 * Waiting in tests that watch real processes and real folders: one `waitFor` for every test file,
 * so that a timeout always reads the same way and says what it waited for.
 */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface WaitOptions {
  /** Milliseconds between two checks (default 10). */
  everyMs?: number;
  /** More context for the timeout message, e.g. the output of the process being watched. */
  describe?: () => string;
}

/**
 * Checks `predicate` every `everyMs` until it holds; throws after `timeoutMs` (default 10 s),
 * naming `what` it waited for.
 */
export async function waitFor(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  options: WaitOptions = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) {
      const context = options.describe ? `\n${options.describe()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${context}`);
    }
    await sleep(options.everyMs ?? 10);
  }
}
