/**
 * Three machines for the simulated-sync tests of multi-peer features: alice, bob and carol, each
 * on its own copy of the relay, joined by a SimulatedSync, everything on one ManualClock.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/clock.js';
import { generateKey } from '../../src/crypto/fernet.js';
import type { Logger } from '../../src/log.js';
import { Peer } from '../../src/peer.js';
import { MemoryRelay, RelayReplica, SimulatedSync } from '../../src/relay/memory-relay.js';
import type { RelayStorage } from '../../src/relay/storage.js';
import { type PeerId, parsePeerId } from '../../src/util/peer-id.js';

export const ALICE = parsePeerId('alice');
export const BOB = parsePeerId('bob');
export const CAROL = parsePeerId('carol');

/** Three machines, three copies of the relay, a simulated sync between them, one manual clock. */
export class World {
  readonly clock = new ManualClock();
  readonly replicas = { alice: new RelayReplica(), bob: new RelayReplica(), carol: new RelayReplica() };
  readonly sync = new SimulatedSync(Object.values(this.replicas), {
    seed: 9009,
    maxDelayMs: 20,
    duplicateRate: 0.2,
    clock: this.clock,
  });
  readonly key = generateKey();
  readonly homes: Record<string, string> = {};
  private readonly peers: Peer[] = [];
  private readonly stopClock = this.clock.run();
  private readonly ending = new AbortController();
  readonly signal: AbortSignal = this.ending.signal;

  async open(
    id: PeerId,
    options: {
      strict?: boolean;
      key?: string;
      broadcastRetentionMs?: number;
      quota?: number;
      /** Wraps the peer's relay storage (to watch what it reads). */
      relay?: (relay: RelayStorage) => RelayStorage;
      logger?: Logger;
    } = {},
  ): Promise<Peer> {
    this.homes[id] ??= await mkdtemp(join(tmpdir(), `dmp-identity-${id}-`));
    const relay = new MemoryRelay(this.replicas[id as keyof World['replicas']], id, { clock: this.clock });
    const peer = await Peer.open({
      relay: options.relay ? options.relay(relay) : relay,
      id,
      key: options.key ?? this.key,
      home: this.homes[id] ?? '',
      clock: this.clock,
      cryptoWorker: false,
      strict: options.strict,
      broadcastRetentionMs: options.broadcastRetentionMs,
      logger: options.logger,
      quota: options.quota,
    });
    this.peers.push(peer);
    return peer;
  }

  /** Every peer made its identity (dmp init) and the copies agree. */
  async init(): Promise<this> {
    for (const id of [ALICE, BOB, CAROL]) (await this.open(id)).close();
    await this.sync.idle();
    return this;
  }

  async close(): Promise<void> {
    this.ending.abort();
    for (const peer of this.peers) peer.close();
    this.sync.stop();
    this.stopClock();
    await Promise.all(Object.values(this.homes).map((home) => rm(home, { recursive: true, force: true })));
  }
}
