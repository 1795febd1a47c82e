/**
 * Issue 10, "Lockout", through the simulated sync with three peers on a manual clock: files in
 * carol's folder for alice that keep failing authentication quarantine carol (her folder is not
 * read at all meanwhile, bob's traffic goes on), the expiry lets alice read her again, the same
 * forgeries still there quarantine her again for twice as long, and a damaged file of bob's that
 * a resend repairs never quarantines bob.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { encryptText, generateKey, parseKey } from '../../src/crypto/fernet.js';
import type { Logger } from '../../src/log.js';
import { type Quarantine, REPAIR_GRACE_MS } from '../../src/node/auth-guard.js';
import type { RelayStorage } from '../../src/relay/storage.js';
import type { InboxMessage } from '../../src/stream/receiver.js';
import type { PeerId } from '../../src/util/peer-id.js';
import { ALICE, BOB, CAROL, World } from '../support/three-peers.js';

const MINUTE = 60_000;

/** Counts what `relay` reads of `<owner>/<self>/` (listings and files). */
function counting(relay: RelayStorage, owner: PeerId): { relay: RelayStorage; reads: () => number } {
  let reads = 0;
  const wrapped = new Proxy(relay, {
    get(target, property, receiver) {
      if (property === 'list' || property === 'read') {
        return (from: PeerId, ...rest: unknown[]) => {
          if (from === owner) reads += 1;
          return (Reflect.get(target, property, receiver) as (...args: unknown[]) => unknown).call(
            target,
            from,
            ...rest,
          );
        };
      }
      const value = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { relay: wrapped, reads: () => reads };
}

describe('quarantine', () => {
  test('forged files quarantine carol for 1 min, then 2; her folder is not read meanwhile; bob, repaired once, goes on', async () => {
    const world = await new World().init();
    try {
      let watched: ReturnType<typeof counting> | undefined;
      const rejected: string[] = [];
      const logger: Logger = {
        log: (_level, event, fields = {}) => {
          if (event === 'file-rejected') rejected.push(`${String(fields.peer)}/${String(fields.file)}`);
        },
      };
      const alice = await world.open(ALICE, {
        logger,
        relay: (relay) => {
          watched = counting(relay, CAROL);
          return watched.relay;
        },
      });
      const bob = await world.open(BOB);
      const carol = await world.open(CAROL);
      const quarantines: Quarantine[] = [];
      alice.onQuarantined((quarantine) => quarantines.push(quarantine));
      const shown: InboxMessage[] = [];
      const stop = new AbortController();
      const listening = alice.listen({ signal: stop.signal, onMessage: (message) => shown.push(message) });
      const serving = bob.serve({ signal: stop.signal });
      const texts = () => shown.map((message) => `${message.from}: ${message.text}`);
      const until = async (what: string, check: () => boolean, limitMs = 10 * MINUTE) => {
        const deadline = world.clock.now() + limitMs;
        while (!check()) {
          if (world.clock.now() > deadline) assert.fail(`${what}: not by the clock's deadline; shown ${texts()}`);
          await world.clock.sleep(100);
        }
      };

      // Both authenticate first: whatever fails later is damage or forgery, not another key.
      await carol.send('alice', ['carol 1']);
      await bob.send('alice', ['bob 1']);
      await until('the first messages', () => shown.length === 2);

      // bob's next message reaches alice's copy damaged (a flipped byte); bob sends it again.
      const bobsSecond = 'bob/alice/msg-000000000002.dmp';
      let damaged = false;
      const unhook = world.replicas.alice.subscribe((path, local) => {
        const stored = world.replicas.alice.files.get(path);
        if (damaged || local || path !== bobsSecond || !stored) return;
        damaged = true;
        const copy = Buffer.from(stored.data);
        copy[60] = (copy[60] ?? 0) ^ 0x20;
        world.replicas.alice.put(path, copy, false);
      });
      await bob.send('alice', ['bob 2']);
      await until("bob's repaired message", () => texts().includes('bob: bob 2'));
      unhook();
      assert.ok(damaged && rejected.includes(bobsSecond.replace('/alice', '')), `no damage seen: ${rejected}`);

      // Files under a key that is not carol's, synced into alice's copy of carol's folder.
      const forged = (name: string) =>
        world.replicas.alice.put(
          `carol/alice/${name}`,
          Buffer.from(encryptText(parseKey(generateKey()), Buffer.from('{"forged":true}'))),
          false,
        );
      const pings = ['ping-00000000000000aa.dmp', 'ping-00000000000000bb.dmp', 'ping-00000000000000cc.dmp'];
      const forgedAt = world.clock.now();
      forged('msg-000000000002.dmp');
      for (const ping of pings) forged(ping);
      await until('carol quarantined', () => alice.quarantined().length > 0);
      const first = alice.quarantined()[0];
      assert.ok(first);
      assert.equal(first.peer, 'carol');
      assert.equal(first.level, 1);
      assert.equal(first.until - first.since, MINUTE);
      assert.match(first.reason, /4 files of carol fail authentication and no resend repaired them/);
      const waited = first.since - forgedAt;
      assert.ok(waited >= REPAIR_GRACE_MS && waited <= REPAIR_GRACE_MS + 5000, `quarantined after ${waited} ms`);

      // What `dmp who` and `dmp peers` show, and what another process reads from DMP_HOME.
      const who = (await alice.who()).find((entry) => entry.peer === 'carol');
      assert.equal(who?.quarantined?.until, first.until);
      const peers = (await alice.identities()).find((entry) => entry.peer === 'carol');
      assert.equal(peers?.quarantined?.level, 1);
      await world.clock.sleep(2000);
      const stored = JSON.parse(await readFile(alice.home.quarantine, 'utf8'));
      assert.deepEqual(Object.keys(stored), ['carol']);
      assert.equal(stored.carol.until, first.until);

      // Quarantined: carol's real next message waits unread; bob's arrive as ever.
      const readsBefore = watched?.reads() ?? 0;
      await carol.send('alice', ['carol 2']);
      await bob.send('alice', ['bob 3']);
      await until('bob during the quarantine', () => texts().includes('bob: bob 3'));
      await world.clock.sleep(first.until - world.clock.now() - 1000);
      assert.ok(!texts().includes('carol: carol 2'), 'carol read during her quarantine');
      assert.equal((watched?.reads() ?? 0) - readsBefore, 0, "carol's folder read during her quarantine");

      // Over: carol's message is read (it repairs the forged msg-2); the pings still fail.
      await until("carol's message after the quarantine", () => texts().includes('carol: carol 2'), 2 * MINUTE);
      assert.ok(world.clock.now() >= first.until);
      await until('carol quarantined again', () => quarantines.length === 2);
      const second = quarantines[1];
      assert.ok(second);
      assert.equal(second.level, 2);
      assert.equal(second.until - second.since, 2 * MINUTE);
      const again = second.since - first.until;
      assert.ok(again >= REPAIR_GRACE_MS && again <= REPAIR_GRACE_MS + 5000, `quarantined again after ${again} ms`);

      // The forgeries go; the next expiry lets alice read carol for good.
      for (const ping of pings) world.replicas.alice.delete(`carol/alice/${ping}`, false);
      await carol.send('alice', ['carol 3']);
      await until('carol after the second quarantine', () => texts().includes('carol: carol 3'), 5 * MINUTE);
      assert.ok(world.clock.now() >= second.until);
      await world.clock.sleep(10 * MINUTE);
      assert.equal(quarantines.length, 2, 'quarantined once more');
      assert.deepEqual(alice.quarantined(), []);
      assert.ok(quarantines.every((quarantine) => quarantine.peer === 'carol'));
      assert.deepEqual(
        texts().filter((text) => text.startsWith('bob')),
        ['bob: bob 1', 'bob: bob 2', 'bob: bob 3'],
      );
      stop.abort();
      await Promise.allSettled([listening, serving]);
    } finally {
      await world.close();
    }
  });
});
