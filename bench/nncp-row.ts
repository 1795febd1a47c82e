/**
 * dftp against NNCP's own encrypted store-and-forward pipeline on a local folder, same file, same
 * run: for NNCP `nncp-file` (encrypt into alice's spool), `nncp-xfer -tx` (copy the packet into a
 * transfer folder), `nncp-xfer -rx` (into bob's spool), `nncp-toss` (decrypt into bob's incoming
 * folder); for dftp `dftp send` and `dftp receive --count 1` through a local relay. Issue 14's
 * target: dftp in at most half NNCP's wall time. Debian's `nncp` package provides the commands;
 * without it the row says so and the bench goes on.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  MiB,
  makeRandomFile,
  mib,
  must,
  type RowOptions,
  range,
  runCommand,
  secs,
  sequence,
  setup,
  sha256File,
  summarize,
  transfer,
  verdict,
} from './common.js';

const TARGET = 0.5;

function nncpVersion(): string | undefined {
  const result = spawnSync('nncp-cfgnew', ['-version'], { encoding: 'utf8', timeout: 30_000 });
  if (result.error || result.status !== 0) return undefined;
  return /NNCP version (\S+)/.exec(result.stdout)?.[1] ?? 'unknown';
}

interface NodeKeys {
  id: string;
  exchpub: string;
  exchprv: string;
  signpub: string;
  signprv: string;
  noisepub: string;
  noiseprv: string;
}

/** The `self` keys of a fresh `nncp-cfgnew` config (Hjson). */
async function newNode(dir: string): Promise<NodeKeys> {
  const proc = runCommand('nncp-cfgnew', ['-nocomments']);
  await must(proc, 'nncp-cfgnew');
  const text = proc.lines.join('\n');
  const self = /\bself:\s*\{([^}]*)\}/.exec(text)?.[1] ?? '';
  const field = (name: string) => {
    const value = new RegExp(`\\b${name}:\\s*(\\S+)`).exec(self)?.[1];
    if (!value) throw new Error(`nncp-cfgnew printed no ${name}`);
    return value;
  };
  await mkdir(join(dir, 'spool'), { recursive: true });
  return {
    id: field('id'),
    exchpub: field('exchpub'),
    exchprv: field('exchprv'),
    signpub: field('signpub'),
    signprv: field('signprv'),
    noisepub: field('noisepub'),
    noiseprv: field('noiseprv'),
  };
}

const publicKeys = (node: NodeKeys) => ({
  id: node.id,
  exchpub: node.exchpub,
  signpub: node.signpub,
  noisepub: node.noisepub,
});

interface Nncp {
  alice: string;
  bob: string;
  xfer: string;
  incoming: string;
}

/** Two nodes that know each other; bob accepts files from alice into `incoming`. NNCP reads JSON as Hjson. */
async function configure(base: string): Promise<Nncp> {
  const dir = join(base, 'nncp');
  const alice = await newNode(join(dir, 'alice'));
  const bob = await newNode(join(dir, 'bob'));
  const incoming = join(dir, 'incoming');
  const xfer = join(dir, 'xfer');
  await mkdir(incoming, { recursive: true });
  const config = (name: string, self: NodeKeys, peer: string, neighbour: Record<string, string>) => ({
    spool: join(dir, name, 'spool'),
    log: join(dir, name, 'log'),
    self,
    neigh: { self: publicKeys(self), [peer]: neighbour },
  });
  const paths = { alice: join(dir, 'alice.json'), bob: join(dir, 'bob.json') };
  await writeFile(paths.alice, JSON.stringify(config('alice', alice, 'bob', publicKeys(bob))));
  await writeFile(paths.bob, JSON.stringify(config('bob', bob, 'alice', { ...publicKeys(alice), incoming })));
  return { ...paths, xfer, incoming };
}

interface NncpSample {
  seconds: number;
  steps: Record<string, number>;
}

async function nncpCarry(nncp: Nncp, file: string, expected: string): Promise<NncpSample> {
  await rm(nncp.xfer, { recursive: true, force: true });
  await mkdir(nncp.xfer);
  const steps: Record<string, number> = {};
  const started = performance.now();
  for (const [name, args] of [
    ['file', ['-quiet', '-cfg', nncp.alice, file, 'bob:']],
    ['tx', ['-quiet', '-cfg', nncp.alice, '-tx', '-mkdir', nncp.xfer]],
    ['rx', ['-quiet', '-cfg', nncp.bob, '-rx', nncp.xfer]],
    ['toss', ['-quiet', '-cfg', nncp.bob]],
  ] as const) {
    const command = name === 'file' ? 'nncp-file' : name === 'toss' ? 'nncp-toss' : 'nncp-xfer';
    const stepStarted = performance.now();
    await must(runCommand(command, [...args]), command);
    steps[name] = (performance.now() - stepStarted) / 1000;
  }
  const seconds = (performance.now() - started) / 1000;
  const arrived = join(nncp.incoming, basename(file));
  if ((await sha256File(arrived).catch(() => '')) !== expected) throw new Error('NNCP delivered another file');
  await rm(arrived);
  return { seconds, steps };
}

export async function nncpRow(options: RowOptions): Promise<Record<string, unknown>> {
  const { quick, say } = options;
  const version = nncpVersion();
  if (version === undefined) {
    say('local folder vs NNCP: skipped: nncp not installed');
    return { skipped: 'nncp not installed' };
  }
  const size = 256 * MiB;
  const runs = options.runs ?? (quick ? 1 : 3);
  const s = await setup();
  try {
    const nncp = await configure(s.base);
    const file = join(s.base, 'nncp-random.bin');
    await makeRandomFile(file, size);
    const expected = await sha256File(file);
    const nncpSamples: NncpSample[] = [];
    const dftpSamples: Awaited<ReturnType<typeof transfer>>[] = [];
    // Interleaved, so that whatever else the machine does weighs on both alike.
    await sequence(runs, async () => {
      nncpSamples.push(await nncpCarry(nncp, file, expected));
      dftpSamples.push(await transfer(s, file, size, [], expected));
    });
    const nncpTime = summarize(nncpSamples.map((sample) => sample.seconds));
    const steps = Object.fromEntries(
      ['file', 'tx', 'rx', 'toss'].map((name) => [
        name,
        summarize(nncpSamples.map((sample) => sample.steps[name] ?? 0)),
      ]),
    );
    const dftpTime = summarize(dftpSamples.map((sample) => sample.seconds));
    const dftpExit = summarize(dftpSamples.map((sample) => sample.exitSeconds));
    const ratio = summarize(dftpSamples.map((sample, i) => sample.seconds / (nncpSamples[i]?.seconds ?? Number.NaN)));
    const met = ratio.median <= TARGET;
    say(`local folder vs NNCP ${version}, ${mib(size)} MiB, median [min–max] of ${runs}:`);
    say(
      `  NNCP pipeline     ${range(nncpTime, secs)} s (nncp-file ${secs(steps.file?.median ?? 0)}, ` +
        `xfer -tx ${secs(steps.tx?.median ?? 0)}, xfer -rx ${secs(steps.rx?.median ?? 0)}, toss ${secs(steps.toss?.median ?? 0)})`,
    );
    say(
      `  dftp defaults     ${range(dftpTime, secs)} s to the file in place (${secs(dftpExit.median)} s until both exit) ` +
        `= ${range(ratio, (v) => `${v.toFixed(2)}x`)} NNCP (target <= ${TARGET}x: ${verdict(met)})`,
    );
    return {
      version,
      size,
      runs,
      nncp: { seconds: nncpTime, steps },
      dftp: {
        seconds: dftpTime,
        exitSeconds: dftpExit,
        senderPeakRss: summarize(dftpSamples.map((sample) => sample.senderRss)),
        receiverPeakRss: summarize(dftpSamples.map((sample) => sample.receiverRss)),
      },
      ratio,
      target: TARGET,
      met,
    };
  } finally {
    await s.remove();
  }
}
