/**
 * Figures for the chat (`npm run build && node dist/bench/chat.js`):
 * - a direct message from send to display on the other side, over a real relay folder with
 *   native events: p50 and p95 of 100, one at a time (what /msg costs a person waiting for it);
 * - a broadcast stream to 10 readers: broadcasts per second until every reader showed all of
 *   them, and the bytes the author's folder holds at the end of sending and once every reader
 *   acknowledged (retention makes the relay give them back);
 * - how long `who` goes on showing a peer that vanished without logging out, with the default
 *   interval, on the manual clock of the simulated sync (time there is exact, not measured).
 * Every peer runs in this process (one service loop each), so the figures are the library's, not
 * process start-up.
 */
import { setMaxListeners } from 'node:events';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { generateKey } from '../src/crypto/fernet.js';
import { Peer } from '../src/peer.js';
import { DEFAULT_PRESENCE_INTERVAL_MS } from '../src/presence/presence.js';
import { ALICE, BOB, World } from '../test/support/three-peers.js';

const quantile = (values: number[], q: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))] ?? Number.NaN;

async function open(root: string, relay: string, id: string, key: string): Promise<Peer> {
  return Peer.open({ relay, id, key, home: join(root, `home-${id}`) });
}

async function directLatency(root: string): Promise<{ p50: number; p95: number }> {
  const relay = join(root, 'relay-direct');
  await mkdir(relay);
  const key = generateKey();
  const alice = await open(root, relay, 'alice', key);
  const bob = await open(root, relay, 'bob', key);
  const stop = new AbortController();
  let arrived: (() => void) | undefined;
  const listening = bob.listen({ signal: stop.signal, onMessage: () => arrived?.() });
  const times: number[] = [];
  try {
    // Warm-up: identities read, watchers in place.
    for (let i = 0; i < 105; i += 1) {
      const shown = new Promise<void>((resolve) => {
        arrived = resolve;
      });
      const started = performance.now();
      await alice.send('bob', [`message ${i}`]);
      await shown;
      if (i >= 5) times.push(performance.now() - started);
    }
  } finally {
    stop.abort();
    await listening;
    alice.close();
    bob.close();
  }
  return { p50: quantile(times, 0.5), p95: quantile(times, 0.95) };
}

async function folderBytes(folder: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(folder)) {
    if (name.startsWith('bcast-')) total += (await stat(join(folder, name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

async function broadcastToTen(root: string): Promise<{ perSecond: number; heldBytes: number; afterAcksBytes: number }> {
  const relay = join(root, 'relay-broadcast');
  await mkdir(relay);
  const key = generateKey();
  const author = await open(root, relay, 'author', key);
  const readers: Peer[] = [];
  for (let i = 0; i < 10; i += 1) readers.push(await open(root, relay, `reader${i}`, key));
  // Each knows every other identity before the clock starts.
  await author.identities();
  for (const reader of readers) await reader.identities();
  const total = 1000;
  const stop = new AbortController();
  setMaxListeners(20, stop.signal);
  const counts = readers.map(() => 0);
  let allDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    allDone = resolve;
  });
  const listening = readers.map((reader, index) =>
    reader.listen({
      signal: stop.signal,
      onMessage: () => {
        counts[index] = (counts[index] ?? 0) + 1;
        if (counts.every((count) => count >= total)) allDone();
      },
    }),
  );
  const serving = author.serve({ signal: stop.signal });
  const started = performance.now();
  for (let sent = 0; sent < total; sent += 100) {
    await author.broadcast(Array.from({ length: 100 }, (_, i) => `broadcast ${sent + i} to everyone on the relay`));
  }
  const heldBytes = await folderBytes(join(relay, 'author'));
  await done;
  const seconds = (performance.now() - started) / 1000;
  // The author collects what every reader acknowledged (its loop acts on their acks).
  let afterAcksBytes = heldBytes;
  for (let tries = 0; tries < 100 && afterAcksBytes > 0; tries += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    afterAcksBytes = await folderBytes(join(relay, 'author'));
  }
  stop.abort();
  await Promise.all([...listening, serving]);
  author.close();
  for (const reader of readers) reader.close();
  return { perSecond: total / seconds, heldBytes, afterAcksBytes };
}

async function vanishToDrop(): Promise<number> {
  const world = await new World().init();
  try {
    const alice = await world.open(ALICE);
    const bob = await world.open(BOB);
    const stop = new AbortController();
    const beating = alice.publishPresence(stop.signal);
    await world.clock.sleep(1000);
    await world.sync.idle();
    // Wait for a beat to land, then cut alice off at the worst moment: just after her last beat.
    await world.clock.sleep(DEFAULT_PRESENCE_INTERVAL_MS - 1000);
    await world.sync.idle();
    await bob.who();
    world.replicas.alice.readOnly = true;
    const vanished = world.clock.now();
    let droppedAt: number | undefined;
    while (droppedAt === undefined) {
      await world.clock.sleep(1000);
      if (!(await bob.who()).find((entry) => entry.peer === 'alice')?.online) droppedAt = world.clock.now();
    }
    stop.abort();
    await beating;
    return droppedAt - vanished;
  } finally {
    await world.close();
  }
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'dmp-bench-chat-'));
  try {
    const direct = await directLatency(root);
    process.stdout.write(
      `direct message, send to display (100, native events): p50 ${direct.p50.toFixed(1)} ms, p95 ${direct.p95.toFixed(1)} ms\n`,
    );
    const broadcast = await broadcastToTen(root);
    process.stdout.write(
      `broadcast of 1,000 to 10 readers: ${broadcast.perSecond.toFixed(0)} broadcasts/s (${(broadcast.perSecond * 10).toFixed(0)} deliveries/s); relay holds ${(broadcast.heldBytes / 1024).toFixed(0)} KiB after sending, ${(broadcast.afterAcksBytes / 1024).toFixed(0)} KiB once all acknowledged\n`,
    );
    const drop = await vanishToDrop();
    process.stdout.write(
      `a peer that vanished (interval ${DEFAULT_PRESENCE_INTERVAL_MS / 1000} s) leaves who after ${(drop / 1000).toFixed(0)} s (manual clock)\n`,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
