/**
 * `node dist/bench/serve.js [--files N] [--size-mib M] [--runs R] [--narrow] [--get-first]`: a
 * served folder measured with the real commands over a local relay folder (BENCH_DIR chooses
 * where the temp folder goes).
 *
 * - `dftp ls` of a folder of N files (default 10,000): the first listing (the server hashes
 *   every file for its index) and the next ones (size and mtime unchanged: no file is read),
 *   each as the wall time of the whole command, beside the same command on a folder of one file
 *   (what starting a process and one round trip cost).
 * - `dftp get` of one file of M MiB (default 1024) against `dftp send` of the same file with
 *   `dftp receive`, alternated R times (default 2) in the same run: seconds until the client
 *   has the file verified in place. `--narrow` adds a send with the quota a served get may fill
 *   (the default quota less the share kept for answers); `--get-first` gets before sending in
 *   each round.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DEFAULT_QUOTA } from '../src/index.js';
import {
  DFTP,
  installExitHooks,
  MiB,
  makeRandomFile,
  must,
  type Proc,
  run,
  type Setup,
  setup,
  sha256File,
  sleep,
  stopChild,
  stopEverything,
  summarize,
  transfer,
} from './common.js';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at < 0 ? undefined : Number(process.argv[at + 1]);
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}

const FILES = option('files', 10_000);
const SIZE = option('size-mib', 1024) * MiB;
const RUNS = option('runs', 2);
/** Also send with the quota a served get may fill, to tell the two apart. */
const NARROW = process.argv.includes('--narrow');
/** What a served get may fill: the quota less a quarter of it, at most 16 MiB, kept for answers (src/serve/server.ts). */
const NARROW_QUOTA = `${(DEFAULT_QUOTA - Math.min(DEFAULT_QUOTA / 4, 16 * MiB)) / MiB}m`;
/** Get before sending in each round (the write-back of the round before weighs on whoever comes first). */
const GET_FIRST = process.argv.includes('--get-first');

const say = (line: string) => process.stdout.write(`${line}\n`);
const fmt = (values: number[], digits = 2) => {
  const stat = summarize(values);
  return values.length === 1
    ? stat.median.toFixed(digits)
    : `${stat.median.toFixed(digits)} [${stat.min.toFixed(digits)}–${stat.max.toFixed(digits)}]`;
};

/** Runs `dftp ls alice <path> --json` as bob; seconds of wall time, and the entries it printed. */
async function ls(s: Setup, path: string): Promise<{ seconds: number; entries: number }> {
  const started = performance.now();
  const proc = run(DFTP, s.bob, ['ls', 'alice', path, '--json', '--timeout', '300']);
  await must(proc, `dftp ls alice ${path}`);
  return { seconds: (performance.now() - started) / 1000, entries: proc.lines.filter((line) => line !== '').length };
}

/** Runs `dftp get alice <name>` as bob; seconds until its `done` event. */
async function get(s: Setup, name: string, expected: string): Promise<number> {
  const out = join(s.base, `get-${Date.now()}`);
  const started = performance.now();
  const proc: Proc = run(DFTP, s.bob, ['get', 'alice', name, '--out', out, '--json']);
  let doneAt = 0;
  let sha256 = '';
  proc.onLine((line, at) => {
    const event = JSON.parse(line) as { event: string; sha256?: string };
    if (event.event === 'done') {
      doneAt = at;
      sha256 = event.sha256 ?? '';
    }
  });
  await must(proc, `dftp get alice ${name}`);
  if (sha256 !== expected) throw new Error('the file got has another checksum');
  await rm(out, { recursive: true, force: true });
  return (doneAt - started) / 1000;
}

async function main(): Promise<void> {
  installExitHooks();
  const s = await setup();
  try {
    const served = join(s.base, 'served');
    const many = join(served, 'many');
    await mkdir(join(served, 'one'), { recursive: true });
    await mkdir(many, { recursive: true });
    await writeFile(join(served, 'one', 'only.txt'), 'one file\n');
    for (let index = 0; index < FILES; index += 1) {
      await writeFile(join(many, `file-${String(index).padStart(5, '0')}.txt`), `file number ${index}\n`.repeat(20));
    }
    const big = join(served, 'big.bin');
    await makeRandomFile(big, SIZE);
    const expected = await sha256File(big);

    const server = run(DFTP, s.alice, ['serve', served]);
    await sleep(1500);

    const baseline: number[] = [];
    for (let index = 0; index < 3; index += 1) baseline.push((await ls(s, 'one')).seconds);
    const first = await ls(s, 'many');
    if (first.entries !== FILES) throw new Error(`listed ${first.entries} of ${FILES} files`);
    const cached: number[] = [];
    for (let index = 0; index < 3; index += 1) cached.push((await ls(s, 'many')).seconds);
    say(`dftp ls, folder of 1 file (process start + one round trip): ${fmt(baseline)} s`);
    say(`dftp ls, folder of ${FILES} files, first (index built, every file hashed): ${first.seconds.toFixed(2)} s`);
    say(`dftp ls, folder of ${FILES} files, cached (3 runs): ${fmt(cached)} s`);

    const sends: number[] = [];
    const narrowSends: number[] = [];
    const gets: number[] = [];
    for (let index = 0; index < RUNS; index += 1) {
      if (GET_FIRST) gets.push(await get(s, 'big.bin', expected));
      sends.push((await transfer(s, big, SIZE, [], expected)).seconds);
      if (NARROW) narrowSends.push((await transfer(s, big, SIZE, ['--quota', NARROW_QUOTA], expected)).seconds);
      if (!GET_FIRST) gets.push(await get(s, 'big.bin', expected));
    }
    const rate = (seconds: number[]) =>
      fmt(
        seconds.map((value) => SIZE / MiB / value),
        0,
      );
    say(`dftp send + receive, ${SIZE / MiB} MiB (${RUNS} runs): ${fmt(sends)} s, ${rate(sends)} MiB/s`);
    if (NARROW)
      say(
        `dftp send --quota ${NARROW_QUOTA} + receive (${RUNS} runs): ${fmt(narrowSends)} s, ${rate(narrowSends)} MiB/s`,
      );
    say(`dftp get from dftp serve, ${SIZE / MiB} MiB (${RUNS} runs): ${fmt(gets)} s, ${rate(gets)} MiB/s`);
    await stopChild(server.child);
  } finally {
    await stopEverything();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${(error as Error).message}\n`);
  process.exitCode = 1;
});
