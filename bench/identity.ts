/**
 * Figures for per-peer identities (`npm run build && node dist/bench/identity.js`):
 * - the cost of one pair-key derivation (it is cached: once per peer identity, not per file);
 * - the time to open a relay of 50 peers and judge every identity in it;
 * - ping p50 and messages/s between two peers over a real relay folder, without and with a
 *   stranger's folder beside them (another relay key, junk files), in the same run.
 * Both peers run in this process over FolderRelay (native events); the CLI bench rows measure
 * the commands themselves.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { generateKey } from '../src/crypto/fernet.js';
import { derivePairKey, generatePair } from '../src/identity/keys.js';
import { Peer } from '../src/peer.js';

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

function derivation(): number {
  const own = { id: 'alice', exchange: generatePair('X25519') };
  const other = { id: 'bob', exchange: generatePair('X25519').public };
  const rounds = 2000;
  const started = performance.now();
  for (let i = 0; i < rounds; i += 1) derivePairKey(own, other);
  return ((performance.now() - started) / rounds) * 1000;
}

async function open(root: string, relay: string, id: string, key: string): Promise<Peer> {
  return Peer.open({ relay, id, key, home: join(root, `home-${id}`) });
}

async function fiftyPeers(root: string): Promise<{ openMs: number; judgeMs: number }> {
  const relay = join(root, 'relay-50');
  await import('node:fs/promises').then((fs) => fs.mkdir(relay));
  const key = generateKey();
  for (let i = 1; i < 50; i += 1) (await open(root, relay, `p${i}`, key)).close();
  const started = performance.now();
  const peer = await open(root, relay, 'p0', key);
  const opened = performance.now();
  const identities = await peer.identities();
  const judged = performance.now();
  peer.close();
  if (identities.length !== 49 || identities.some((entry) => entry.standing !== 'pinned')) {
    throw new Error(`expected 49 pinned peers, got ${JSON.stringify(identities.map((entry) => entry.standing))}`);
  }
  return { openMs: opened - started, judgeMs: judged - opened };
}

async function pair(root: string, name: string, stranger: boolean): Promise<{ pingP50: number; messagesPerS: number }> {
  const relay = join(root, name);
  await import('node:fs/promises').then((fs) => fs.mkdir(relay));
  const key = generateKey();
  const alice = await open(root, relay, `alice-${name}`, key);
  const bob = await open(root, relay, `bob-${name}`, key);
  if (stranger) {
    const carol = await Peer.open({ relay, id: 'carol', key: generateKey(), home: join(root, `home-carol-${name}`) });
    carol.close();
    const folder = join(relay, 'carol', `bob-${name}`);
    await import('node:fs/promises').then((fs) => fs.mkdir(folder, { recursive: true }));
    for (let i = 1; i <= 200; i += 1) {
      await writeFile(join(folder, `msg-${String(i).padStart(12, '0')}.dmp`), `junk ${i}`.repeat(10));
    }
  }
  const stop = new AbortController();
  const serving = bob.serve({ signal: stop.signal });
  try {
    const replies = await alice.ping(`bob-${name}`, { count: 100, intervalMs: 0, timeoutMs: 10_000 });
    const count = 3000;
    const started = performance.now();
    const listening = bob.listen({ count, onMessage: () => {} });
    const texts = Array.from({ length: count }, (_, i) => `message ${i}`);
    for (let i = 0; i < count; i += 500) await alice.send(`bob-${name}`, texts.slice(i, i + 500));
    await listening;
    const seconds = (performance.now() - started) / 1000;
    return { pingP50: median(replies.map((reply) => reply.rttMs)), messagesPerS: count / seconds };
  } finally {
    stop.abort();
    await serving;
    alice.close();
    bob.close();
  }
}

const root = await mkdtemp(join(tmpdir(), 'dmp-bench-identity-'));
try {
  const us = derivation();
  process.stdout.write(
    `pair-key derivation (X25519 + HKDF-SHA256): ${us.toFixed(1)} us each, once per peer identity\n`,
  );
  const fifty = await fiftyPeers(root);
  process.stdout.write(
    `relay of 50 peers: Peer.open ${fifty.openMs.toFixed(0)} ms, reading and judging 49 identities ${fifty.judgeMs.toFixed(0)} ms\n`,
  );
  for (let run = 1; run <= 3; run += 1) {
    const plain = await pair(root, `plain-${run}`, false);
    const withStranger = await pair(root, `stranger-${run}`, true);
    process.stdout.write(
      `run ${run}: without a stranger ping p50 ${plain.pingP50.toFixed(2)} ms, ${plain.messagesPerS.toFixed(0)} msg/s; ` +
        `with one ping p50 ${withStranger.pingP50.toFixed(2)} ms, ${withStranger.messagesPerS.toFixed(0)} msg/s\n`,
    );
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
process.exit(0);
