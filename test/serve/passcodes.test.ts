/**
 * Protected files through the simulated sync: get and rm with the right and the wrong passcode,
 * what the server keeps (a salted hash, in DMP_HOME, never the passcode), the lockout after
 * three wrong passcodes and its expiry on the manual clock, doubling; and a request delivered
 * twice, which counts once and is never acted on twice.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MemoryRelay } from '../../src/relay/memory-relay.js';
import { end, only, openResponse, refusal, type Scene, scene, sealRequest } from '../support/serve.js';
import { ALICE, CAROL } from '../support/three-peers.js';

const RIGHT = 'open sesame';

/** bob puts `name` protected with RIGHT. */
async function protect(s: Scene, name: string, content: string): Promise<void> {
  const source = join(s.base, name);
  await writeFile(source, content);
  const put = only(await s.bob.putFiles('alice', [source], { protect: true, passcode: async () => RIGHT }));
  assert.equal(put.error, undefined, put.error?.message);
}

/** Every file under `dir`, whole, as text. */
async function everything(dir: string): Promise<string> {
  let text = '';
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) text += await readFile(join(entry.parentPath, entry.name), 'latin1');
  }
  return text;
}

describe('protected files', () => {
  test('get and rm need the passcode; the server keeps only a salted hash, outside the folder', async () => {
    const s = await scene({ allowPut: true, allowDelete: true });
    try {
      await protect(s, 'secret.txt', 'the secret\n');
      const entry = (await s.carol.listFolder('alice')).entries.find((e) => e.name === 'secret.txt');
      assert.deepEqual(Object.keys(entry ?? {}).sort(), ['mtimeMs', 'name', 'protected', 'sha256', 'size', 'type']);
      assert.equal(entry?.protected, true);

      const out = join(s.base, 'out');
      const none = only(await s.carol.getFiles('alice', ['secret.txt'], { out }));
      assert.equal(none.error?.code, 'DENIED');
      assert.equal(none.error?.data.reason, 'passcode-needed');
      const wrong = only(await s.carol.getFiles('alice', ['secret.txt'], { out, passcode: async () => 'sesame?' }));
      assert.equal(wrong.error?.data.reason, 'denied');
      assert.equal(wrong.error?.message, 'alice: secret.txt: denied');
      assert.equal(wrong.error?.data.retryAfterMs, undefined);
      assert.deepEqual(await readdir(out).catch(() => []), []);
      const right = only(await s.carol.getFiles('alice', ['secret.txt'], { out, passcode: async () => RIGHT }));
      assert.equal(right.error, undefined, right.error?.message);
      assert.equal(await readFile(join(out, 'secret.txt'), 'utf8'), 'the secret\n');

      // What the server keeps: a hash with its salt and parameters, in alice's home.
      const home = s.world.homes.alice ?? '';
      const [store] = (await readdir(home, { recursive: true })).filter((path) => path.endsWith('passcodes.json'));
      assert.ok(store, 'no passcode store in alice’s home');
      const records = JSON.parse(await readFile(join(home, store), 'utf8')) as Record<string, Record<string, unknown>>;
      assert.deepEqual(Object.keys(records), ['secret.txt']);
      assert.deepEqual(Object.keys(records['secret.txt'] ?? {}).sort(), ['N', 'hash', 'p', 'r', 'salt']);
      assert.equal(Buffer.from(String(records['secret.txt']?.salt), 'base64').length, 16);
      assert.equal((await stat(join(home, store))).mode & 0o777, 0o600);
      for (const where of [home, s.dir]) assert.equal((await everything(where)).includes(RIGHT), false, where);
      assert.deepEqual(
        (await readdir(s.dir)).filter((name) => name.includes('passcode')),
        [],
      );

      const denied = await refusal(s.carol.removeFile('alice', 'secret.txt', { passcode: async () => 'nope' }));
      assert.equal(denied.data.reason, 'denied');
      assert.equal(await readFile(join(s.dir, 'secret.txt'), 'utf8'), 'the secret\n');
      assert.equal(await s.carol.removeFile('alice', 'secret.txt', { passcode: async () => RIGHT }), 'secret.txt');
      await assert.rejects(stat(join(s.dir, 'secret.txt')), { code: 'ENOENT' });
      assert.deepEqual(JSON.parse(await readFile(join(home, store), 'utf8')), {});
    } finally {
      await end(s);
    }
  });

  test('three wrong passcodes lock that peer out of that file, for a minute, then two', async () => {
    const s = await scene({ allowPut: true });
    try {
      await protect(s, 'vault.txt', 'gold\n');
      const out = join(s.base, 'out');
      const attempt = async (peer: 'bob' | 'carol', passcode: string) =>
        only(await s[peer].getFiles('alice', ['vault.txt'], { out, passcode: async () => passcode })).error;

      for (const passcode of ['wrong 1', 'wrong 2']) {
        const error = await attempt('carol', passcode);
        assert.equal(error?.message, 'alice: vault.txt: denied');
      }
      const locking = await attempt('carol', 'wrong 3');
      assert.match(locking?.message ?? '', /^alice: vault\.txt: denied, try again after 60 s$/);
      const lockMs = Number(locking?.data.retryAfterMs);
      assert.ok(lockMs > 55_000 && lockMs <= 60_000, `locked for ${lockMs} ms`);
      // Locked: the right passcode is refused just the same, and nothing tells the two apart.
      const whileLocked = await attempt('carol', RIGHT);
      assert.equal(whileLocked?.data.reason, 'denied');
      assert.match(whileLocked?.message ?? '', /^alice: vault\.txt: denied, try again after \d+ s$/);
      // Per peer: bob is not locked out.
      assert.equal(await attempt('bob', RIGHT), undefined);
      await s.world.clock.sleep(30_000);
      assert.equal((await attempt('carol', RIGHT))?.data.reason, 'denied');
      await s.world.clock.sleep(31_000);
      // Expired; three more wrong ones lock again, twice as long.
      for (const passcode of ['wrong 4', 'wrong 5'])
        assert.equal((await attempt('carol', passcode))?.data.retryAfterMs, undefined);
      const again = await attempt('carol', 'wrong 6');
      assert.match(again?.message ?? '', /try again after 2 min$/);
      assert.ok(Number(again?.data.retryAfterMs) > 115_000, `locked for ${again?.data.retryAfterMs} ms`);
      await s.world.clock.sleep(121_000);
      assert.equal(await attempt('carol', RIGHT), undefined);
      assert.equal(await readFile(join(out, 'vault.txt'), 'utf8'), 'gold\n');
    } finally {
      await end(s);
    }
  });

  test('a request delivered twice counts once and is never acted on twice', async () => {
    const s = await scene({ allowPut: true, allowDelete: true });
    try {
      await protect(s, 'vault.txt', 'gold\n');
      await protect(s, 'spare.txt', 'silver\n');
      const key = await s.carol.pairKey('alice');
      const relay = new MemoryRelay(s.world.replicas.carol, CAROL, { clock: s.world.clock });
      const replica = s.world.replicas.carol;
      /** Publishes a request as carol would (a fresh token each time) and waits for its answer. */
      const publish = async (id: string, body: Record<string, unknown>) => {
        const data = sealRequest(key, 'carol', 'alice', { id, ...body }, s.world.clock.now());
        await relay.publish(ALICE, [{ name: `serve-req-${id}.dmp`, data }]);
      };
      const answer = async (id: string) => {
        const path = `alice/carol/serve-res-${id}-000.dmp`;
        for (let tries = 0; tries < 600 && !replica.files.has(path); tries += 1) await s.world.clock.sleep(100);
        const file = replica.files.get(path);
        assert.ok(file, `no answer to ${id}`);
        return openResponse(key, file.data);
      };
      const withdraw = async (id: string) => {
        await relay.remove(ALICE, [`serve-req-${id}.dmp`]);
        const path = `alice/carol/serve-res-${id}-000.dmp`;
        for (let tries = 0; tries < 600 && replica.files.has(path); tries += 1) await s.world.clock.sleep(100);
        assert.equal(replica.files.has(path), false, 'the answer stayed after its request went');
      };

      const wrong = randomBytes(8).toString('hex');
      const request = { op: 'get', name: 'vault.txt', passcode: 'wrong' };
      await publish(wrong, request);
      assert.deepEqual((await answer(wrong)).error, { code: 'denied', message: 'vault.txt: denied' });
      // The same request again: a fresh token (the client asking again), then after it was
      // read and removed (a sync tool bringing an old copy back).
      await publish(wrong, request);
      assert.equal(((await answer(wrong)).error as { code: string }).code, 'denied');
      await withdraw(wrong);
      await publish(wrong, request);
      assert.equal(((await answer(wrong)).error as { code: string }).code, 'denied');
      await withdraw(wrong);
      // Counted once: two more wrong passcodes are needed to lock carol out.
      const out = join(s.base, 'out');
      const second = only(await s.carol.getFiles('alice', ['vault.txt'], { out, passcode: async () => 'wrong again' }));
      assert.equal(second.error?.data.retryAfterMs, undefined, 'locked after two wrong passcodes');
      const third = only(await s.carol.getFiles('alice', ['vault.txt'], { out, passcode: async () => 'and again' }));
      assert.ok(Number(third.error?.data.retryAfterMs) > 0, 'not locked after three wrong passcodes');

      // A delete delivered twice deletes once, and answers the same both times.
      const remove = randomBytes(8).toString('hex');
      await publish(remove, { op: 'rm', name: 'spare.txt', passcode: RIGHT });
      const first = await answer(remove);
      assert.equal(first.ok, true);
      await withdraw(remove);
      await writeFile(join(s.dir, 'spare.txt'), 'a new file under the old name\n');
      await publish(remove, { op: 'rm', name: 'spare.txt', passcode: RIGHT });
      assert.deepEqual(await answer(remove), first);
      assert.equal(await readFile(join(s.dir, 'spare.txt'), 'utf8'), 'a new file under the old name\n');
    } finally {
      await end(s);
    }
  });
});
