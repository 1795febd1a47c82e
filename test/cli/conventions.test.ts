/**
 * What users of other command-line tools expect of `dmp` and `dftp`, through real processes:
 * Ctrl-C ending every command with 130 and one line, and messages of several lines that cannot
 * be mistaken for other senders.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import {
  type Background,
  completeJsonLines,
  describeBackground,
  describeResult,
  jsonLines,
  killAll,
  lines,
  makePeers,
  type Peers,
  type Program,
  type RunOptions,
  type RunResult,
  runDmp,
  settleAll,
  stackLines,
  startCli,
} from '../support/cli.js';
import { fileSha256, KiB, listTree, writeRandomFile } from '../support/files.js';
import { waitFor } from '../support/wait.js';

const cleanups: (() => Promise<void>)[] = [];
const background: Background[] = [];

async function peers(): Promise<Peers> {
  const made = await makePeers('dmp-conventions-');
  cleanups.push(made.cleanup);
  return made;
}

/** Starts a background dmp or dftp that the afterEach hook kills. */
function bg(program: Program, args: readonly string[], options: RunOptions = {}): Background {
  const started = startCli(program, args, options);
  background.push(started);
  return started;
}

afterEach(async () => {
  for (const child of background.splice(0)) {
    child.kill('SIGKILL');
    await child.done;
  }
});

after(async () => {
  killAll();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function assertExit(result: RunResult, code: number): void {
  assert.equal(result.timedOut, false, `hard timeout: ${describeResult(result)}`);
  assert.equal(result.signal, null, describeResult(result));
  assert.equal(result.code, code, describeResult(result));
}

describe('Ctrl-C', () => {
  const RESUME = 'interrupted; run the same command again to resume';

  /** Sends SIGINT (twice when `twice`) and checks: exit 130, the line last on stderr, no stack. */
  async function interrupt(child: Background, line: string, twice = false): Promise<RunResult> {
    child.kill('SIGINT');
    if (twice) child.kill('SIGINT');
    const result = await child.done;
    assertExit(result, 130);
    assert.equal(lines(result.stderr).at(-1), line, describeResult(result));
    // The daemon's JSON log aside, one line says what happened.
    assert.equal(
      lines(result.stderr).filter((text) => !text.startsWith('{') && /interrupted|cancelled/.test(text)).length,
      1,
      `one line about the interruption: ${describeResult(result)}`,
    );
    assert.deepEqual(stackLines(result.stderr), [], describeResult(result));
    return result;
  }

  test('dmp listen, ping, send --wait and daemon exit 130 with "dmp: interrupted"', { timeout: 120_000 }, async () => {
    const p = await peers();
    // Each waits for something that never comes; each is interrupted once it is seen waiting.
    const listen = bg('dmp', ['listen'], { home: p.bob });
    assertExit(await runDmp(['send', 'bob', 'are you there'], { home: p.alice }), 0);
    await waitFor('listen to show the message', () => listen.stdout().includes('alice: are you there'), 20_000, {
      describe: () => describeBackground(listen),
    });
    await interrupt(listen, 'dmp: interrupted');

    const ping = bg('dmp', ['ping', 'bob', '-c', '1', '-W', '60'], { home: p.alice });
    await waitFor('ping to start', () => ping.stdout().startsWith('PING bob'), 20_000, {
      describe: () => describeBackground(ping),
    });
    await interrupt(ping, 'dmp: interrupted');

    const waiting = bg('dmp', ['send', 'bob', '--wait', 'still there?'], { home: p.alice });
    await waitFor(
      'the message in the relay',
      async () => (await listTree(join(p.relay, 'alice', 'bob'))).includes('msg-000000000002.dmp'),
      20_000,
      { describe: () => describeBackground(waiting) },
    );
    await interrupt(waiting, 'dmp: interrupted');

    const daemon = bg('dmp', ['daemon'], { home: p.alice });
    await waitFor('the daemon to start', () => daemon.stderr().includes('"daemon-started"'), 30_000, {
      describe: () => describeBackground(daemon),
    });
    // A second Ctrl-C right after the first ends it just the same.
    await interrupt(daemon, 'dmp: interrupted', true);
  });

  test('dftp receive and send exit 130 and say to run the same command again, which resumes', {
    timeout: 120_000,
  }, async () => {
    const p = await peers();
    const file = join(p.root, 'data.bin');
    await writeRandomFile(file, 16 * 1024 * KiB);
    const out = join(p.root, 'out');
    const receiveArgs = ['receive', '--from', 'alice', '--out', out, '--count', '1', '--json'];
    const sendArgs = ['send', 'bob', file, '-bs', '64k', '--quota', '256k', '--json'];
    const receiver = bg('dftp', receiveArgs, { home: p.bob });
    const sender = bg('dftp', sendArgs, { home: p.alice });
    const progress = (child: Background) =>
      completeJsonLines<{ event: string }>(child.stdout()).some((event) => event.event === 'progress');
    await waitFor('bob to receive part of the file', () => progress(receiver), 30_000, {
      describe: () => `${describeBackground(receiver)}\n${describeBackground(sender)}`,
    });
    await interrupt(receiver, `dftp: ${RESUME}`);
    // The sender now waits for room in its quota, which bob no longer makes.
    await interrupt(sender, `dftp: ${RESUME}`);

    const [sent, got] = await settleAll([
      bg('dftp', sendArgs, { home: p.alice }),
      bg('dftp', receiveArgs, { home: p.bob }),
    ] as const);
    assertExit(sent, 0);
    assertExit(got, 0);
    assert.equal(await fileSha256(join(out, 'data.bin')), await fileSha256(file));
    const offer = jsonLines<{ event: string; resumed?: boolean }>(sent.stdout).find((event) => event.event === 'offer');
    assert.equal(offer?.resumed, true, `the rerun started over: ${describeResult(sent)}`);
  });
});

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
