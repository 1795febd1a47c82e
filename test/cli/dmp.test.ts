/**
 * The `dmp` command line through real processes: every peer has its own DMP_HOME, and they talk
 * through a temporary relay folder.
 */
import assert from 'node:assert/strict';
import { chmod, chown, lstat, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  type Background,
  copyRunnable,
  describeResult,
  jsonLines,
  lines,
  type Peers,
  type RunOptions,
  type RunResult,
  runDmp,
  stackLines,
} from '../support/cli.js';
import { removeTree } from '../support/files.js';
import { processFixture } from '../support/fixture.js';
import { sleep } from '../support/wait.js';

const KEY_PATTERN = /^[A-Za-z0-9_-]{43}=$/;

interface Received {
  from: string;
  seq: number;
  text: string;
  sentAt: string;
}

const fixture = processFixture('dmp-cli-');
const peers = (): Promise<Peers> => fixture.peers();
/** Starts a background dmp that the fixture kills after the test. */
const bg = (args: readonly string[], options?: RunOptions): Background => fixture.bg('dmp', args, options);

function assertExit(result: RunResult, code: number): void {
  assert.equal(result.timedOut, false, `hard timeout: ${describeResult(result)}`);
  assert.equal(result.code, code, describeResult(result));
}

function assertNoStack(result: RunResult): void {
  assert.deepEqual(stackLines(result.stderr), [], `stack trace printed: ${describeResult(result)}`);
  assert.deepEqual(stackLines(result.stdout), [], `stack trace printed: ${describeResult(result)}`);
}

/** Exit `code` with exactly one line on stderr matching `pattern`, and no stack trace. */
function assertOneLineFailure(result: RunResult, code: number, pattern: RegExp): void {
  assertExit(result, code);
  assertNoStack(result);
  const errorLines = lines(result.stderr);
  assert.equal(errorLines.length, 1, `expected one line on stderr: ${describeResult(result)}`);
  assert.match(errorLines[0] ?? '', pattern, describeResult(result));
}

async function msgFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((name) => /^msg-\d{12}\.dmp$/.test(name)).sort();
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('dmp keygen and init', () => {
  test('keygen prints a Fernet key', async () => {
    const [one, two] = await Promise.all([runDmp(['keygen']), runDmp(['keygen'])]);
    for (const result of [one, two]) {
      assertExit(result, 0);
      assert.match(result.stdout, /^[A-Za-z0-9_-]{43}=\n$/, describeResult(result));
      assert.equal(Buffer.from(result.stdout.trim(), 'base64url').length, 32);
    }
    assert.notEqual(one.stdout, two.stdout, 'two keys are different');
  });

  test('init creates the peer folder and a 0600 config, generates a key, and is safe to rerun', async () => {
    const root = await fixture.tempDir();
    const relay = join(root, 'relay');
    const home = join(root, 'home');
    await mkdir(relay);

    const first = await runDmp(['init', '--relay', relay, '--id', 'alice'], { home });
    assertExit(first, 0);
    assertNoStack(first);
    const key = first.stdout.trim();
    assert.match(key, KEY_PATTERN, 'the generated key is printed on stdout');
    assert.equal(lines(first.stdout).length, 1, 'only the key on stdout');
    assert.match(first.stderr, /key/i, 'a hint about the key on stderr');
    assert.ok((await stat(join(relay, 'alice'))).isDirectory(), '<relay>/alice/ exists');
    const configPath = join(home, 'config.json');
    assert.equal((await stat(configPath)).mode & 0o777, 0o600, 'config is private');
    const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
    assert.equal(config.key, key);
    assert.equal(config.id, 'alice');

    const again = await runDmp(['init', '--relay', relay, '--id', 'alice'], { home });
    assertExit(again, 0);
    assertNoStack(again);
    assert.equal(again.stdout, '', 'no new key on a rerun');
    const kept = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
    assert.equal(kept.key, key, 'the key is kept');
    assert.equal((await stat(configPath)).mode & 0o777, 0o600);
    assert.ok((await stat(join(relay, 'alice'))).isDirectory());
  });

  test('init takes the key from --key-file and from DMP_KEY', async () => {
    const p = await peers();
    const keyFile = join(p.root, 'relay.key');
    await writeFile(keyFile, `${p.key}\n`, { mode: 0o600 });
    const carol = join(p.root, 'home-carol');
    const dave = join(p.root, 'home-dave');

    const fromFile = await runDmp(['init', '--relay', p.relay, '--id', 'carol', '--key-file', keyFile], {
      home: carol,
    });
    assertExit(fromFile, 0);
    assert.equal(fromFile.stdout, '', 'no key generated');
    const carolConfig = await readFile(join(carol, 'config.json'), 'utf8');
    assert.ok(carolConfig.includes(keyFile) || carolConfig.includes(p.key), carolConfig);

    const fromEnv = await runDmp(['init', '--relay', p.relay, '--id', 'dave'], { home: dave, env: { DMP_KEY: p.key } });
    assertExit(fromEnv, 0);
    assert.equal(fromEnv.stdout, '', 'no key generated');
    const daveConfig = JSON.parse(await readFile(join(dave, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(daveConfig.key, p.key);

    // Both really hold the shared key: bob can read what they send.
    assertExit(await runDmp(['send', 'bob', 'from', 'carol'], { home: carol }), 0);
    assertExit(await runDmp(['send', 'bob', 'from', 'dave'], { home: dave }), 0);
    const got = await runDmp(['listen', '--count', '2', '--timeout', '15', '--json'], { home: p.bob });
    assertExit(got, 0);
    const texts = jsonLines<Received>(got.stdout)
      .map((message) => `${message.from}:${message.text}`)
      .sort();
    assert.deepEqual(texts, ['carol:from carol', 'dave:from dave']);
  });

  test('init --key KEY accepts a key that starts with a dash', async () => {
    // A valid Fernet key (32 bytes of url-safe base64); generate_key() makes one like it once in 64.
    const key = '-PvOfngynMwbGerW7txbAYx3_AxIq5oOprP3YDNRhcE=';
    assert.equal(Buffer.from(key, 'base64url').length, 32);
    const root = await fixture.tempDir();
    const relay = join(root, 'relay');
    const home = join(root, 'home');
    await mkdir(relay);
    const result = await runDmp(['init', '--relay', relay, '--id', 'alice', '--key', key], { home });
    assertExit(result, 0);
    assert.ok(await exists(join(home, 'config.json')), `no config written: ${describeResult(result)}`);
    const config = JSON.parse(await readFile(join(home, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config.key, key);
  });

  test('flags beat the environment, which beats the config', async () => {
    const p = await peers();
    // id: config says alice, DMP_ID says carol, --id says dave. The sender writes in <relay>/<id>/.
    const viaEnv = await runDmp(['send', 'bob', 'via env'], { home: p.alice, env: { DMP_ID: 'carol' } });
    assertExit(viaEnv, 0);
    assert.equal((await msgFiles(join(p.relay, 'carol', 'bob'))).length, 1, 'DMP_ID beats the config');
    assert.equal((await msgFiles(join(p.relay, 'alice', 'bob'))).length, 0);
    const viaFlag = await runDmp(['send', 'bob', 'via flag', '--id', 'dave'], {
      home: p.alice,
      env: { DMP_ID: 'carol' },
    });
    assertExit(viaFlag, 0);
    assert.equal((await msgFiles(join(p.relay, 'dave', 'bob'))).length, 1, '--id beats DMP_ID');
    assert.equal((await msgFiles(join(p.relay, 'carol', 'bob'))).length, 1);

    // relay: DMP_RELAY pointing nowhere beats the config; --relay beats DMP_RELAY.
    const nowhere = join(p.root, 'nowhere');
    const envRelay = await runDmp(['send', 'bob', 'x'], { home: p.alice, env: { DMP_RELAY: nowhere } });
    assertOneLineFailure(envRelay, 1, /nowhere/);
    const flagRelay = await runDmp(['send', 'bob', 'x', '--relay', p.relay], {
      home: p.alice,
      env: { DMP_RELAY: nowhere },
    });
    assertExit(flagRelay, 0);

    // key: a malformed DMP_KEY beats the config's good key (a usage error); --key beats DMP_KEY.
    const envKey = await runDmp(['send', 'bob', 'x'], { home: p.alice, env: { DMP_KEY: 'not-a-key' } });
    assertOneLineFailure(envKey, 2, /key/i);
    const flagKey = await runDmp(['send', 'bob', 'x', `--key=${p.key}`], {
      home: p.alice,
      env: { DMP_KEY: 'not-a-key' },
    });
    assertExit(flagKey, 0);

    // home: --home beats DMP_HOME.
    const elsewhere = join(p.root, 'empty-home');
    const flagHome = await runDmp(['send', 'bob', 'x', '--home', p.alice], { home: elsewhere });
    assertExit(flagHome, 0);
  });
});

describe('dmp ping', () => {
  test('answers come from a running listen; text and --json output', async () => {
    const p = await peers();
    const listener = bg(['listen'], { home: p.bob, timeoutMs: 60_000 });
    const result = await runDmp(['ping', 'bob', '-c', '3', '-i', '0.1'], { home: p.alice });
    assertExit(result, 0);
    const replies = lines(result.stdout).filter((line) => /time=\d+(\.\d+)? ms/.test(line));
    assert.equal(replies.length, 3, describeResult(result));
    assert.match(result.stdout, /min\/avg\/max = \d+(\.\d+)?\/\d+(\.\d+)?\/\d+(\.\d+)? ms/, describeResult(result));

    const json = await runDmp(['ping', 'bob', '-c', '3', '-i', '0.1', '--json'], { home: p.alice });
    assertExit(json, 0);
    const objects = jsonLines<{ seq: number; rttMs: number }>(json.stdout);
    assert.equal(objects.length, 3, describeResult(json));
    assert.deepEqual(
      objects.map((reply) => reply.seq),
      [1, 2, 3],
    );
    for (const reply of objects) {
      assert.equal(typeof reply.rttMs, 'number');
      assert.ok(Number.isFinite(reply.rttMs) && reply.rttMs >= 0, JSON.stringify(reply));
    }
    assert.equal(listener.child.exitCode, null, 'listen is still running');
  });

  test('exits 1 when nobody answers', async () => {
    const p = await peers();
    const result = await runDmp(['ping', 'bob', '-c', '1', '--timeout', '0.5'], { home: p.alice });
    assertExit(result, 1);
    assertNoStack(result);
    assert.equal(lines(result.stderr).length, 1, describeResult(result));
    assert.match(result.stderr, /bob/);
  });
});

describe('dmp send and listen', () => {
  const COUNT = 1000;
  const texts = Array.from({ length: COUNT }, (_, i) => `line ${i + 1}: héllo ✓ ${'x'.repeat(i % 13)}`);
  const input = `${texts.join('\n')}\n`;

  function assertAllDelivered(result: RunResult): void {
    assertExit(result, 0);
    const messages = jsonLines<Received>(result.stdout);
    assert.equal(messages.length, COUNT, `got ${messages.length} messages`);
    let previous = 0;
    for (const [i, message] of messages.entries()) {
      assert.equal(message.from, 'alice');
      assert.ok(message.seq > previous, `seq ${message.seq} after ${previous}: out of order or repeated`);
      previous = message.seq;
      assert.equal(message.text, texts[i], `message ${i + 1}`);
      assert.ok(!Number.isNaN(Date.parse(message.sentAt)), `sentAt ${message.sentAt}`);
    }
  }

  test('1,000 lines with listen running first: all arrive in order, once; acked files are deleted', async () => {
    const p = await peers();
    const listener = bg(['listen', '--count', String(COUNT), '--json', '--timeout', '40'], {
      home: p.bob,
      timeoutMs: 45_000,
    });
    await sleep(300);
    const sent = await runDmp(['send', 'bob', '--lines'], { home: p.alice, input, timeoutMs: 40_000 });
    assertExit(sent, 0);
    assertAllDelivered(await listener.done);

    // Sending again processes bob's ack first: everything acknowledged is gone from the relay.
    const more = await runDmp(['send', 'bob', 'one more'], { home: p.alice });
    assertExit(more, 0);
    assert.deepEqual(await msgFiles(join(p.relay, 'alice', 'bob')), ['msg-000000001001.dmp']);
  });

  test('1,000 lines sent before anyone listens: all arrive in order, once', async () => {
    const p = await peers();
    const sent = await runDmp(['send', 'bob', '--lines'], { home: p.alice, input, timeoutMs: 40_000 });
    assertExit(sent, 0);
    assert.equal((await msgFiles(join(p.relay, 'alice', 'bob'))).length, COUNT, 'all waiting in the relay');
    const got = await runDmp(['listen', '--count', String(COUNT), '--json', '--timeout', '40'], {
      home: p.bob,
      timeoutMs: 45_000,
    });
    assertAllDelivered(got);

    // A waited send with bob listening: alice processes the acks and keeps nothing stale.
    const listener = bg(['listen', '--count', '1', '--json', '--timeout', '20'], { home: p.bob });
    const waited = await runDmp(['send', 'bob', '--wait', '--timeout', '20', 'after'], { home: p.alice });
    assertExit(waited, 0);
    const last = await listener.done;
    assertExit(last, 0);
    assert.deepEqual(
      jsonLines<Received>(last.stdout).map((message) => [message.seq, message.text]),
      [[COUNT + 1, 'after']],
    );
    assert.deepEqual(await msgFiles(join(p.relay, 'alice', 'bob')), [], 'no stale message files');
  });

  test('send - sends stdin as one message, line breaks intact', async () => {
    const p = await peers();
    const text = 'first line\n  second, indented\n\nfourth after a blank line\ttab\n';
    const sent = await runDmp(['send', 'bob', '-'], { home: p.alice, input: text });
    assertExit(sent, 0);
    const got = await runDmp(['listen', '--count', '1', '--json', '--timeout', '15'], { home: p.bob });
    assertExit(got, 0);
    const messages = jsonLines<Received>(got.stdout);
    assert.equal(messages.length, 1);
    assert.equal(messages[0]?.text, text);
    assert.equal(messages[0]?.from, 'alice');
  });

  test('send --wait --timeout 1 exits 1 when nobody listens', async () => {
    const p = await peers();
    const result = await runDmp(['send', 'bob', '--wait', '--timeout', '1', 'anyone?'], { home: p.alice });
    assertOneLineFailure(result, 1, /bob/);
  });

  test('listen --timeout 1 --count 1 exits 1 when nothing comes', async () => {
    const p = await peers();
    const result = await runDmp(['listen', '--timeout', '1', '--count', '1'], { home: p.bob });
    assertOneLineFailure(result, 1, /./);
    assert.equal(result.stdout, '');
  });

  test('listen --timeout without --count listens that long and exits 0, with or without messages', async () => {
    const p = await peers();
    assertExit(await runDmp(['send', 'bob', 'one'], { home: p.alice }), 0);
    assertExit(await runDmp(['send', 'bob', 'two'], { home: p.alice }), 0);
    const got = await runDmp(['listen', '--timeout', '2'], { home: p.bob });
    assertExit(got, 0);
    assert.equal(got.stdout, 'alice: one\nalice: two\n');
    assert.equal(got.stderr, '', describeResult(got));
    assert.ok(got.elapsedMs >= 2000, `it stopped after ${got.elapsedMs} ms`);
    const quiet = await runDmp(['listen', '--timeout', '1'], { home: p.bob });
    assertExit(quiet, 0);
    assert.equal(quiet.stdout, '');
    // With --count it is a deadline: fewer messages than asked for is a failure.
    assertExit(await runDmp(['send', 'bob', 'three'], { home: p.alice }), 0);
    const short = await runDmp(['listen', '--timeout', '2', '--count', '2'], { home: p.bob });
    assertOneLineFailure(short, 1, /1 of 2 messages arrived in time/);
    assert.equal(short.stdout, 'alice: three\n');
  });

  test('listen prints "from: text" lines', async () => {
    const p = await peers();
    assertExit(await runDmp(['send', 'bob', 'hello', 'there'], { home: p.alice }), 0);
    const got = await runDmp(['listen', '--from', 'alice', '--count', '1', '--timeout', '15'], { home: p.bob });
    assertExit(got, 0);
    assert.equal(got.stdout, 'alice: hello there\n');
  });
});

describe('dmp authentication failures', () => {
  test('init refuses a key that opens no identity in the relay; forced, the peers refuse each other by name', async () => {
    const p = await peers();
    // bob starts over with a key of his own: init sees that it opens none of the identities.
    await removeTree(p.bob);
    const refused = await runDmp(['init', '--relay', p.relay, '--id', 'bob'], { home: p.bob });
    assertExit(refused, 1);
    assertNoStack(refused);
    assert.match(refused.stderr, /this key does not open the identities of alice, bob in this relay: wrong key\?/);
    // The taken id is refused too: bob's identity in the relay is not this new home's.
    const forcedKey = await runDmp(['init', '--relay', p.relay, '--id', 'bob', '--force'], { home: p.bob });
    assertExit(forcedKey, 0);
    assert.notEqual(forcedKey.stdout.trim(), p.key);
    // alice is told at once, in one line, and nothing is written for bob.
    const send = await runDmp(['send', 'bob', 'secret'], { home: p.alice });
    assertExit(send, 1);
    assertNoStack(send);
    assert.match(
      send.stderr,
      /^dmp: bob's identity does not open with this relay key \(another key, or a stranger\)\n$/,
    );
    // listen does not give up on the relay for one peer's folder: it names alice once and ends at its timeout.
    const result = await runDmp(['listen', '--count', '1', '--timeout', '5'], { home: p.bob });
    assertExit(result, 1);
    assertNoStack(result);
    assert.match(result.stderr, /messages arrived in time/);
    const matching = lines(result.stderr).filter((line) =>
      /^dmp: alice's identity does not open with this relay key/.test(line),
    );
    assert.equal(matching.length, 1, describeResult(result));
    assert.equal(result.stdout, '');
  });

  test('a tampered message file is rejected and published again by the sender', async () => {
    const p = await peers();
    const texts = ['one', 'two', 'three'];
    for (const text of texts) assertExit(await runDmp(['send', 'bob', text], { home: p.alice }), 0);
    const file = join(p.relay, 'alice', 'bob', 'msg-000000000002.dmp');
    const original = await readFile(file, 'utf8');
    // Swap two different characters in the middle: still base64, but the HMAC fails.
    const chars = [...original];
    let at = Math.floor(chars.length / 2);
    while (at + 1 < chars.length && chars[at] === chars[at + 1]) at += 1;
    const [a, b] = [chars[at], chars[at + 1]];
    assert.ok(a !== undefined && b !== undefined && a !== b);
    chars[at] = b;
    chars[at + 1] = a;
    const tampered = chars.join('');
    assert.notEqual(tampered, original);
    assert.match(tampered.trim(), /^[A-Za-z0-9_=-]+$/);
    await writeFile(file, tampered);

    const listener = bg(['listen', '--count', '3', '--json', '--timeout', '30'], { home: p.bob, timeoutMs: 40_000 });
    const sender = bg(['send', 'bob', '--wait', '--timeout', '20', 'fourth'], { home: p.alice, timeoutMs: 40_000 });
    const got = await listener.done;
    // bob stops after 3; message 4 may have come after that, so a second listen picks it up and
    // acknowledges it (from the inbox or the relay), and alice's wait can end.
    const rest = await runDmp(['listen', '--count', '1', '--json', '--timeout', '20'], {
      home: p.bob,
      timeoutMs: 30_000,
    });
    const sent = await sender.done;
    assertExit(got, 0);
    assertNoStack(got);
    assertExit(rest, 0);
    assertExit(sent, 0);
    assertNoStack(sent);
    assert.deepEqual(
      jsonLines<Received>(rest.stdout).map((message) => [message.seq, message.text]),
      [[4, 'fourth']],
    );
    assert.deepEqual(await msgFiles(join(p.relay, 'alice', 'bob')), [], 'no stale message files');
    assert.deepEqual(
      jsonLines<Received>(got.stdout).map((message) => [message.from, message.seq, message.text]),
      [
        ['alice', 1, 'one'],
        ['alice', 2, 'two'],
        ['alice', 3, 'three'],
      ],
    );
    const rejected = lines(got.stderr).filter((line) => line.includes('msg-000000000002.dmp'));
    assert.ok(rejected.length >= 1, `the rejected file is named: ${describeResult(got)}`);
    assert.ok(
      rejected.some((line) => line.includes('alice')),
      `the peer is named: ${describeResult(got)}`,
    );
  });
});

describe('dmp failures and usage', () => {
  test('a read-only relay exits 1 with one line', async () => {
    const p = await peers();
    let user: RunOptions = {};
    if (process.getuid?.() === 0) {
      // Root writes through any mode, so the child runs as nobody. Nobody may not be able to enter
      // the folder of this checkout (a clone in root's home folder, mode 700): it runs a copy of
      // the CLI in a temp folder everyone can read, and owns its home.
      const runnable = await copyRunnable();
      fixture.onEnd(runnable.cleanup);
      user = { uid: 65534, gid: 65534, root: runnable.root };
      await chmod(p.root, 0o755);
      const chownTree = async (path: string): Promise<void> => {
        await chown(path, 65534, 65534);
        if ((await lstat(path)).isDirectory()) {
          for (const name of await readdir(path)) await chownTree(join(path, name));
        }
      };
      await chownTree(p.alice);
      await chmod(p.alice, 0o777);
      const probe = await runDmp(['--help'], user);
      assertExit(probe, 0);
    }
    for (const dir of [join(p.relay, 'alice'), join(p.relay, 'bob'), p.relay]) await chmod(dir, 0o555);
    const result = await runDmp(['send', 'bob', 'hi'], { home: p.alice, ...user });
    assertOneLineFailure(result, 1, /not writable/);
    assert.deepEqual(await msgFiles(join(p.relay, 'alice', 'bob')), [], 'nothing was published');
    await chmod(p.relay, 0o755);
  });

  test('dmp daemon --inbox that cannot take files exits 1 with one line, before it starts', async () => {
    const p = await peers();
    const file = join(p.root, 'a-file');
    await writeFile(file, '');
    const result = await runDmp(['daemon', '--inbox', join(file, 'sub')], { home: p.bob, timeoutMs: 30_000 });
    assertOneLineFailure(result, 1, /^dmp: cannot write into .*a-file\/sub: ENOTDIR$/);
    assert.equal(await readFile(join(p.bob, 'daemon.log'), 'utf8').catch(() => ''), '');
  });

  test('a missing relay folder exits 1 with one line', async () => {
    const p = await peers();
    const missing = join(p.root, 'gone');
    const result = await runDmp(['send', 'bob', 'hi', '--relay', missing], { home: p.alice });
    assertOneLineFailure(result, 1, /gone/);
    const init = await runDmp(['init', '--relay', missing, '--id', 'carol'], { home: join(p.root, 'home-carol') });
    assertOneLineFailure(init, 1, /gone/);
    assert.equal(await exists(missing), false);
  });

  test('an unknown peer exits 1 naming it', async () => {
    const p = await peers();
    const result = await runDmp(['send', 'carol', 'hi'], { home: p.alice });
    assertOneLineFailure(result, 1, /carol/);
    const ping = await runDmp(['ping', 'carol', '-c', '1'], { home: p.alice });
    assertOneLineFailure(ping, 1, /carol/);
  });

  test('no key configured exits 1 with one line', async () => {
    const p = await peers();
    const fresh = join(p.root, 'fresh-home');
    const result = await runDmp(['send', 'bob', 'hi', '--relay', p.relay, '--id', 'carol'], { home: fresh });
    assertOneLineFailure(result, 1, /key/);
    const nothing = await runDmp(['listen', '--count', '1'], { home: fresh });
    assertOneLineFailure(nothing, 1, /relay/);
  });

  test('bad arguments exit 2 with one line', async () => {
    const root = await fixture.tempDir();
    const home = join(root, 'home');
    const cases = [['send'], ['ping', 'bob', '-c', '0'], ['bogus'], [], ['listen', '--count', '0']];
    const results = await Promise.all(cases.map((args) => runDmp(args, { home })));
    for (const result of results) {
      assertOneLineFailure(result, 2, /^dmp( [a-z]+)?: .+ \(see dmp( [a-z]+)? --help\)$/);
      assert.equal(result.stdout, '', describeResult(result));
    }
  });

  test('--help exits 0 for every command', async () => {
    const commands = [[], ['keygen'], ['init'], ['send'], ['listen'], ['ping']];
    const results = await Promise.all(commands.map((command) => runDmp([...command, '--help'])));
    for (const result of results) {
      assertExit(result, 0);
      assertNoStack(result);
      assert.match(result.stdout, /dmp/, describeResult(result));
    }
  });
});
