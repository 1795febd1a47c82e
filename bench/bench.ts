/**
 * `npm run bench` (`-- --quick` for a short version): measures dmp on the machine at hand, with
 * the real commands as separate processes over a local relay folder. Prints a table and writes
 * bench/results.json. Every figure is the median of several runs, with min and max.
 *
 * Floors measured in the same run on the same file make results comparable across machines:
 * the I/O floor (the file copied twice with plain file copies: into the relay, out of it) and the
 * crypto floor (one pass of AES-128-CBC + HMAC-SHA256 over it, one core).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const root = new URL('../..', import.meta.url).pathname;
const DMP = join(root, 'dist', 'src', 'cli', 'dmp.js');
const DFTP = join(root, 'dist', 'src', 'cli', 'dftp.js');
const MiB = 1024 * 1024;
const quick = process.argv.includes('--quick');

interface Stat {
  median: number;
  min: number;
  max: number;
  runs: number;
}

function summarize(values: number[]): Stat {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return { median, min: sorted[0] ?? 0, max: sorted.at(-1) ?? 0, runs: values.length };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

interface Proc {
  child: ChildProcess;
  lines: string[];
  exit: Promise<number>;
  /** Peak resident set (VmHWM), bytes, as last read from /proc. */
  peakRss: () => number;
  onLine: (fn: (line: string, at: number) => void) => void;
}

function run(bin: string, home: string, args: string[], input?: string): Proc {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, DMP_HOME: home },
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const listeners: ((line: string, at: number) => void)[] = [];
  let buffered = '';
  child.stdout?.on('data', (data: Buffer) => {
    const at = performance.now();
    buffered += data.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      for (const fn of listeners) fn(line, at);
    }
  });
  let stderr = '';
  child.stderr?.on('data', (data: Buffer) => {
    stderr += data.toString('utf8');
  });
  let peak = 0;
  const sampler = setInterval(() => {
    void readFile(`/proc/${child.pid}/status`, 'utf8').then(
      (text) => {
        const match = /VmHWM:\s+(\d+) kB/.exec(text);
        if (match) peak = Math.max(peak, Number(match[1]) * 1024);
      },
      () => {},
    );
  }, 50);
  const exit = new Promise<number>((resolve) =>
    child.on('exit', (code) => {
      clearInterval(sampler);
      if (code !== 0)
        process.stderr.write(`bench: ${args.join(' ')} exited ${code}: ${stderr.trim().split('\n').at(-1)}\n`);
      resolve(code ?? 1);
    }),
  );
  if (input !== undefined) child.stdin?.end(input);
  return { child, lines, exit, peakRss: () => peak, onLine: (fn) => listeners.push(fn) };
}

async function must(proc: Proc, what: string): Promise<void> {
  if ((await proc.exit) !== 0) throw new Error(`${what} failed`);
}

async function makeRandomFile(path: string, size: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    for (let done = 0; done < size; ) {
      const block = randomBytes(Math.min(16 * MiB, size - done));
      await handle.write(block);
      done += block.length;
    }
  } finally {
    await handle.close();
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await folderBytes(path);
    else total += (await stat(path).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

interface Setup {
  base: string;
  relay: string;
  alice: string;
  bob: string;
}

async function setup(): Promise<Setup> {
  const base = await mkdtemp(join(process.env.BENCH_DIR ?? tmpdir(), 'dmp-bench-'));
  const relay = join(base, 'relay');
  await mkdir(relay);
  const alice = join(base, 'alice');
  const bob = join(base, 'bob');
  const init = run(DMP, alice, ['init', '--relay', relay, '--id', 'alice']);
  await must(init, 'init alice');
  const key = init.lines[0]?.trim() ?? '';
  await must(run(DMP, bob, ['init', '--relay', relay, '--id', 'bob', '--key', key]), 'init bob');
  return { base, relay, alice, bob };
}

interface TransferSample {
  seconds: number;
  senderRss: number;
  receiverRss: number;
  relayOverhead: number;
  peakHeld: number;
}

async function transfer(
  s: Setup,
  file: string,
  size: number,
  extra: string[],
  expected: string,
): Promise<TransferSample> {
  const out = join(s.base, `out-${randomBytes(4).toString('hex')}`);
  const receiver = run(DFTP, s.bob, ['receive', '--out', out, '--count', '1', '--json']);
  // Let the receiver start watching before the clock starts.
  await new Promise((resolve) => setTimeout(resolve, 300));
  let doneAt = 0;
  let received = '';
  receiver.onLine((line, at) => {
    const event = JSON.parse(line) as { event: string; sha256?: string };
    if (event.event === 'done') {
      doneAt = at;
      received = event.sha256 ?? '';
    }
  });
  let peakHeld = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peakHeld = Math.max(peakHeld, await folderBytes(join(s.relay, 'alice')));
      // Every 25 ms: often enough to catch the peak, rare enough not to slow what it measures.
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  })();
  const started = performance.now();
  const sender = run(DFTP, s.alice, ['send', 'bob', file, '--json', ...extra]);
  let relayBytes = 0;
  sender.onLine((line) => {
    const event = JSON.parse(line) as { event: string; relayBytes?: number };
    if (event.event === 'done') relayBytes = event.relayBytes ?? 0;
  });
  await must(sender, 'dftp send');
  await must(receiver, 'dftp receive');
  sampling = false;
  await sampler;
  if (received !== expected) throw new Error('received file has another checksum');
  await rm(out, { recursive: true, force: true });
  return {
    seconds: (doneAt - started) / 1000,
    senderRss: sender.peakRss(),
    receiverRss: receiver.peakRss(),
    relayOverhead: relayBytes / size,
    peakHeld,
  };
}

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

const mb = (bytesPerSecond: number) => (bytesPerSecond / 1e6).toFixed(0);
const mib = (bytes: number) => (bytes / MiB).toFixed(1);
const range = (stat: Stat, fmt: (v: number) => string) => `${fmt(stat.median)} [${fmt(stat.min)}–${fmt(stat.max)}]`;

async function main(): Promise<void> {
  const runs = quick ? 2 : 3;
  const sizes = quick ? [64 * MiB] : [256 * MiB, 1024 * MiB];
  const configs: { name: string; args: string[] }[] = [
    { name: 'defaults', args: [] },
    { name: '-bs 1m', args: ['-bs', '1m'] },
    { name: '-bs 16m', args: ['-bs', '16m'] },
  ];
  const s = await setup();
  const results: Record<string, unknown> = {
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
    quick,
  };
  const lines: string[] = [];
  try {
    const throughput: Record<string, unknown>[] = [];
    for (const size of sizes) {
      const file = join(s.base, `random-${size}.bin`);
      await makeRandomFile(file, size);
      const expected = await sha256File(file);
      const io = summarize(await sequence(runs, () => ioFloor(s, file, size)));
      const crypto = summarize(await sequence(runs, () => cryptoFloor(file, size)));
      lines.push(`${mib(size)} MiB file: I/O floor ${range(io, mb)} MB/s, crypto floor ${range(crypto, mb)} MB/s`);
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
        lines.push(
          `  ${config.name.padEnd(9)} ${range(rate, mb).padEnd(16)} MB/s  ` +
            `${(row.ioFloorRatio * 100).toFixed(0)}% of I/O, ${(row.cryptoFloorRatio * 100).toFixed(0)}% of crypto floor; ` +
            `RSS sender ${range(row.senderPeakRss, mib)} MiB, receiver ${range(row.receiverPeakRss, mib)} MiB; ` +
            `relay ${row.relayOverhead.median.toFixed(4)}x, peak held ${mib(row.peakHeld.max)} MiB`,
        );
        process.stderr.write(`${lines.at(-1)}\n`);
      }
      await rm(file);
    }
    results.throughput = throughput;

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
      lines.push(
        `ping ${poll ? '--poll 100' : 'native    '}: p50 ${entry.p50.toFixed(2)} ms, p99 ${entry.p99.toFixed(2)} ms (min ${entry.min.toFixed(2)}, max ${entry.max.toFixed(2)}, n=${entry.count})`,
      );
      process.stderr.write(`${lines.at(-1)}\n`);
    }
    results.latency = latency;

    const messageCount = quick ? 2000 : 10_000;
    const rate = summarize(await sequence(runs, () => messages(s, messageCount)));
    results.messages = { count: messageCount, perSecond: rate };
    lines.push(
      `messages: ${messageCount} with --lines -> listen: ${range(rate, (v) => v.toFixed(0))} msg/s, relay emptied`,
    );
    process.stderr.write(`${lines.at(-1)}\n`);
  } finally {
    await rm(s.base, { recursive: true, force: true });
  }
  await mkdir(join(root, 'bench'), { recursive: true });
  await writeFile(join(root, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(
    `\n${lines.join('\n')}\n\n(MB = 10^6 bytes; median [min–max] of ${quick ? 2 : 3} runs; written to bench/results.json)\n`,
  );
}

async function sequence<T>(count: number, fn: () => Promise<T>): Promise<T[]> {
  const values: T[] = [];
  for (let i = 0; i < count; i += 1) values.push(await fn());
  return values;
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.message}\n`);
  process.exitCode = 1;
});
