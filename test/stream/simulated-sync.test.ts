/**
 * End to end through the Peer API, over two relay replicas joined by SimulatedSync: alice writes
 * on replica A, bob on replica B, and every file crosses a simulated sync engine that delivers
 * late, out of order, twice, beside its own temp files and conflict copies, and (when asked)
 * corrupted. Each scenario names its seed so that a failure can be replayed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { generateKey } from '../../src/crypto/fernet.js';
import { DmpError } from '../../src/errors.js';
import { Peer } from '../../src/peer.js';
import { MemoryRelay, RelayReplica, SimulatedSync, type SimulatedSyncOptions } from '../../src/relay/memory-relay.js';
import type { InboxMessage } from '../../src/stream/receiver.js';
import { parsePeerId } from '../../src/util/peer-id.js';

const ALICE = parsePeerId('alice');
const BOB = parsePeerId('bob');

const MSG_FILE = /^alice\/bob\/msg-\d{12}\.dmp$/;

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Two replicas, a sync between them, and what each peer needs; everything is torn down by close(). */
class World {
  readonly a = new RelayReplica();
  readonly b = new RelayReplica();
  readonly sync: SimulatedSync;
  readonly key = generateKey();
  /** Every delay and timer of the scenario runs on this clock, moved on whenever all is idle. */
  readonly clock = new ManualClock();
  private readonly stopClock = this.clock.run();
  private readonly peers: Peer[] = [];
  private readonly services: { controller: AbortController; done: Promise<void> }[] = [];
  private readonly homes: string[] = [];
  /** Ends every listen still running when a test fails, so nothing outlives the test. */
  private readonly ending = new AbortController();
  readonly signal = this.ending.signal;
  aliceHome = '';
  bobHome = '';

  constructor(options: SimulatedSyncOptions) {
    this.sync = new SimulatedSync([this.a, this.b], { ...options, clock: this.clock });
  }

  async init(): Promise<this> {
    this.aliceHome = await this.home();
    this.bobHome = await this.home();
    // SimulatedSync carries files, not empty folders (a real sync engine carries both): stand in
    // for the sync of each peer's new folder, as `dmp init` on the other machine would create it.
    this.a.folders.add('bob');
    this.b.folders.add('alice');
    await this.identities();
    return this;
  }

  async home(): Promise<string> {
    const home = await mkdtemp(join(tmpdir(), 'dmp-test-'));
    this.homes.push(home);
    return home;
  }

  /** A Peer for alice on replica A (a new object each time, as after a restart). */
  async alice(home = this.aliceHome): Promise<Peer> {
    const peer = await Peer.open({
      relay: new MemoryRelay(this.a, ALICE, { clock: this.clock }),
      id: 'alice',
      key: this.key,
      home,
      clock: this.clock,
    });
    this.peers.push(peer);
    return peer;
  }

  /** A Peer for bob on replica B. */
  async bob(options: { home?: string; key?: string } = {}): Promise<Peer> {
    const peer = await Peer.open({
      relay: new MemoryRelay(this.b, BOB, { clock: this.clock }),
      id: 'bob',
      key: options.key ?? this.key,
      home: options.home ?? this.bobHome,
      clock: this.clock,
    });
    this.peers.push(peer);
    return peer;
  }

  /** Runs `peer.serve` until close(). */
  serve(peer: Peer): void {
    const controller = new AbortController();
    this.services.push({ controller, done: peer.serve({ signal: controller.signal }) });
  }

  /** Message files of the alice -> bob stream still on replica A and on replica B. */
  messageFiles(): { a: number; b: number } {
    const count = (replica: RelayReplica) => [...replica.files.keys()].filter((path) => MSG_FILE.test(path)).length;
    return { a: count(this.a), b: count(this.b) };
  }

  /** As `dmp init` does on each machine: both identities made, published and synced. */
  private async identities(): Promise<void> {
    (await this.alice()).close();
    (await this.bob()).close();
    await this.sync.idle();
  }

  async close(): Promise<void> {
    this.ending.abort();
    this.stopClock();
    for (const service of this.services) service.controller.abort();
    const outcomes = await Promise.allSettled(this.services.map((service) => service.done));
    for (const peer of this.peers) peer.close();
    this.sync.stop();
    await Promise.all(this.homes.map((home) => rm(home, { recursive: true, force: true })));
    for (const outcome of outcomes) if (outcome.status === 'rejected') throw outcome.reason;
  }
}

function texts(from: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `message ${from + i} ${'ü✓'.repeat((from + i) % 5)}`);
}

/** Every message from `first` on, once, in order, with its text. */
function assertInOrder(received: readonly InboxMessage[], first: number, count: number): void {
  assert.equal(received.length, count, `received ${received.length} messages, expected ${count}`);
  const expected = texts(first, count);
  for (const [index, message] of received.entries()) {
    assert.equal(message.from, 'alice');
    assert.equal(message.seq, first + index, `message ${index} has seq ${message.seq}`);
    assert.equal(message.text, expected[index], `message ${message.seq} has the wrong text`);
  }
}

describe('message streams over a simulated sync', () => {
  test('3,000 messages arrive once and in order through delays, duplicates, temp files and conflicts (seed 1001)', async () => {
    const world = await new World({
      seed: 1001,
      maxDelayMs: 20,
      duplicateRate: 0.3,
      tempFileRate: 0.3,
      conflictRate: 0.1,
    }).init();
    try {
      const alice = await world.alice();
      const bob = await world.bob();
      world.serve(alice);
      const received: InboxMessage[] = [];
      const listening = bob.listen({
        count: 3000,
        timeoutMs: 40_000,
        signal: world.signal,
        onMessage: (message) => received.push(message),
      });
      listening.catch(() => {}); // Awaited below; this keeps an early failure from going unhandled.
      const seqs: number[] = [];
      for (const [from, count] of [
        [1, 1],
        [2, 499],
        [501, 700],
        [1201, 300],
        [1501, 1000],
        [2501, 500],
      ] as const) {
        seqs.push(...(await alice.send('bob', texts(from, count))));
      }
      assert.deepEqual(
        seqs,
        Array.from({ length: 3000 }, (_, i) => i + 1),
      );
      assert.equal(await listening, 3000);
      assertInOrder(received, 1, 3000);
      // Acknowledged files are deleted by alice's serve loop, and the deletes reach replica B.
      await waitFor('the acknowledged message files to be deleted', () => {
        const left = world.messageFiles();
        return left.a === 0 && left.b === 0;
      });
      const { duplicated, tempFiles, conflicts } = world.sync.stats;
      assert.ok(duplicated > 0 && tempFiles > 0 && conflicts > 0, `hazards: ${JSON.stringify(world.sync.stats)}`);
    } finally {
      await world.close();
    }
  });

  test('corrupted deliveries are rejected and sent again: 500 messages once and in order (seed 2002)', async () => {
    const world = await new World({ seed: 2002, maxDelayMs: 20, duplicateRate: 0.1, corruptRate: 0.05 }).init();
    try {
      const alice = await world.alice();
      const bob = await world.bob();
      world.serve(alice);
      const received: InboxMessage[] = [];
      const listening = bob.listen({
        count: 500,
        timeoutMs: 15_000,
        signal: world.signal,
        onMessage: (message) => received.push(message),
      });
      listening.catch(() => {}); // Awaited below; this keeps an early failure from going unhandled.
      for (let from = 1; from <= 500; from += 100) await alice.send('bob', texts(from, 100));
      assert.equal(await listening, 500);
      assertInOrder(received, 1, 500);
      assert.ok(world.sync.stats.corrupted > 0, 'the simulation corrupted nothing: the test proved nothing');
    } finally {
      await world.close();
    }
  });

  test('restarts of the receiver and of the sender lose nothing and reuse no number (seed 3003)', async () => {
    const world = await new World({ seed: 3003, maxDelayMs: 20, duplicateRate: 0.3, tempFileRate: 0.3 }).init();
    try {
      // alice sends 200, restarts, sends 200 more.
      const alice1 = await world.alice();
      assert.deepEqual(
        await alice1.send('bob', texts(1, 200)),
        Array.from({ length: 200 }, (_, i) => i + 1),
      );
      alice1.close();
      const alice2 = await world.alice();
      world.serve(alice2);
      assert.deepEqual(
        await alice2.send('bob', texts(201, 200)),
        Array.from({ length: 200 }, (_, i) => 201 + i),
      );

      // bob takes 200, restarts, takes the other 200.
      const firstHalf: InboxMessage[] = [];
      const bob1 = await world.bob();
      assert.equal(
        await bob1.listen({ count: 200, timeoutMs: 15_000, signal: world.signal, onMessage: (m) => firstHalf.push(m) }),
        200,
      );
      bob1.close();
      assertInOrder(firstHalf, 1, 200);
      const secondHalf: InboxMessage[] = [];
      const bob2 = await world.bob();
      assert.equal(
        await bob2.listen({
          count: 200,
          timeoutMs: 15_000,
          signal: world.signal,
          onMessage: (m) => secondHalf.push(m),
        }),
        200,
      );
      assertInOrder(secondHalf, 201, 200);

      // Once everything is acknowledged and deleted, the relay holds no trace of the numbers
      // used: only alice's local state keeps the next one from being reused.
      await waitFor('the acknowledged message files to be deleted', () => world.messageFiles().a === 0);
      const alice3 = await world.alice();
      assert.deepEqual(await alice3.send('bob', texts(401, 1)), [401]);
      const last: InboxMessage[] = [];
      assert.equal(
        await bob2.listen({ count: 1, timeoutMs: 15_000, signal: world.signal, onMessage: (m) => last.push(m) }),
        1,
      );
      assertInOrder(last, 401, 1);
    } finally {
      await world.close();
    }
  });

  test('ping crosses the simulated sync and back (seed 4004)', async () => {
    const world = await new World({
      seed: 4004,
      maxDelayMs: 20,
      duplicateRate: 0.3,
      tempFileRate: 0.3,
      conflictRate: 0.1,
    }).init();
    try {
      const alice = await world.alice();
      const bob = await world.bob();
      world.serve(bob);
      const timeouts: number[] = [];
      const replies = await alice.ping('bob', {
        count: 3,
        intervalMs: 10,
        timeoutMs: 10_000,
        onTimeout: (seq) => timeouts.push(seq),
      });
      assert.deepEqual(timeouts, []);
      assert.deepEqual(
        replies.map((reply) => reply.seq),
        [1, 2, 3],
      );
      // Pings are deleted by the pinger, pongs by the responder once their ping is gone.
      const ephemeral = /^(alice\/bob\/ping|bob\/alice\/pong)-[0-9a-f]{16}\.dmp$/;
      await waitFor('ping and pong files to be cleaned up', () =>
        [world.a, world.b].every((replica) => ![...replica.files.keys()].some((path) => ephemeral.test(path))),
      );
    } finally {
      await world.close();
    }
  });

  test('one damaged delivery of an ack is not mistaken for a wrong key (seed 6006)', async () => {
    const world = await new World({ seed: 6006, maxDelayMs: 20 }).init();
    try {
      const alice = await world.alice();
      const bob = await world.bob();
      await alice.send('bob', texts(1, 1));
      assert.equal(await bob.listen({ count: 1, timeoutMs: 10_000, signal: world.signal, onMessage: () => {} }), 1);
      const ackPath = 'bob/alice/ack.dmp';
      await world.sync.idle();
      assert.ok(world.a.files.has(ackPath), "bob's ack did not reach replica A");
      // The sync delivers the ack damaged (one flipped byte, as corruptRate does); bob's next
      // ack will replace it.
      const damaged = Buffer.from(world.a.files.get(ackPath)?.data ?? Buffer.alloc(0));
      damaged[60] = (damaged[60] ?? 0) ^ 0x20;
      world.a.put(ackPath, damaged, false);
      const received: InboxMessage[] = [];
      const listening = bob.listen({
        count: 1,
        timeoutMs: 10_000,
        signal: world.signal,
        onMessage: (m) => received.push(m),
      });
      listening.catch(() => {});
      assert.deepEqual(await alice.send('bob', texts(2, 1), { wait: true, timeoutMs: 10_000 }), [2]);
      assert.equal(await listening, 1);
      assertInOrder(received, 2, 1);
    } finally {
      await world.close();
    }
  });

  test('a peer with another relay key is a stranger: refused by name on both sides, and listening goes on (seed 5005)', async () => {
    const world = await new World({ seed: 5005, maxDelayMs: 20, duplicateRate: 0.3 }).init();
    try {
      // bob starts over with a key of his own: his identity no longer opens with alice's key.
      await rm(world.bobHome, { recursive: true, force: true });
      world.bobHome = await world.home();
      const bob = await world.bob({ key: generateKey() });
      await world.sync.idle();
      const reports: string[] = [];
      bob.onUnauthenticated((peer, reason) => reports.push(`${peer}: ${reason}`));
      const alice = await world.alice();
      await assert.rejects(alice.send('bob', texts(1, 3)), (error: unknown) => {
        assert.ok(error instanceof DmpError, `not a DmpError: ${String(error)}`);
        assert.equal(error.code, 'AUTH');
        assert.match(error.message, /bob's identity does not open with this relay key/);
        return true;
      });
      // Damage from one folder is that folder's problem: listen neither fails nor stops early.
      await assert.rejects(
        bob.listen({ count: 3, timeoutMs: 15_000, signal: world.signal, onMessage: () => {} }),
        (error: unknown) => {
          assert.ok(error instanceof DmpError, `not a DmpError: ${String(error)}`);
          assert.equal(error.code, 'TIMEOUT');
          return true;
        },
      );
      assert.deepEqual(reports, [
        "alice: alice's identity does not open with this relay key (another key, or a stranger)",
      ]);
    } finally {
      await world.close();
    }
  });
});
