/**
 * Issue 10, "Lockout", through real processes and a real relay folder: a `dmp listen` that finds
 * bob's files sealed with another key quarantines bob and keeps it in DMP_HOME; `dmp who`,
 * `dmp peers` and `dmp status`, each its own process, say so with the reason and until when;
 * `dmp unquarantine` lifts it, and so does accepting bob's new identity.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { encryptText, generateKey, parseKey } from '../../src/crypto/fernet.js';
import { describeResult, jsonLines, type RunResult, runDmp } from '../support/cli.js';
import { removeTree } from '../support/files.js';
import { processFixture } from '../support/fixture.js';

const fx = processFixture('dmp-quarantine-cli-');

function ok(result: RunResult): RunResult {
  assert.equal(result.code, 0, describeResult(result));
  return result;
}

const SHOWN = /quarantined until \d\d:\d\d \(in (\d+ s|1 min)\): bob's files do not authenticate/;

describe('dmp quarantine', () => {
  test('who, peers and status show a quarantined peer with its reason and end; unquarantine and trust lift it', async () => {
    const p = await fx.peers();
    // Two messages in bob's folder for alice, sealed with a key that is not their pair key.
    const folder = join(p.relay, 'bob', 'alice');
    await mkdir(folder, { recursive: true });
    const otherKey = parseKey(generateKey());
    for (const seq of [1, 2]) {
      await writeFile(
        join(folder, `msg-00000000000${seq}.dmp`),
        encryptText(otherKey, Buffer.from(`{"v":2,"type":"msg","from":"bob","to":"alice","seq":${seq}}`)),
      );
    }
    const started = Date.now();
    const listened = ok(await runDmp(['listen', '--timeout', '3'], { home: p.alice }));
    assert.match(listened.stderr, /bob is quarantined for 1 min: bob's files do not authenticate/);

    const who = ok(await runDmp(['who'], { home: p.alice }));
    assert.match(who.stdout, /^bob +offline +not seen yet; quarantined until/);
    assert.match(who.stdout, SHOWN);
    const whoJson = jsonLines(ok(await runDmp(['who', '--json'], { home: p.alice })).stdout) as {
      peer: string;
      quarantined?: { reason: string; until: string };
    }[];
    assert.equal(whoJson.length, 1);
    assert.equal(whoJson[0]?.peer, 'bob');
    assert.match(whoJson[0]?.quarantined?.reason ?? '', /bob's files do not authenticate/);
    const until = Date.parse(whoJson[0]?.quarantined?.until ?? '');
    assert.ok(until > started && until <= Date.now() + 60_000, `until ${whoJson[0]?.quarantined?.until}`);

    const peers = ok(await runDmp(['peers'], { home: p.alice }));
    assert.match(peers.stdout, /^bob +pinned +[\d ]+\n {4}quarantined until/);
    assert.match(peers.stdout, SHOWN);
    const peersJson = jsonLines(ok(await runDmp(['peers', '--json'], { home: p.alice })).stdout);
    assert.deepEqual(peersJson[0]?.quarantined, whoJson[0]?.quarantined);

    const status = ok(await runDmp(['status'], { home: p.alice }));
    assert.match(status.stdout, SHOWN);
    const report = JSON.parse(ok(await runDmp(['status', '--json'], { home: p.alice })).stdout) as {
      peers: { peer: string; quarantined?: unknown }[];
    };
    assert.deepEqual(report.peers.find((peer) => peer.peer === 'bob')?.quarantined, whoJson[0]?.quarantined);

    const lifted = ok(await runDmp(['unquarantine', 'bob'], { home: p.alice }));
    assert.match(lifted.stderr, /bob is no longer quarantined/);
    const after = ok(await runDmp(['who'], { home: p.alice }));
    assert.equal(after.stdout, '');
    assert.doesNotMatch(ok(await runDmp(['status'], { home: p.alice })).stdout, /quarantined/);

    // Quarantined again by the same files; then bob's machine is replaced and alice accepts its
    // new identity: new keys, a new start.
    ok(await runDmp(['listen', '--timeout', '3'], { home: p.alice }));
    assert.match(ok(await runDmp(['who'], { home: p.alice })).stdout, SHOWN);
    await removeTree(p.bob);
    ok(await runDmp(['init', '--relay', p.relay, '--id', 'bob', `--key=${p.key}`, '--force'], { home: p.bob }));
    ok(await runDmp(['trust', 'bob', '--accept-new'], { home: p.alice }));
    assert.doesNotMatch(ok(await runDmp(['peers'], { home: p.alice })).stdout, /quarantined/);
  });
});
