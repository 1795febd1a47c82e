/**
 * `npm run demo` as a new user runs it: it must work, end with the unattended part (daemons,
 * dmp who, a broadcast, a file dropped into the outbox, dmp status), stay under a minute, and
 * print no colour when NO_COLOR is set.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { describeResult, killAll, REPO_ROOT, runProcess } from '../support/cli.js';

after(() => killAll());

describe('npm run demo', () => {
  test('runs to the end in under a minute, shows the daemons and dmp status, no colour under NO_COLOR', {
    timeout: 120_000,
  }, async () => {
    const result = await runProcess(process.execPath, [join(REPO_ROOT, 'dist', 'scripts', 'demo.js')], {
      env: { NO_COLOR: '1' },
      timeoutMs: 90_000,
    });
    assert.equal(result.code, 0, describeResult(result));
    assert.ok(result.elapsedMs < 60_000, `the demo took ${result.elapsedMs} ms`);
    const output = result.stdout + result.stderr;
    assert.doesNotMatch(output, /\x1b/, 'an escape sequence despite NO_COLOR');
    assert.match(output, /== bob has the file, byte for byte/, describeResult(result));
    assert.match(output, /== unattended: a daemon for each peer/, describeResult(result));
    assert.match(output, /^bob +online +last seen \d+ s ago$/m, describeResult(result));
    assert.match(output, /^alice \(to all\): the demo is almost over$/m, describeResult(result));
    assert.match(output, /^ {2}queued for bob: report\.pdf \(2 MiB\)/m, describeResult(result));
    assert.match(output, /^alice: daemon running \(pid \d+\)/m, describeResult(result));
    assert.match(output, /^ {2}bob +last heard \d+ s ago/m, describeResult(result));
  });
});
