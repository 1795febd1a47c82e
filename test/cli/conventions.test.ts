/**
 * What users of other command-line tools expect of `dmp` and `dftp`, through real processes:
 * --version, an example on every help page, shell completion, one style and one exit status for
 * usage errors, `--` ending the options, Ctrl-C ending every command with 130 and one line, and
 * messages of several lines that cannot be mistaken for other senders.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  type Background,
  cliPath,
  completeJsonLines,
  describeBackground,
  describeResult,
  jsonLines,
  lines,
  type Program,
  REPO_ROOT,
  type RunResult,
  runCli,
  runDftp,
  runDmp,
  runProcess,
  settleAll,
  stackLines,
} from '../support/cli.js';
import { fileSha256, KiB, listTree, writeRandomFile } from '../support/files.js';
import { processFixture } from '../support/fixture.js';
import { waitFor } from '../support/wait.js';

const fx = processFixture('dmp-conventions-');
const { peers, tempDir, bg } = fx;

function assertExit(result: RunResult, code: number): void {
  assert.equal(result.timedOut, false, `hard timeout: ${describeResult(result)}`);
  assert.equal(result.signal, null, describeResult(result));
  assert.equal(result.code, code, describeResult(result));
}

/** Exit 2 with exactly `line` on stderr, nothing on stdout, no stack trace. */
function assertUsage(result: RunResult, line: string): void {
  assertExit(result, 2);
  assert.deepEqual(lines(result.stderr), [line], describeResult(result));
  assert.equal(result.stdout, '', describeResult(result));
}

describe('--version, help and completion', () => {
  test('--version prints the version in package.json, for both commands', async () => {
    const { version } = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const program of ['dmp', 'dftp'] as const) {
      const result = await runCli(program, ['--version']);
      assertExit(result, 0);
      assert.equal(result.stdout, `${version}\n`, describeResult(result));
      assert.equal(result.stderr, '', describeResult(result));
    }
  });

  test('every --help page shows at least one example of its own command', async () => {
    const pages: [Program, string[]][] = [
      ['dmp', []],
      ['dmp', ['keygen']],
      ['dmp', ['init']],
      ['dmp', ['send']],
      ['dmp', ['listen']],
      ['dmp', ['ping']],
      ['dmp', ['daemon']],
      ['dmp', ['status']],
      ['dmp', ['completion']],
      ['dftp', []],
      ['dftp', ['send']],
      ['dftp', ['receive']],
      ['dftp', ['completion']],
    ];
    const results = await Promise.all(pages.map(([program, command]) => runCli(program, [...command, '--help'])));
    for (const [index, result] of results.entries()) {
      const [program, command] = pages[index] ?? ['dmp', []];
      assertExit(result, 0);
      const text = result.stdout.split('\n');
      const at = text.indexOf('Examples:');
      assert.ok(at >= 0, `no Examples: section\n${describeResult(result)}`);
      // Example lines are indented and start with the command they show (a pipe may come first).
      const examples = text.slice(at + 1).filter((line) => line.startsWith('  '));
      const shown = [program, ...command].join(' ');
      assert.ok(
        examples.some((line) => line.includes(`${shown} `)),
        `no example of '${shown}'\n${describeResult(result)}`,
      );
    }
  });

  test('completion: the bash script completes commands and options of dmp and dftp', async () => {
    const dir = await tempDir();
    // The script calls the command by name, as an installed package provides it on PATH.
    const bin = join(dir, 'bin');
    await mkdir(bin);
    for (const program of ['dmp', 'dftp'] as const) {
      await writeFile(join(bin, program), `#!/bin/sh\nexec "${process.execPath}" "${cliPath(program)}" "$@"\n`);
      await chmod(join(bin, program), 0o755);
    }
    const script = [
      'set -e',
      'source <(dmp completion)',
      'source <(dftp completion)',
      // What bash does on <Tab>: the words typed so far, then the completion function.
      // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's own ${...}, not a template.
      'complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); "_$1_yargs_completions"; printf "%s\\n" "${COMPREPLY[@]}"; echo --; }',
      'complete_words dmp s',
      'complete_words dmp ping --c',
      'complete_words dftp send --bl',
      'complete_words dftp ""',
    ].join('\n');
    const result = await runProcess('bash', ['-c', script], {
      env: { PATH: `${bin}:${process.env.PATH ?? ''}`, SHELL: '/bin/bash' },
      timeoutMs: 60_000,
    });
    assertExit(result, 0);
    const [commands, pingOptions, sendOptions, dftpCommands] = result.stdout.split('--\n').map((part) => lines(part));
    assert.deepEqual(commands?.sort(), ['send', 'status'], describeResult(result));
    assert.ok(pingOptions?.includes('--count'), describeResult(result));
    assert.deepEqual(sendOptions, ['--block-size'], describeResult(result));
    assert.deepEqual(
      dftpCommands?.sort(),
      ['cancel', 'completion', 'get', 'list', 'ls', 'put', 'receive', 'rm', 'send', 'serve'],
      describeResult(result),
    );
  });
});

describe('usage errors', () => {
  test('one line in one style, exit 2: what to give, never the parser’s own words', async () => {
    const home = join(await tempDir(), 'home');
    const cases: [Program, string[], string][] = [
      ['dftp', ['send'], 'dftp send: give a peer and at least one file (see dftp send --help)'],
      ['dftp', ['send', 'bob'], 'dftp send: give a peer and at least one file (see dftp send --help)'],
      ['dmp', ['send'], 'dmp send: give a peer and a message (see dmp send --help)'],
      ['dmp', ['ping'], 'dmp ping: give the peer to ping (see dmp ping --help)'],
      [
        'dftp',
        ['receive', '--count', 'x'],
        "dftp receive: invalid --count 'x': give a whole number of at least 1 (see dftp receive --help)",
      ],
      [
        'dmp',
        ['listen', '-c', '1.5'],
        "dmp listen: invalid --count '1.5': give a whole number of at least 1 (see dmp listen --help)",
      ],
      [
        'dmp',
        ['ping', 'bob', '-W', 'soon'],
        "dmp ping: invalid --timeout 'soon': give a number of seconds, 0 or more (see dmp ping --help)",
      ],
      [
        'dmp',
        ['send', 'bob', 'hi', '--poll', 'fast'],
        "dmp send: invalid --poll 'fast': give a whole number of milliseconds, at least 1 (see dmp send --help)",
      ],
      ['dftp', ['receive', '--out'], 'dftp receive: --out needs a value (see dftp receive --help)'],
      ['dmp', ['send', 'bob', 'hi', '--bogus'], 'dmp send: unknown option --bogus (see dmp send --help)'],
      ['dmp', ['listen', 'alice'], "dmp listen: unexpected argument 'alice' (see dmp listen --help)"],
      ['dftp', ['frobnicate'], "dftp: unknown command 'frobnicate' (see dftp --help)"],
      ['dmp', [], 'dmp: give a command (see dmp --help)'],
    ];
    const results = await Promise.all(cases.map(([program, args]) => runCli(program, args, { home })));
    for (const [index, result] of results.entries()) assertUsage(result, cases[index]?.[2] ?? '');
  });

  test('a malformed key is a usage error like a malformed id: exit 2, one line', async () => {
    const p = await peers();
    const file = join(p.root, 'note.txt');
    await writeFile(file, 'note\n');
    const results = await Promise.all([
      runDmp(['send', 'bob', 'hi'], { home: p.alice, env: { DMP_KEY: 'not-a-key' } }),
      runDmp(['send', 'bob', 'hi', '--key', 'c2hvcnQ='], { home: p.alice }),
      runDftp(['send', 'bob', file], { home: p.alice, env: { DMP_KEY: 'not-a-key' } }),
      runDmp(['send', 'bob', 'hi'], { home: p.alice, env: { DMP_ID: 'Not An Id' } }),
      runDftp(['receive', '--count', '1'], { home: p.bob, env: { DMP_ID: 'Not An Id' } }),
    ]);
    const [badKey, shortKey, dftpKey, badId, dftpId] = results;
    for (const result of results) {
      assertExit(result, 2);
      assert.deepEqual(stackLines(result.stderr), [], describeResult(result));
      assert.equal(lines(result.stderr).length, 1, describeResult(result));
    }
    for (const result of [badKey, shortKey]) {
      assert.match(result?.stderr ?? '', /^dmp send: the key is not a Fernet key .*\(see dmp send --help\)\n$/);
    }
    assert.match(dftpKey?.stderr ?? '', /^dftp send: the key is not a Fernet key .*\(see dftp send --help\)\n$/);
    assert.match(badId?.stderr ?? '', /^dmp send: invalid id "Not An Id".*\(see dmp send --help\)\n$/);
    assert.match(dftpId?.stderr ?? '', /^dftp receive: invalid id "Not An Id".*\(see dftp receive --help\)\n$/);
    assert.deepEqual(
      // Only the identity dmp init published: no message.
      (await listTree(join(p.relay, 'alice'))).filter((name) => name.endsWith('.dmp') && name !== 'identity.dmp'),
      [],
      'nothing was sent',
    );
  });
});

describe('-- ends the options', () => {
  test('dftp send bob -- -rf -bs sends the files named -rf and -bs', { timeout: 90_000 }, async () => {
    const p = await peers();
    const src = join(p.root, 'src');
    await mkdir(src);
    await writeRandomFile(join(src, '-rf'), 40 * KiB);
    await writeRandomFile(join(src, '-bs'), 30 * KiB);
    const out = join(p.root, 'out');
    const receiver = bg('dftp', ['receive', '--from', 'alice', '--out', out, '--count', '2', '--json'], {
      home: p.bob,
    });
    // Options before `--` still count (-bs 16k is the block size); nothing after it is an option.
    const sender = bg('dftp', ['send', 'bob', '-bs', '16k', '--json', '--', '-rf', '-bs'], {
      home: p.alice,
      cwd: src,
    });
    const [sent, got] = await settleAll([sender, receiver] as const);
    assertExit(sent, 0);
    assertExit(got, 0);
    assert.deepEqual(await listTree(out), ['-bs', '-rf']);
    for (const name of ['-rf', '-bs']) {
      assert.equal(await fileSha256(join(out, name)), await fileSha256(join(src, name)), name);
    }
    const done = jsonLines<{ event: string; file: string }>(sent.stdout).filter((event) => event.event === 'done');
    assert.deepEqual(done.map((event) => event.file).sort(), ['-bs', '-rf']);
  });

  test('dmp send bob -- sends words that look like options as text', async () => {
    const p = await peers();
    assertExit(await runDmp(['send', 'bob', '--', '-x', '-', '--lines'], { home: p.alice }), 0);
    assertExit(await runDmp(['send', 'bob', 'one', '--', '--two'], { home: p.alice }), 0);
    const got = await runDmp(['listen', '--count', '2', '--json', '--timeout', '15'], { home: p.bob });
    assertExit(got, 0);
    assert.deepEqual(
      jsonLines<{ text: string }>(got.stdout).map((message) => message.text),
      ['-x - --lines', 'one --two'],
    );
  });

  test('an operand after -- is named as typed when a command takes none', async () => {
    const home = join(await tempDir(), 'home');
    const [receive, command] = await Promise.all([
      runDftp(['receive', '--', '-x'], { home }),
      runDmp(['--', 'send'], { home }),
    ]);
    assertUsage(receive, "dftp receive: unexpected argument '-x' (see dftp receive --help)");
    assertUsage(command, "dmp: unknown command 'send' (see dmp --help)");
  });
});

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
