/**
 * The node's loop, on a MemoryRelay and a ManualClock: dispatch by kind of file, one consumer per
 * kind, trouble in one peer's folder kept to that peer. The authentication guard it consults has
 * its own tests (auth-guard.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { generateKey, parseKey } from '../../src/crypto/fernet.js';
import { DmpError } from '../../src/errors.js';
import { HomeLayout } from '../../src/local/home.js';
import { silentLogger } from '../../src/log.js';
import { AuthGuard } from '../../src/node/auth-guard.js';
import type { FileKind } from '../../src/node/envelope.js';
import { Node } from '../../src/node/node.js';
import { SharedKeySealer } from '../../src/node/seal.js';
import { MemoryRelay, RelayReplica } from '../../src/relay/memory-relay.js';
import { parsePeerId } from '../../src/util/peer-id.js';

const ALICE = parsePeerId('alice');
const BOB = parsePeerId('bob');
const CAROL = parsePeerId('carol');

describe('Node', () => {
  const KIND_A: FileKind = { type: 'a', files: /^a-\d+\.dmp$/ };
  const KIND_B: FileKind = { type: 'b', files: /^b-\d+\.dmp$/ };

  async function world() {
    const home = await mkdtemp(join(tmpdir(), 'dmp-node-'));
    const clock = new ManualClock();
    const replica = new RelayReplica();
    const relay = new MemoryRelay(replica, BOB, { clock });
    await relay.open();
    const node = new Node({
      self: BOB,
      relay,
      sealer: new SharedKeySealer({ key: parseKey(generateKey()), now: () => clock.now(), worker: false }),
      guard: new AuthGuard({ clock, logger: silentLogger }),
      home: new HomeLayout(home, BOB),
      clock,
      logger: silentLogger,
      quota: 1024 * 1024,
    });
    const write = (owner: typeof ALICE, name: string) => replica.put(`${owner}/bob/${name}`, Buffer.from('x'), false);
    return {
      clock,
      node,
      write,
      close: async () => {
        node.close();
        await rm(home, { recursive: true, force: true });
      },
    };
  }

  test('each handler gets the names of its own kinds, and a kind has one consumer', async () => {
    const w = await world();
    const stopClock = w.clock.run();
    try {
      const seen: string[] = [];
      w.node.register({ kinds: [KIND_A], handle: async (peer, names) => void seen.push(`A ${peer} ${names}`) });
      w.node.register({ kinds: [KIND_B], handle: async (peer, names) => void seen.push(`B ${peer} ${names}`) });
      assert.throws(() => w.node.register({ kinds: [KIND_A], handle: async () => {} }), /already registered/);
      w.write(ALICE, 'a-1.dmp');
      w.write(ALICE, 'b-1.dmp');
      w.write(ALICE, 'foreign.tmp');
      const stop = new AbortController();
      const running = w.node.run(stop.signal);
      while (!seen.includes('A alice a-1.dmp') || !seen.includes('B alice b-1.dmp')) await w.clock.sleep(10);
      stop.abort();
      await running;
      assert.ok(!seen.some((line) => line.includes('foreign')), seen.join('\n'));
    } finally {
      stopClock();
      await w.close();
    }
  });

  test("a failure in one peer's folder backs off that peer only", async () => {
    const w = await world();
    const stopClock = w.clock.run();
    try {
      const handled = { alice: 0, carol: 0 };
      w.node.register({
        kinds: [KIND_A],
        handle: async (peer) => {
          handled[peer as 'alice' | 'carol'] += 1;
          if (peer === CAROL) throw new DmpError('IO', 'cannot read carol');
        },
      });
      const errors: string[] = [];
      w.node.onError((error, peer) => errors.push(`${peer}: ${error.message}`));
      w.write(ALICE, 'a-1.dmp');
      w.write(CAROL, 'a-1.dmp');
      const stop = new AbortController();
      const running = w.node.run(stop.signal);
      const started = w.clock.now();
      // Ten seconds of rescans: alice is looked at every pass, carol with a doubling back-off.
      while (w.clock.now() - started < 10_000) {
        w.write(ALICE, `a-${w.clock.now()}.dmp`);
        await w.clock.sleep(100);
      }
      stop.abort();
      await running;
      assert.ok(handled.alice > 20, `alice handled ${handled.alice} times`);
      assert.ok(handled.carol >= 3 && handled.carol <= 8, `carol handled ${handled.carol} times`);
      assert.equal(errors.length, handled.carol);
      assert.ok(errors.every((line) => line === 'carol: cannot read carol'));
    } finally {
      stopClock();
      await w.close();
    }
  });
});
