/**
 * dmp who and dmp logout through real processes and a real relay folder, with a real daemon
 * publishing presence.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { describeResult, jsonLines, killAll, makePeers, runDmp, startDmp } from '../support/cli.js';
import { waitFor } from '../support/wait.js';

const cleanups: (() => Promise<void>)[] = [];

after(async () => {
  killAll();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

interface Who {
  peer: string;
  online: boolean;
  lastSeen?: string;
}

describe('dmp who', () => {
  test('a running daemon is online; stopped, it is gone from who and listed by who --since', async () => {
    const p = await makePeers('dmp-who-');
    cleanups.push(p.cleanup);
    const who = async (...args: string[]) => {
      const result = await runDmp(['who', '--json', ...args], { home: p.bob });
      assert.equal(result.code, 0, describeResult(result));
      return jsonLines(result.stdout) as Who[];
    };
    assert.deepEqual(await who(), []);
    const daemon = startDmp(['daemon'], { home: p.alice, timeoutMs: 60_000 });
    await waitFor(
      'alice to be online for bob',
      async () => (await who()).some((entry) => entry.peer === 'alice'),
      20_000,
    );
    const human = await runDmp(['who'], { home: p.bob });
    assert.match(human.stdout, /^alice +online +last seen \d+ s ago\n$/);
    daemon.kill('SIGTERM');
    const stopped = await daemon.done;
    assert.equal(stopped.code, 0, describeResult(stopped));
    // The daemon said goodbye: offline at once, not after the expiry.
    const nobody = await runDmp(['who'], { home: p.bob });
    assert.equal(nobody.code, 0, describeResult(nobody));
    assert.equal(nobody.stdout, '');
    assert.match(nobody.stderr, /nobody is online/);
    const since = await who('--since', '10m');
    assert.deepEqual(
      since.map((entry) => `${entry.peer} ${entry.online}`),
      ['alice false'],
    );
    assert.ok(since[0]?.lastSeen && Date.now() - Date.parse(since[0].lastSeen) < 60_000, JSON.stringify(since));
    const bad = await runDmp(['who', '--since', 'yesterday'], { home: p.bob });
    assert.equal(bad.code, 2, describeResult(bad));
    assert.match(bad.stderr, /invalid --since 'yesterday'/);
  });
});

describe('dmp broadcast', () => {
  test('every member gets it once, marked as a broadcast, next to direct messages', async () => {
    const p = await makePeers('dmp-bcast-');
    cleanups.push(p.cleanup);
    const sent = await runDmp(['broadcast', 'hello', 'everyone'], { home: p.alice });
    assert.equal(sent.code, 0, describeResult(sent));
    assert.match(sent.stderr, /1 broadcast sent \(#1\)/);
    assert.equal((await runDmp(['send', 'bob', 'just for bob'], { home: p.alice })).code, 0);
    const listened = await runDmp(['listen', '--count', '2', '--timeout', '20', '--json'], { home: p.bob });
    assert.equal(listened.code, 0, describeResult(listened));
    const got = (jsonLines(listened.stdout) as { text: string; broadcast: boolean }[]).map(
      (message) => `${message.text} ${message.broadcast}`,
    );
    assert.deepEqual(got.sort(), ['hello everyone true', 'just for bob false']);
    // Shown once: a second listen has nothing new.
    const again = await runDmp(['listen', '--timeout', '2'], { home: p.bob });
    assert.equal(again.stdout, '');
    assert.equal((await runDmp(['broadcast', 'two'], { home: p.alice })).code, 0);
    const human = await runDmp(['listen', '--count', '1', '--timeout', '20'], { home: p.bob });
    assert.equal(human.stdout, 'alice (to all): two\n');
  });
});
