/**
 * Start-up (issue 14): what a short command pays before and besides its work. `dmp send bob hi`
 * on a local relay, run one after another, from spawn to exit; and `dftp send` of a 1 KiB file,
 * from spawn until its offer is in the relay (the moment a sync engine can start carrying it).
 * Bare `node -e 0` in the same run is the floor no command can go below.
 */
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  DFTP,
  DMP,
  must,
  type RowOptions,
  range,
  run,
  runCommand,
  type Setup,
  sequence,
  setup,
  sleep,
  stopChild,
  summarize,
} from './common.js';

const ms = (seconds: number) => (seconds * 1000).toFixed(0);

/** Seconds from spawn to exit of one process. */
async function wallTime(start: () => ReturnType<typeof run>, what: string): Promise<number> {
  const started = performance.now();
  const proc = start();
  await must(proc, what);
  return (proc.exitedAt() - started) / 1000;
}

/** Seconds from spawning `dftp send` until its offer is in the relay; the send is then stopped. */
async function timeToOffer(s: Setup, file: string): Promise<number> {
  const folder = join(s.relay, 'alice', 'bob');
  const started = performance.now();
  const sender = run(DFTP, s.alice, ['send', 'bob', file, '--json'], undefined, { quiet: true });
  let seconds = 0;
  try {
    for (;;) {
      const names = await readdir(folder).catch(() => [] as string[]);
      if (names.some((name) => name.startsWith('offer-'))) {
        seconds = (performance.now() - started) / 1000;
        break;
      }
      if (sender.child.exitCode !== null) throw new Error(`dftp send exited before its offer: ${sender.stderr()}`);
      await sleep(1);
    }
  } finally {
    await stopChild(sender.child);
  }
  // No receiver runs: take the transfer back, so the next run starts a fresh one.
  await must(run(DFTP, s.alice, ['cancel', file]), 'dftp cancel');
  return seconds;
}

export async function startupRow(options: RowOptions): Promise<Record<string, unknown>> {
  const { quick, say } = options;
  const runs = options.runs ?? (quick ? 5 : 15);
  const s = await setup();
  try {
    const file = join(s.base, 'one-kib.bin');
    await writeFile(file, Buffer.alloc(1024, 7));
    const node = summarize(
      await sequence(runs, () => wallTime(() => runCommand(process.execPath, ['-e', '0']), 'node -e 0')),
    );
    const send = summarize(
      await sequence(runs, () => wallTime(() => run(DMP, s.alice, ['send', 'bob', 'hi']), 'dmp send')),
    );
    const offer = summarize(await sequence(runs, () => timeToOffer(s, file)));
    say(`start-up, median [min–max] of ${runs}:`);
    say(`  node -e 0                         ${range(node, ms)} ms`);
    say(`  dmp send bob hi (spawn to exit)   ${range(send, ms)} ms`);
    say(`  dftp send: spawn to offer in relay ${range(offer, ms)} ms`);
    return { runs, node, dmpSend: send, dftpOffer: offer };
  } finally {
    await rm(join(s.base, 'one-kib.bin'), { force: true });
    await s.remove();
  }
}
