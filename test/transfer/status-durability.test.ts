/**
 * A receiver's status lists a chunk as held only once its state file records it: a status that
 * ran ahead of the record let the sender delete chunks that a kill -9 then took out of the
 * record, and the transfer waited for them for ever (seen as a flaky kill -9 test under load).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseKey } from '../../src/crypto/fernet.js';
import { HomeLayout } from '../../src/local/home.js';
import { silentLogger } from '../../src/log.js';
import { AuthGuard } from '../../src/node/auth-guard.js';
import { openEnvelope } from '../../src/node/open.js';
import { SharedKeySealer } from '../../src/node/seal.js';
import type { RelayFile, RelayStorage } from '../../src/relay/storage.js';
import { fromRanges } from '../../src/transfer/chunk-codec.js';
import { STATUS } from '../../src/transfer/control.js';
import { type IncomingState, incomingStatePath } from '../../src/transfer/incoming-state.js';
import type { PeerId } from '../../src/util/peer-id.js';
import { OneRelay } from '../hostile/world.js';

test('every status lists only chunks the state file already records', async () => {
  const world = new OneRelay(60_000);
  try {
    const alice = await world.peer('alice');
    const sealer = new SharedKeySealer({ key: parseKey(world.key), now: () => world.clock.now(), worker: false });
    const opener = {
      self: 'alice' as PeerId,
      sealer,
      guard: new AuthGuard({ clock: world.clock, logger: silentLogger }),
      logger: silentLogger,
    };
    const ahead: string[] = [];
    let checked = 0;
    let bobHome = '';
    const watching = (relay: RelayStorage): RelayStorage =>
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
                  const home = new HomeLayout(bobHome, 'bob' as PeerId);
                  const path = incomingStatePath(home, 'alice' as PeerId, tid);
                  recorded = fromRanges((JSON.parse(readFileSync(path, 'utf8')) as IncomingState).have);
                } catch {
                  // No state file yet: nothing is recorded.
                }
                checked += 1;
                for (const index of fromRanges(status?.have ?? [])) {
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
    const bob = await world.peer('bob', { relay: watching(world.relay('bob')) });
    bobHome = bob.home.root;
    const src = await world.dir();
    const out = await world.dir();
    const file = join(src, 'many-chunks.bin');
    writeFileSync(file, Buffer.alloc(200 * 1024, 9));
    const receiving = bob.receiveFiles({ out, count: 1, signal: world.signal });
    await alice.sendFiles('bob', [file], { blockSize: 1024, signal: world.signal });
    await receiving;
    assert.ok(checked > 5, `only ${checked} statuses were seen`);
    assert.deepEqual(ahead.slice(0, 5), []);
  } finally {
    await world.close();
  }
});
