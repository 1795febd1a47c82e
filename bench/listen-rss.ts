/**
 * Memory of `dmp listen` when a backlog is waiting (issue 12): 100,000 valid messages are queued
 * in the relay with `dmp send bob --lines` while no listener runs, then `dmp listen --json`
 * starts and prints them. The figure is the listener's VmHWM (peak resident set, from /proc)
 * read the moment its last message is printed; the target is under 150 MB. With --quick the
 * backlog is smaller and the target is not judged.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DMP, finishOrKill, must, type RowOptions, run, secs, setup, stopChild, verdict } from './common.js';

const TARGET_BYTES = 150e6;
const FULL_COUNT = 100_000;
/** Messages count against the sender's quota like chunks do; the backlog must fit at once. */
const QUOTA = 1024 * 1024 * 1024;
const TIMEOUT_MS = 900_000;

export async function listenRssRow(options: RowOptions): Promise<Record<string, unknown>> {
  const { quick, say } = options;
  const count = quick ? 20_000 : FULL_COUNT;
  const s = await setup();
  try {
    // `dmp send` takes no --quota: the quota comes from alice's config, as `dmp init` wrote it.
    const configPath = join(s.alice, 'config.json');
    const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
    await writeFile(configPath, `${JSON.stringify({ ...config, quota: QUOTA }, null, 2)}\n`);

    const lines = Array.from({ length: count }, (_, i) => String(i + 1)).join('\n');
    const sendStarted = performance.now();
    const sender = run(DMP, s.alice, ['send', 'bob', '--lines'], `${lines}\n`, { keepLines: false });
    await finishOrKill([sender], 'dmp send --lines', TIMEOUT_MS);
    await must(sender, 'dmp send --lines');
    const sendSeconds = (performance.now() - sendStarted) / 1000;
    const waiting = (await readdir(join(s.relay, 'alice', 'bob'))).filter((name) => name.startsWith('msg-')).length;
    if (waiting !== count) throw new Error(`${waiting} of ${count} messages waiting in the relay`);

    const started = performance.now();
    const listener = run(DMP, s.bob, ['listen', '--json'], undefined, { keepLines: false, quiet: true });
    let printed = 0;
    let outOfOrder = 0;
    let lastAt = 0;
    let peakAtLast = 0;
    const all = new Promise<void>((resolve) => {
      listener.onLine((line, at) => {
        printed += 1;
        if ((JSON.parse(line) as { text?: string }).text !== String(printed)) outOfOrder += 1;
        if (printed === count) {
          lastAt = at;
          // Read while the process still runs: VmHWM is gone with it.
          void listener.readPeakRss().then((peak) => {
            peakAtLast = peak;
            resolve();
          });
        }
      });
    });
    const outcome = await Promise.race([
      all.then(() => 'printed' as const),
      listener.exit.then(() => 'exited' as const),
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), TIMEOUT_MS).unref()),
    ]);
    await stopChild(listener.child);
    if (outcome !== 'printed') {
      throw new Error(
        `dmp listen ${outcome === 'exited' ? 'exited' : 'timed out'} after printing ${printed} of ${count}`,
      );
    }
    if (outOfOrder > 0) throw new Error(`dmp listen printed ${outOfOrder} messages out of order or changed`);
    const seconds = (lastAt - started) / 1000;
    const peak = Math.max(peakAtLast, listener.peakRss());
    const met = quick ? null : peak < TARGET_BYTES;
    const judged = met === null ? `target < 150 MB is for ${FULL_COUNT.toLocaleString('en')}` : verdict(met);
    say(
      `dmp listen with ${count.toLocaleString('en')} messages waiting: peak RSS ${(peak / 1e6).toFixed(0)} MB ` +
        `(${judged}); all printed in ${secs(seconds)} s (${(count / seconds).toFixed(0)} msg/s); ` +
        `queueing them with send --lines took ${secs(sendSeconds)} s`,
    );
    return {
      count,
      peakRss: peak,
      seconds,
      perSecond: count / seconds,
      sendSeconds,
      senderPeakRss: sender.peakRss(),
      target: TARGET_BYTES,
      met,
    };
  } finally {
    await s.remove();
  }
}
