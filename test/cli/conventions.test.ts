/**
 * What users of other command-line tools expect of `dmp` and `dftp`, through real processes:
 * messages of several lines that cannot be mistaken for other senders.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { describeResult, killAll, makePeers, type Peers, type RunResult, runDmp } from '../support/cli.js';

const cleanups: (() => Promise<void>)[] = [];

async function peers(): Promise<Peers> {
  const made = await makePeers('dmp-conventions-');
  cleanups.push(made.cleanup);
  return made;
}

after(async () => {
  killAll();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function assertExit(result: RunResult, code: number): void {
  assert.equal(result.timedOut, false, `hard timeout: ${describeResult(result)}`);
  assert.equal(result.signal, null, describeResult(result));
  assert.equal(result.code, code, describeResult(result));
}

describe('messages of several lines', () => {
  test('dmp listen shows the sender on the first line and indents the others', async () => {
    const p = await peers();
    const text = 'first line\nbob: this line is alice’s too\n\n  indented\r\nlast\n';
    assertExit(await runDmp(['send', 'bob', '-'], { home: p.alice, input: text }), 0);
    assertExit(await runDmp(['send', 'bob', 'one line'], { home: p.alice }), 0);
    const got = await runDmp(['listen', '--count', '2', '--timeout', '15'], { home: p.bob });
    assertExit(got, 0);
    assert.equal(
      got.stdout,
      [
        'alice: first line',
        '  bob: this line is alice’s too',
        '  ',
        '    indented',
        '  last',
        'alice: one line',
        '',
      ].join('\n'),
      describeResult(got),
    );
    // Every line that does not start a message is indented: none can pass for another sender.
    for (const line of got.stdout.split('\n').filter((line) => line !== '')) {
      assert.ok(line.startsWith('alice: ') || line.startsWith('  '), `a line that could be a sender: ${line}`);
    }
  });
});
