/**
 * The identity commands through the real CLI and a real relay folder: dmp id, peers, verify,
 * trust, rotate, pair-key, and what dmp init refuses.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { describeResult, jsonLines, type RunResult, runDmp, startDmp } from '../support/cli.js';
import { removeTree } from '../support/files.js';
import { processFixture } from '../support/fixture.js';

const { peers } = processFixture('dmp-identity-cli-');

function ok(result: RunResult): RunResult {
  assert.equal(result.code, 0, describeResult(result));
  return result;
}

const FINGERPRINT = /^\d{5}( \d{5}){5}$/;

describe('dmp identity commands', () => {
  test('id, peers, verify with the fingerprint read out, pair-key that Python uses; keys are mode 600', async () => {
    const p = await peers();
    const bobId = jsonLines(ok(await runDmp(['id', '--json'], { home: p.bob })).stdout)[0] as { fingerprint: string };
    assert.match(bobId.fingerprint, FINGERPRINT);
    const keyFile = join(p.bob, 'state', 'bob', 'identity.json');
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);

    // Nothing sent yet: alice pins bob when she first looks.
    const listed = jsonLines(ok(await runDmp(['peers', '--json'], { home: p.alice })).stdout) as {
      peer: string;
      standing: string;
      fingerprint?: string;
    }[];
    assert.deepEqual(listed, [{ peer: 'bob', standing: 'pinned', fingerprint: bobId.fingerprint }]);

    const wrong = await runDmp(['verify', 'bob', '11111 22222 33333 44444 55555 66666'], { home: p.alice });
    assert.equal(wrong.code, 1, describeResult(wrong));
    assert.match(wrong.stderr, /does not match bob's identity/);
    ok(await runDmp(['verify', 'bob', ...bobId.fingerprint.split(' ')], { home: p.alice }));
    const human = ok(await runDmp(['peers'], { home: p.alice })).stdout;
    assert.match(human, /^bob +verified +\d{5}/);

    // A message, opened by Python with the key dmp pair-key prints (same key on both sides).
    ok(await runDmp(['send', 'bob', 'through python'], { home: p.alice }));
    const pairKey = ok(await runDmp(['pair-key', 'bob'], { home: p.alice })).stdout.trim();
    assert.equal(ok(await runDmp(['pair-key', 'alice'], { home: p.bob })).stdout.trim(), pairKey);
    const script =
      'import sys, json\nfrom cryptography.fernet import Fernet\n' +
      "print(json.loads(Fernet(sys.argv[1].encode()).decrypt(open(sys.argv[2], 'rb').read()))['body'])";
    const file = join(p.relay, 'alice', 'bob', 'msg-000000000001.dmp');
    assert.equal(execFileSync('python3', ['-c', script, pairKey, file], { encoding: 'utf8' }).trim(), 'through python');
  });

  test('a replaced identity is refused by every command until dmp trust --accept-new; dmp rotate passes silently', async () => {
    const p = await peers();
    ok(await runDmp(['send', 'bob', 'first'], { home: p.alice }));
    ok(await runDmp(['listen', '--count', '1', '--timeout', '20'], { home: p.bob }));
    // bob's machine is replaced: a new home, the same relay key, the same id.
    await removeTree(p.bob);
    const taken = await runDmp(['init', '--relay', p.relay, '--id', 'bob', `--key=${p.key}`], { home: p.bob });
    assert.equal(taken.code, 1, describeResult(taken));
    assert.match(taken.stderr, /the id bob is taken in this relay by another identity \(fingerprint \d{5}/);
    ok(await runDmp(['init', '--relay', p.relay, '--id', 'bob', `--key=${p.key}`, '--force'], { home: p.bob }));

    const refused = await runDmp(['send', 'bob', 'second'], { home: p.alice });
    assert.equal(refused.code, 1, describeResult(refused));
    assert.match(refused.stderr, /bob's identity changed \(now [\d ]+, was [\d ]+\): .*dmp trust bob --accept-new/);
    const ping = await runDmp(['ping', 'bob', '-c', '1', '-W', '1'], { home: p.alice });
    assert.equal(ping.code, 1, describeResult(ping));
    assert.match(ping.stderr, /bob's identity changed/);
    const listed = jsonLines(ok(await runDmp(['peers', '--json'], { home: p.alice })).stdout)[0] as {
      standing: string;
    };
    assert.equal(listed.standing, 'changed');

    ok(await runDmp(['trust', 'bob', '--accept-new'], { home: p.alice }));
    ok(await runDmp(['send', 'bob', 'second'], { home: p.alice }));

    const before = (jsonLines(ok(await runDmp(['id', '--json'], { home: p.bob })).stdout)[0] as { fingerprint: string })
      .fingerprint;
    ok(await runDmp(['rotate'], { home: p.bob }));
    const after = (jsonLines(ok(await runDmp(['id', '--json'], { home: p.bob })).stdout)[0] as { fingerprint: string })
      .fingerprint;
    assert.notEqual(after, before);
    // The new bob never had 'first' (sealed for the identity he replaced): his ack asks for it,
    // and alice's next send seals it again from her log. 'second' was sealed before bob's
    // rotation and still opens; 'third' after it.
    const listening = startDmp(['listen', '--count', '3', '--timeout', '40', '--json'], { home: p.bob });
    const sent = ok(await runDmp(['send', 'bob', 'third', '--wait', '--timeout', '30'], { home: p.alice }));
    assert.doesNotMatch(sent.stderr, /changed/);
    const received = jsonLines(ok(await listening.done).stdout) as { text: string }[];
    assert.deepEqual(
      received.map((message) => message.text),
      ['first', 'second', 'third'],
    );
  });

  test('--strict accepts nothing from an unverified peer', async () => {
    const p = await peers();
    const strict = await runDmp(['send', 'bob', 'hello', '--strict'], { home: p.alice });
    assert.equal(strict.code, 1, describeResult(strict));
    assert.match(
      strict.stderr,
      /bob is not verified \(strict\): compare fingerprints, then dmp verify bob FINGERPRINT/,
    );
  });
});
