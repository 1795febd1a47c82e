/**
 * `npm run bench` (`-- --quick` for a short version; `-- --only startup,syncthing,nncp` for some
 * rows; `-- --runs 1` for fewer runs per figure): measures dmp on the machine at hand, with the real commands as separate processes over a
 * local relay folder, and through two Syncthing instances on loopback (bench/syncthing-rows.ts).
 * Prints a table and writes bench/results.json. Every figure is the median of several runs, with
 * min and max.
 *
 * Floors measured in the same run on the same file make results comparable across machines:
 * the I/O floor (the file copied twice with plain file copies: into the relay, out of it) and the
 * crypto floor (one pass of AES-128-CBC + HMAC-SHA256 over it, one core).
 */
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  DMP,
  installExitHooks,
  MiB,
  makeRandomFile,
  mb,
  mib,
  must,
  percentile,
  range,
  root,
  run,
  runsOption,
  type Setup,
  sequence,
  setup,
  sha256File,
  stopEverything,
  summarize,
  transfer,
} from './common.js';

const quick = process.argv.includes('--quick');

async function ioFloor(s: Setup, file: string, size: number): Promise<number> {
  const middle = join(s.relay, 'floor.bin');
  const end = join(s.base, 'floor-out.bin');
  const started = performance.now();
  await copyFile(file, middle);
  await copyFile(middle, end);
  const seconds = (performance.now() - started) / 1000;
  await rm(middle);
  await rm(end);
  return size / seconds;
}

async function cryptoFloor(file: string, size: number): Promise<number> {
  const key = randomBytes(16);
  const iv = randomBytes(16);
  const handle = await open(file, 'r');
  const block = Buffer.allocUnsafe(4 * MiB);
  const started = performance.now();
  try {
    for (let offset = 0; offset < size; ) {
      const { bytesRead } = await handle.read(block, 0, block.length, offset);
      const data = block.subarray(0, bytesRead);
      const cipher = createCipheriv('aes-128-cbc', key, iv);
      const encrypted = cipher.update(data);
      cipher.final();
      createHmac('sha256', key).update(encrypted).digest();
      offset += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return size / ((performance.now() - started) / 1000);
}

async function pingLatency(s: Setup, poll: boolean, count: number): Promise<number[]> {
  const pollArgs = poll ? ['--poll', '100'] : [];
  const listener = run(DMP, s.bob, ['listen', ...pollArgs]);
  await new Promise((resolve) => setTimeout(resolve, 500));
  // An interval that is no multiple of the poll interval, so pings do not lock onto its phase.
  const pinger = run(DMP, s.alice, ['ping', 'bob', '-c', String(count), '-i', '0.137', '--json', ...pollArgs]);
  await must(pinger, 'dmp ping');
  listener.child.kill('SIGTERM');
  await listener.exit;
  return pinger.lines
    .map((line) => (JSON.parse(line) as { rttMs?: number }).rttMs)
    .filter((v): v is number => v !== undefined);
}

async function messages(s: Setup, count: number): Promise<number> {
  const text = Array.from({ length: count }, (_, i) => `message ${i + 1}`).join('\n');
  const listener = run(DMP, s.bob, ['listen', '--count', String(count), '--json']);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const started = performance.now();
  const sender = run(DMP, s.alice, ['send', 'bob', '--lines', '--wait', '--timeout', '300'], `${text}\n`);
  await must(listener, 'dmp listen');
  const seconds = (performance.now() - started) / 1000;
  await must(sender, 'dmp send');
  if (listener.lines.length !== count) throw new Error(`listen printed ${listener.lines.length} of ${count}`);
  const left = (await readdir(join(s.relay, 'alice', 'bob'))).filter((name) => name.startsWith('msg-'));
  if (left.length > 0) throw new Error(`${left.length} message files left in the relay`);
  return count / seconds;
}

/** The rows `--only` can pick, in the order they run. */
const ROWS = ['throughput', 'ping', 'messages', 'startup', 'syncthing', 'nncp', 'listen-rss'] as const;
type RowName = (typeof ROWS)[number];

/** `--only a,b` or `--only=a,b`: run just these rows; every row when absent. */
function selectedRows(argv: string[]): Set<RowName> {
  const index = argv.findIndex((arg) => arg === '--only' || arg.startsWith('--only='));
  if (index < 0) return new Set(ROWS);
  const value = argv[index]?.startsWith('--only=') ? argv[index]?.slice('--only='.length) : argv[index + 1];
  const names = (value ?? '').split(',').filter((name) => name !== '');
  const unknown = names.filter((name) => !(ROWS as readonly string[]).includes(name));
  if (names.length === 0 || unknown.length > 0) {
    process.stderr.write(`bench: --only takes a comma-separated list of: ${ROWS.join(', ')}\n`);
    process.exit(2);
  }
  return new Set(names as RowName[]);
}

async function main(): Promise<void> {
  installExitHooks();
  const rows = selectedRows(process.argv);
  const everyRow = rows.size === ROWS.length;
  const runsGiven = runsOption(process.argv);
  const runs = runsGiven ?? (quick ? 2 : 3);
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    process.stderr.write(`${line}\n`);
  };
  const resultsPath = join(root, 'bench', 'results.json');
  // A partial run (--only) updates its own sections and keeps the others from the last run.
  const results: Record<string, unknown> = everyRow
    ? {}
    : (JSON.parse(await readFile(resultsPath, 'utf8').catch(() => '{}')) as Record<string, unknown>);
  results.machine = { cpus: (await import('node:os')).cpus().length, node: process.version };
  if (everyRow) results.quick = quick;
  const measuredAt = new Date().toISOString();
  try {
    if (rows.has('throughput') || rows.has('ping') || rows.has('messages')) {
      const s = await setup();
      try {
        if (rows.has('throughput')) results.throughput = await throughputRows(s, runs, say);
        if (rows.has('ping')) results.latency = await pingRows(s, say);
        if (rows.has('messages')) results.messages = await messageRow(s, runs, say);
      } finally {
        await s.remove();
      }
    }
    // The newer rows stand alone: one that fails says why in the table, and the others still run.
    const failed: string[] = [];
    const standalone = async (row: RowName, key: string, measure: () => Promise<Record<string, unknown>>) => {
      if (!rows.has(row)) return;
      try {
        results[key] = { quick, measuredAt, ...(await measure()) };
      } catch (error) {
        failed.push(row);
        say(`${row}: FAILED: ${(error as Error).message.split('\n')[0]}`);
        results[key] = { quick, measuredAt, error: (error as Error).message };
        await stopEverything();
      }
    };
    await standalone('startup', 'startup', async () =>
      (await import('./startup-row.js')).startupRow({ quick, runs: runsGiven, say }),
    );
    await standalone('syncthing', 'syncthing', async () =>
      (await import('./syncthing-rows.js')).syncthingRows({ quick, runs: runsGiven, say }),
    );
    await standalone('nncp', 'nncp', async () =>
      (await import('./nncp-row.js')).nncpRow({ quick, runs: runsGiven, say }),
    );
    await standalone('listen-rss', 'listenRss', async () =>
      (await import('./listen-rss.js')).listenRssRow({ quick, say }),
    );
    if (failed.length > 0) process.exitCode = 1;
  } finally {
    await stopEverything();
  }
  await mkdir(join(root, 'bench'), { recursive: true });
  await writeFile(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(
    `\n${lines.join('\n')}\n\n(MB = 10^6 bytes; median [min–max] of ${runs} runs unless a row says otherwise; written to bench/results.json)\n`,
  );
}

async function throughputRows(s: Setup, runs: number, say: (line: string) => void): Promise<unknown[]> {
  const sizes = quick ? [64 * MiB] : [256 * MiB, 1024 * MiB];
  const configs: { name: string; args: string[] }[] = [
    { name: 'defaults', args: [] },
    { name: '-bs 1m', args: ['-bs', '1m'] },
    { name: '-bs 16m', args: ['-bs', '16m'] },
  ];
  const throughput: Record<string, unknown>[] = [];
  for (const size of sizes) {
    const file = join(s.base, `random-${size}.bin`);
    await makeRandomFile(file, size);
    const expected = await sha256File(file);
    const io = summarize(await sequence(runs, () => ioFloor(s, file, size)));
    const crypto = summarize(await sequence(runs, () => cryptoFloor(file, size)));
    say(`${mib(size)} MiB file: I/O floor ${range(io, mb)} MB/s, crypto floor ${range(crypto, mb)} MB/s`);
    for (const config of configs) {
      const samples = await sequence(runs, () => transfer(s, file, size, config.args, expected));
      const rate = summarize(samples.map((sample) => size / sample.seconds));
      const row = {
        size,
        config: config.name,
        mbPerSecond: rate,
        ioFloorRatio: rate.median / io.median,
        cryptoFloorRatio: rate.median / crypto.median,
        senderPeakRss: summarize(samples.map((sample) => sample.senderRss)),
        receiverPeakRss: summarize(samples.map((sample) => sample.receiverRss)),
        relayOverhead: summarize(samples.map((sample) => sample.relayOverhead)),
        peakHeld: summarize(samples.map((sample) => sample.peakHeld)),
        ioFloor: io,
        cryptoFloor: crypto,
      };
      throughput.push(row);
      say(
        `  ${config.name.padEnd(9)} ${range(rate, mb).padEnd(16)} MB/s  ` +
          `${(row.ioFloorRatio * 100).toFixed(0)}% of I/O, ${(row.cryptoFloorRatio * 100).toFixed(0)}% of crypto floor; ` +
          `RSS sender ${range(row.senderPeakRss, mib)} MiB, receiver ${range(row.receiverPeakRss, mib)} MiB; ` +
          `relay ${row.relayOverhead.median.toFixed(4)}x, peak held ${mib(row.peakHeld.max)} MiB`,
      );
    }
    await rm(file);
  }
  return throughput;
}

async function pingRows(s: Setup, say: (line: string) => void): Promise<Record<string, unknown>> {
  const pingCount = quick ? 20 : 100;
  const latency: Record<string, unknown> = {};
  for (const poll of [false, true]) {
    const rtts = await pingLatency(s, poll, pingCount);
    const entry = {
      p50: percentile(rtts, 50),
      p99: percentile(rtts, 99),
      min: Math.min(...rtts),
      max: Math.max(...rtts),
      count: rtts.length,
    };
    latency[poll ? 'poll100' : 'native'] = entry;
    say(
      `ping ${poll ? '--poll 100' : 'native    '}: p50 ${entry.p50.toFixed(2)} ms, p99 ${entry.p99.toFixed(2)} ms (min ${entry.min.toFixed(2)}, max ${entry.max.toFixed(2)}, n=${entry.count})`,
    );
  }
  return latency;
}

async function messageRow(s: Setup, runs: number, say: (line: string) => void): Promise<Record<string, unknown>> {
  const messageCount = quick ? 2000 : 10_000;
  const rate = summarize(await sequence(runs, () => messages(s, messageCount)));
  say(`messages: ${messageCount} with --lines -> listen: ${range(rate, (v) => v.toFixed(0))} msg/s, relay emptied`);
  return { count: messageCount, perSecond: rate };
}

main().catch(async (error: Error) => {
  process.stderr.write(`bench failed: ${error.message}\n`);
  process.exitCode = 1;
  await stopEverything();
});
