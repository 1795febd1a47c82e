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
