/**
 * A served folder through the simulated sync: alice serves, bob and carol are clients, each on
 * its own copy of the relay, everything on one ManualClock. ls, get, put and rm; what is never
 * listed or served; allow-lists; a blocked peer; transfers that are not the client's own.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { end, only, refusal, scene } from '../support/serve.js';

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

describe('served folder', () => {
  test('ls, get, put and rm; hidden names, partial files, links, FIFOs are neither listed nor served', async () => {
    const s = await scene({ allowPut: true, allowDelete: true });
    try {
      const top = await s.bob.listFolder('alice');
      assert.equal(top.truncated, false);
      assert.deepEqual(
        top.entries.map((entry) => [entry.name, entry.type]),
        [
          ['a.txt', 'file'],
          ['sub', 'folder'],
        ],
      );
      const a = top.entries[0];
      assert.equal(a?.size, 6);
      assert.equal(a?.sha256, sha256('alpha\n'));
      assert.equal(a?.protected, undefined);
      const sub = await s.bob.listFolder('alice', 'sub');
      const b = await readFile(join(s.dir, 'sub', 'b.bin'));
      assert.deepEqual(
        sub.entries.map((entry) => [entry.name, entry.size, entry.sha256]),
        [['b.bin', b.length, sha256(b)]],
      );

      const out = join(s.base, 'out');
      const got = await s.bob.getFiles('alice', ['a.txt', 'sub/b.bin'], { out });
      assert.deepEqual(
        got.map((result) => [result.name, result.error?.message]),
        [
          ['a.txt', undefined],
          ['sub/b.bin', undefined],
        ],
      );
      assert.equal(await readFile(join(out, 'a.txt'), 'utf8'), 'alpha\n');
      assert.deepEqual(await readFile(join(out, 'b.bin')), b);

      const upload = join(s.base, 'up.txt');
      await writeFile(upload, 'uploaded by bob\n');
      const put = only(await s.bob.putFiles('alice', [upload]));
      assert.equal(put.error, undefined, put.error?.message);
      assert.equal(put.path, 'up.txt');
      assert.equal(await readFile(join(s.dir, 'up.txt'), 'utf8'), 'uploaded by bob\n');
      const listed = await s.carol.listFolder('alice');
      assert.equal(listed.entries.find((entry) => entry.name === 'up.txt')?.sha256, sha256('uploaded by bob\n'));

      assert.equal(await s.carol.removeFile('alice', 'up.txt'), 'up.txt');
      await assert.rejects(lstat(join(s.dir, 'up.txt')), { code: 'ENOENT' });

      // What is never served, and how it is refused.
      for (const [name, code, reason] of [
        ['escape.txt', 'DENIED', 'not-served'],
        ['inner-link.txt', 'DENIED', 'not-served'],
        ['pipe', 'DENIED', 'not-served'],
        ['.hidden', 'DENIED', 'not-served'],
        ['sub', 'DENIED', 'not-served'],
        ['../outside/secret.txt', 'PROTOCOL', 'bad-request'],
        ['/etc/passwd', 'PROTOCOL', 'bad-request'],
        ['missing.txt', 'NOT_FOUND', 'not-found'],
      ] as const) {
        const result = only(await s.bob.getFiles('alice', [name], { out }));
        assert.equal(result.error?.code, code, `${name}: ${result.error?.message}`);
        assert.equal(result.error?.data.reason, reason, name);
      }
      assert.equal((await refusal(s.bob.removeFile('alice', 'escape.txt'))).data.reason, 'not-served');
      assert.equal((await refusal(s.bob.listFolder('alice', 'escape.txt'))).code, 'DENIED');
      // Nothing of what was refused reached bob, and the link's target is untouched.
      assert.deepEqual((await readdir(out)).sort(), ['a.txt', 'b.bin']);
      assert.equal((await lstat(join(s.dir, 'escape.txt'))).isSymbolicLink(), true);
      // A put of a hidden name, or over an existing name on a server that replaces nothing.
      const hidden = join(s.base, '.profile');
      await writeFile(hidden, 'x');
      assert.equal(only(await s.bob.putFiles('alice', [hidden])).error?.data.reason, 'not-served');
      const again = join(s.base, 'a.txt');
      await writeFile(again, 'other');
      assert.equal(only(await s.bob.putFiles('alice', [again])).error?.data.reason, 'exists');
      assert.equal(await readFile(join(s.dir, 'a.txt'), 'utf8'), 'alpha\n');
    } finally {
      await end(s);
    }
  });

  test('one server per peer: a second one is refused while the first runs', async () => {
    const s = await scene();
    try {
      await s.bob.listFolder('alice');
      const second = await refusal(s.alice.serveFolder(s.base, { signal: s.stop.signal }));
      assert.equal(second.code, 'LOCKED');
      assert.equal((await s.bob.listFolder('alice')).entries.length, 2);
    } finally {
      await end(s);
    }
  });

  test('allow-lists: only the named peers; put and rm only when allowed', async () => {
    const s = await scene({ allow: ['bob'] });
    try {
      assert.equal((await s.bob.listFolder('alice')).entries.length, 2);
      const carol = await refusal(s.carol.listFolder('alice'));
      assert.equal(carol.code, 'DENIED');
      assert.equal(carol.data.reason, 'not-allowed');
      const upload = join(s.base, 'up.txt');
      await writeFile(upload, 'x');
      assert.equal(only(await s.bob.putFiles('alice', [upload])).error?.data.reason, 'not-allowed');
      assert.equal((await refusal(s.bob.removeFile('alice', 'a.txt'))).data.reason, 'not-allowed');
      assert.equal(await readFile(join(s.dir, 'a.txt'), 'utf8'), 'alpha\n');
      await assert.rejects(lstat(join(s.dir, 'up.txt')), { code: 'ENOENT' });
    } finally {
      await end(s);
    }
  });

  test('a blocked peer gets nothing: no answer at all, its requests time out', async () => {
    const s = await scene({ allowPut: true });
    try {
      assert.equal(await s.alice.block('carol'), true);
      const error = await refusal(s.carol.listFolder('alice', '', { timeoutMs: 10_000 }));
      assert.equal(error.code, 'TIMEOUT');
      assert.match(error.message, /no answer from alice in 10 s/);
      const out = join(s.base, 'out');
      assert.equal(only(await s.carol.getFiles('alice', ['a.txt'], { out, timeoutMs: 10_000 })).error?.code, 'TIMEOUT');
      await s.world.sync.idle();
      const answers = [...s.world.replicas.carol.files.keys()].filter((path) => path.startsWith('alice/carol/'));
      assert.deepEqual(answers, [], 'alice answered a blocked peer');
      // bob is served as before.
      assert.equal((await s.bob.listFolder('alice')).entries.length, 2);
      // A client that blocked the server is told so at once: its transfers would never be taken.
      assert.equal(await s.bob.block('alice'), true);
      const blocking = await refusal(s.bob.listFolder('alice'));
      assert.equal(blocking.code, 'USAGE');
      assert.match(blocking.message, /alice is blocked here: dmp unblock alice first/);
    } finally {
      await end(s);
    }
  });

  test('transfers of a get or a put go to them, never to a receiver that runs beside', async () => {
    const s = await scene({ allowPut: true });
    try {
      const stop = new AbortController();
      const inboxBob = join(s.base, 'inbox-bob');
      const inboxAlice = join(s.base, 'inbox-alice');
      const received: string[] = [];
      const receiving = [
        s.bob.receiveFiles({ out: inboxBob, signal: stop.signal, onEvent: (e) => received.push(`bob ${e.event}`) }),
        s.alice.receiveFiles({
          out: inboxAlice,
          signal: stop.signal,
          onEvent: (e) => received.push(`alice ${e.event}`),
        }),
      ];
      const out = join(s.base, 'out');
      assert.equal(only(await s.bob.getFiles('alice', ['a.txt'], { out })).error, undefined);
      const upload = join(s.base, 'up.bin');
      await writeFile(upload, Buffer.alloc(5000, 1));
      assert.equal(only(await s.bob.putFiles('alice', [upload])).error, undefined);
      assert.equal(await readFile(join(out, 'a.txt'), 'utf8'), 'alpha\n');
      assert.equal((await readFile(join(s.dir, 'up.bin'))).length, 5000);
      stop.abort();
      await Promise.all(receiving);
      assert.deepEqual(received, []);
      for (const inbox of [inboxBob, inboxAlice]) assert.deepEqual(await readdir(inbox).catch(() => []), []);
    } finally {
      await end(s);
    }
  });
});
