/**
 * A receiver's status lists a chunk as held only once its state file records it: a status that
 * ran ahead of the record let the sender delete chunks that a kill -9 then took out of the
 * record, and the transfer waited for them for ever (seen as a flaky kill -9 test under load).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { HomeLayout } from '../../src/local/home.js';
import { silentLogger } from '../../src/log.js';
import { AuthGuard } from '../../src/node/auth-guard.js';
import type { NodeComponents } from '../../src/node/node.js';
import { openEnvelope } from '../../src/node/open.js';
import type { Peer, PeerOptions } from '../../src/peer.js';
import type { RelayFile, RelayStorage } from '../../src/relay/storage.js';
import { fromRanges } from '../../src/transfer/chunk-codec.js';
import { STATUS } from '../../src/transfer/control.js';
import { type IncomingState, incomingStatePath } from '../../src/transfer/incoming-state.js';
import type { PeerId } from '../../src/util/peer-id.js';
import { OneRelay } from '../hostile/world.js';

/**
 * Wraps bob's relay so that every status he publishes is opened and checked against his state
 * file at that moment: `ahead` collects chunks listed before they were recorded, `held` the
 * number of chunks each status lists.
 */
function watchStatuses(world: OneRelay, alice: Peer, bobHome: () => string) {
  // Statuses are sealed with the pair key: open them as alice does, with her own sealer.
  const { sealer } = (alice as unknown as { components: NodeComponents }).components;
  const opener = {
    self: 'alice' as PeerId,
    sealer,
    guard: new AuthGuard({ clock: world.clock, logger: silentLogger }),
    logger: silentLogger,
  };
  const ahead: string[] = [];
  const held: number[] = [];
  let unopened = 0;
  const wrap = (relay: RelayStorage): RelayStorage =>
    new Proxy(relay, {
      get(target, property, receiver) {
        if (property === 'publish') {
          return (dir: PeerId, files: readonly RelayFile[], options?: unknown) => {
            for (const file of files) {
              const tid = /^status-([0-9a-f]{16})\.dmp$/.exec(file.name)?.[1];
              if (!tid) continue;
              const read = { data: Buffer.from(file.data), version: 'x' };
              const status = openEnvelope(opener, 'bob' as PeerId, file.name, read, { kind: STATUS }).envelope?.body;
              let recorded = new Set<number>();
              try {
                const home = new HomeLayout(bobHome(), 'bob' as PeerId);
                const path = incomingStatePath(home, 'alice' as PeerId, tid);
                recorded = fromRanges((JSON.parse(readFileSync(path, 'utf8')) as IncomingState).have);
              } catch {
                // No state file yet: nothing is recorded.
              }
              if (status === undefined) {
                unopened += 1;
                continue;
              }
              const have = fromRanges(status.have);
              held.push(have.size);
              for (const index of have) {
                if (!recorded.has(index)) ahead.push(`chunk ${index} listed before it was recorded`);
              }
            }
            return target.publish(dir, files, options as never);
          };
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  return { wrap, ahead, held, unopened: () => unopened };
}

/** alice, and bob whose statuses are watched, with a source folder for alice and an output folder for bob. */
async function watchedPair(world: OneRelay, aliceOptions: Partial<PeerOptions> = {}) {
  const alice = await world.peer('alice', aliceOptions);
  let bobHome = '';
  const watch = watchStatuses(world, alice, () => bobHome);
  const bob = await world.peer('bob', { relay: watch.wrap(world.relay('bob')) });
  bobHome = bob.home.root;
  return { alice, bob, watch, src: await world.dir(), out: await world.dir() };
}

test('every status lists only chunks the state file already records', async () => {
  const world = new OneRelay(60_000);
  try {
    const { alice, bob, watch, src, out } = await watchedPair(world);
    const file = join(src, 'many-chunks.bin');
    writeFileSync(file, Buffer.alloc(200 * 1024, 9));
    const receiving = bob.receiveFiles({ out, count: 1, signal: world.signal });
    await alice.sendFiles('bob', [file], { blockSize: 1024, signal: world.signal });
    await receiving;
    assert.ok(watch.held.length > 5, `only ${watch.held.length} statuses opened (${watch.unopened()} did not)`);
    assert.deepEqual(watch.ahead.slice(0, 5), []);
  } finally {
    await world.close();
  }
});

test('a burst of chunks found at once is acknowledged as it is written, not only at its end', async () => {
  const world = new OneRelay(60_000);
  try {
    const { alice, bob, watch, src, out } = await watchedPair(world, { quota: 64 * 1024 * 1024 });
    const file = join(src, 'burst.bin');
    const data = randomBytes(40 * 1024 * 1024);
    writeFileSync(file, data);
    const sending = alice.sendFiles('bob', [file], { blockSize: 1024 * 1024, signal: world.signal });
    // Every chunk in the relay before bob looks: one pass finds all 40.
    const chunksInRelay = () => [...world.replica.files.keys()].filter((path) => path.startsWith('alice/bob/chunk-'));
    while (chunksInRelay().length < 40) {
      await world.clock.sleep(50);
    }
    await bob.receiveFiles({ out, count: 1, signal: world.signal });
    await sending;
    assert.deepEqual(readFileSync(join(out, 'burst.bin')), data);
    assert.deepEqual(watch.ahead.slice(0, 5), []);
    const partial = watch.held.filter((count) => count > 0 && count < 40);
    assert.ok(partial.length >= 1, `statuses listed ${watch.held.join(', ')} chunks: none before the end`);
  } finally {
    await world.close();
  }
});
