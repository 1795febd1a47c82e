import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const root = new URL('../..', import.meta.url).pathname;

test('the package entry named in package.json exists and exports the public API', async () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    exports: { '.': { types: string; default: string } };
    bin: Record<string, string>;
  };
  const entry = join(root, pkg.exports['.'].default);
  assert.ok(existsSync(entry), `${pkg.exports['.'].default} does not exist`);
  assert.ok(existsSync(join(root, pkg.exports['.'].types)), `${pkg.exports['.'].types} does not exist`);
  for (const bin of Object.values(pkg.bin)) assert.ok(existsSync(join(root, bin)), `bin ${bin} does not exist`);
  const api = (await import(entry)) as Record<string, unknown>;
  for (const name of [
    'Peer',
    'DmpError',
    'generateKey',
    'parseKey',
    'parseSize',
    'runDaemon',
    'collectStatus',
    'FolderRelay',
  ]) {
    assert.equal(typeof api[name], 'function', `${name} is not exported`);
  }
});

test('the README example runs against the entry: two peers, one message, over a memory relay', async () => {
  const { Peer, MemoryRelay, RelayReplica, generateKey } = await import('../src/index.js');
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const base = await mkdtemp(join(tmpdir(), 'dmp-index-'));
  const replica = new RelayReplica();
  const key = generateKey();
  const alice = await Peer.open({
    relay: new MemoryRelay(replica, 'alice' as never),
    id: 'alice',
    key,
    home: join(base, 'a'),
  });
  const bob = await Peer.open({
    relay: new MemoryRelay(replica, 'bob' as never),
    id: 'bob',
    key,
    home: join(base, 'b'),
  });
  try {
    const texts: string[] = [];
    const listening = bob.listen({ count: 1, timeoutMs: 10_000, onMessage: (message) => texts.push(message.text) });
    await alice.send('bob', ['hello'], { wait: true, timeoutMs: 10_000 });
    assert.equal(await listening, 1);
    assert.deepEqual(texts, ['hello']);
  } finally {
    alice.close();
    bob.close();
    await rm(base, { recursive: true, force: true });
  }
});
