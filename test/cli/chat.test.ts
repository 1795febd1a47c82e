/**
 * dmp chat in a real terminal (tmux): two sessions over a real relay folder exchange direct
 * messages and a broadcast, an incoming message lands while a line is half typed and the typed
 * text survives (on screen and in what is then sent), /who, /block, a wrong command, /quit
 * publishing offline; colour off under NO_COLOR; and plain lines when input is not a terminal.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { describeResult, jsonLines, runDmp } from '../support/cli.js';
import { processFixture } from '../support/fixture.js';
import { waitFor } from '../support/wait.js';
import { cliLine, hasTmux, openTerminal, type Terminal } from './tmux.js';

const fx = processFixture('dmp-chat-');
const { peers } = fx;
const terminals: Terminal[] = [];

async function chat(home: string, args: string[], env: Record<string, string> = {}): Promise<Terminal> {
  const terminal = await openTerminal(100, 30, env);
  terminals.push(terminal);
  await terminal.type(cliLine('dmp', ['chat', ...args], { DMP_HOME: home, ...env }));
  return terminal;
}

/** The last row with anything on it: where the prompt and the typed text are. */
async function promptRow(terminal: Terminal): Promise<string> {
  const rows = (await terminal.screen()).filter((row) => row.trim() !== '');
  return rows.at(-1) ?? '';
}

afterEach(async () => {
  for (const terminal of terminals.splice(0)) await terminal.close();
});

const skip = !(await hasTmux()) && 'tmux is not installed';

describe('dmp chat in a terminal', { skip }, () => {
  test('two sessions talk; a half-typed line survives an incoming message; /who, /block, /quit', async () => {
    const p = await peers();
    const alice = await chat(p.alice, ['bob']);
    await alice.waitFor('alice in the chat', /chat as alice with bob/);
    const bob = await chat(p.bob, ['alice']);
    await bob.waitFor('bob in the chat', /chat as bob with alice/);
    await bob.waitFor('alice online for bob', /online: alice|alice is online/, 20_000);
    await alice.waitFor('bob online for alice', /bob is online/, 20_000);

    // A direct message, each way.
    await alice.type('hello bob');
    await bob.waitFor('alice’s message', /^\d\d:\d\d alice: hello bob$/m);
    await alice.waitFor('alice’s own line', /^\d\d:\d\d alice → bob: hello bob$/m);
    // Taken off the prompt: the echo of what was typed is replaced by the chat line.
    assert.ok(!(await alice.history()).some((row) => row.includes('bob> hello bob')));

    // An incoming message while bob has half a line typed.
    await bob.keys('-l', 'half typed words');
    await bob.waitFor('the typed text', /alice> half typed words$/m);
    await alice.type('are you there?');
    await bob.waitFor('the incoming line', /alice: are you there\?/);
    assert.equal(await promptRow(bob), 'alice> half typed words');
    const rows = await bob.screen();
    const incoming = rows.findIndex((row) => row.includes('alice: are you there?'));
    const prompt = rows.indexOf('alice> half typed words');
    assert.ok(incoming >= 0 && prompt > incoming, `the message above the prompt:\n${rows.join('\n')}`);
    // The text survived in the line being edited, not just on screen: finishing it sends it all.
    await bob.type(' and the rest');
    await alice.waitFor('the finished line', /bob: half typed words and the rest$/m);

    // A broadcast reaches bob marked as one.
    await alice.type('/all hello everyone');
    await bob.waitFor('the broadcast', /alice \(to all\): hello everyone/);

    // /who, and a wrong command that only earns a hint.
    await bob.type('/who');
    await bob.waitFor('who', /^ +alice +online +last seen/m);
    await bob.type('/frobnicate');
    await bob.waitFor('a hint', /unknown command \/frobnicate: \/help lists them/);
    await bob.type('/msg');
    await bob.waitFor('a usage line', /usage: \/msg PEER TEXT/);

    // /block: alice's next message is acknowledged and dropped, never shown.
    await bob.type('/block alice');
    await bob.waitFor('the block', /alice is now blocked/);
    await alice.type('can you hear me?');
    await alice.waitFor('sent', /alice → bob: can you hear me\?/);
    const outbox = join(p.relay, 'alice', 'bob');
    await waitFor(
      'bob to acknowledge (and drop) it',
      async () => (await readdir(outbox)).every((name) => !name.startsWith('msg-')),
      20_000,
    );
    assert.ok(!(await bob.history()).some((row) => row.includes('can you hear me')));

    // /quit says offline: alice's chat tells, and who agrees at once (no expiry wait).
    await bob.type('/unblock alice');
    await bob.waitFor('the unblock', /alice is now not blocked/);
    await bob.type('/quit');
    await bob.waitFor('goodbye', /bob is offline; bye/);
    await alice.waitFor('bob gone', /bob went offline/, 20_000);
    const who = await runDmp(['who', '--json'], { home: p.alice });
    assert.equal(who.code, 0, describeResult(who));
    assert.deepEqual(jsonLines(who.stdout), []);
  });

  test('answers pings, sends a file with /send, and shows what a daemon beside it receives', async () => {
    const p = await peers();
    const file = join(p.root, 'notes.txt');
    await writeFile(file, 'the notes\n'.repeat(1000));
    const alice = await chat(p.alice, ['bob']);
    const bob = await chat(p.bob, ['alice']);
    await alice.waitFor('alice in the chat', /chat as alice/);
    await bob.waitFor('bob in the chat', /chat as bob/);
    // The chat's own loop answers a ping.
    const ping = await runDmp(['ping', 'bob', '--count', '1', '--timeout', '20'], { home: p.alice });
    assert.equal(ping.code, 0, describeResult(ping));
    await alice.type(`/send bob ${file}`);
    await alice.waitFor('the file sent', /sent notes\.txt to bob \(9\.8 KiB, verified\)/);
    await bob.waitFor('the file received', /received notes\.txt from alice \(9\.8 KiB, verified\) in \S+notes\.txt/);
    assert.equal(await readFile(join(p.bob, 'inbox', 'alice', 'notes.txt'), 'utf8'), 'the notes\n'.repeat(1000));
    await bob.type('/quit');
    await bob.waitFor('goodbye', /bob is offline; bye/);

    // Beside the daemon: the daemon receives, the chat shows it from the daemon's inbox.
    const daemon = fx.bg('dmp', ['daemon'], { home: p.bob, timeoutMs: 120_000 });
    await waitFor(
      'the daemon',
      async () => (await readFile(join(p.bob, 'daemon.log'), 'utf8').catch(() => '')).includes('daemon-started'),
      20_000,
      { describe: () => daemon.stdout() + daemon.stderr() },
    );
    const again = await chat(p.bob, ['alice']);
    await again.waitFor('bob in the chat again', /chat as bob/);
    await alice.type('to the daemon and the chat');
    await again.waitFor('the message in the chat', /alice: to the daemon and the chat/);
    const log = await readFile(join(p.bob, 'daemon.log'), 'utf8');
    assert.match(log, /"messages-received"/);
    daemon.kill('SIGTERM');
    assert.equal((await daemon.done).code, 0);
  });

  test('no colour under NO_COLOR; colour otherwise', async () => {
    const p = await peers();
    const plain = await chat(p.alice, ['bob'], { NO_COLOR: '1' });
    const coloured = await chat(p.bob, ['alice']);
    await plain.waitFor('alice in the chat', /chat as alice/);
    await coloured.waitFor('bob in the chat', /chat as bob/);
    await plain.type('hi bob');
    await coloured.type('hi alice');
    await plain.waitFor('bob’s message', /bob: hi alice/);
    await coloured.waitFor('alice’s message', /alice: hi bob/);
    const sgr = /\x1b\[[0-9;]*m/;
    assert.ok(!(await plain.screen({ escapes: true })).some((row) => sgr.test(row)));
    assert.ok((await coloured.screen({ escapes: true })).some((row) => sgr.test(row)));
  });
});

describe('dmp chat without a terminal', () => {
  test('reads commands from a pipe and prints plain lines', async () => {
    const p = await peers();
    assert.equal((await runDmp(['send', 'alice', 'from before'], { home: p.bob })).code, 0);
    // Shown once by listen; the chat's /history shows it again.
    const listened = await runDmp(['listen', '--count', '1', '--timeout', '20'], { home: p.alice });
    assert.equal(listened.stdout, 'bob: from before\n', describeResult(listened));
    const result = await runDmp(['chat', 'bob'], {
      home: p.alice,
      input: '/history\nhello from a script\n/nonsense\n/quit\n',
      timeoutMs: 30_000,
    });
    assert.equal(result.code, 0, describeResult(result));
    assert.doesNotMatch(result.stdout, /\x1b\[/);
    assert.match(result.stdout, /^-- chat as alice with bob/m);
    assert.match(result.stdout, /^bob> \/history$/m);
    assert.match(result.stdout, /^\[\d\d:\d\d\] bob: from before$/m);
    assert.match(result.stdout, /alice → bob: hello from a script/);
    assert.match(result.stdout, /unknown command \/nonsense/);
    assert.match(result.stdout, /-- alice is offline; bye\n$/);
    // What the script said was sent for real.
    const heard = await runDmp(['listen', '--count', '1', '--timeout', '20', '--json'], { home: p.bob });
    assert.equal(heard.code, 0, describeResult(heard));
    assert.deepEqual(
      jsonLines(heard.stdout).map((message) => message.text),
      ['hello from a script'],
    );
  });
});
