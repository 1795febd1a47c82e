/**
 * Issue 12 through the real commands: real folders, real FIFOs, links and sparse files, and
 * `dmp` / `dftp` as child processes. What a hostile peer or a careless sync tool leaves in the
 * relay never freezes, stops or slows the others.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { describeBackground, describeResult, type Peers, runDftp, runDmp, stackLines } from '../support/cli.js';
import { GiB } from '../support/files.js';
import { processFixture } from '../support/fixture.js';
import { waitFor } from '../support/wait.js';

const fixture = processFixture('dmp-hostile-cli-');
const peers = (): Promise<Peers> => fixture.peers();

/**
 * carol's folder for bob, filled with what must never stop bob: relay names that are a FIFO,
 * a folder, a link to a FIFO outside the relay, and sparse files of a gigabyte. carol is a
 * member (her identity opens with the relay key), so bob does read her folder: a stranger's
 * folder would not be read at all.
 */
async function hostileFolder(p: Peers): Promise<void> {
  const carol = await runDmp(['init', '--relay', p.relay, '--id', 'carol', `--key=${p.key}`], {
    home: join(p.root, 'home-carol'),
  });
  assert.equal(carol.code, 0, describeResult(carol));
  const dir = join(p.relay, 'carol', 'bob');
  await mkdir(dir, { recursive: true });
  const sparse = async (name: string) => {
    await writeFile(join(dir, name), '');
    await truncate(join(dir, name), GiB);
  };
  await sparse('msg-000000000001.dmp');
  execFileSync('mkfifo', [join(dir, 'msg-000000000002.dmp')]);
  await mkdir(join(dir, 'msg-000000000003.dmp'));
  await sparse('ack.dmp');
  execFileSync('mkfifo', [join(p.root, 'outside-fifo')]);
  await symlink(join(p.root, 'outside-fifo'), join(dir, 'ping-00000000000000ff.dmp'));
  await sparse('offer-0123456789abcdef.dmp');
  execFileSync('mkfifo', [join(dir, 'chunk-0123456789abcdef-00000000.dfc')]);
  await sparse('chunk-0123456789abcdef-00000001.dfc');
}

describe('a peer folder full of FIFOs, folders, links and sparse gigabytes', () => {
  test('dmp listen goes on: alice is heard, pinged and answered, and SIGTERM still stops it', async () => {
    const p = await peers();
    await hostileFolder(p);
    const listen = fixture.bg('dmp', ['listen', '--json', '--verbose'], { home: p.bob, timeoutMs: 60_000 });
    const sent = await runDmp(['send', 'bob', 'hello through the mess'], { home: p.alice });
    assert.equal(sent.code, 0, describeResult(sent));
    await waitFor('the message in dmp listen', () => listen.stdout().includes('hello through the mess'), 20_000, {
      describe: () => describeBackground(listen),
    });
    const ping = await runDmp(['ping', 'bob', '-c', '1', '-W', '15'], { home: p.alice, timeoutMs: 30_000 });
    assert.equal(ping.code, 0, describeResult(ping));
    const again = await runDmp(['send', 'bob', 'and again'], { home: p.alice });
    assert.equal(again.code, 0, describeResult(again));
    await waitFor('the second message', () => listen.stdout().includes('and again'), 20_000, {
      describe: () => describeBackground(listen),
    });
    assert.ok(listen.running(), describeBackground(listen));
    const result = await listen.stop(5000);
    assert.ok(result.signal === null, `dmp listen did not stop on SIGTERM: ${describeResult(result)}`);
    assert.deepEqual(stackLines(result.stderr), [], describeResult(result));
    // The sparse gigabytes were refused unread, and said so.
    assert.match(result.stderr, /file-refused .*file=msg-000000000001\.dmp/, describeResult(result));
  });

  test('dmp daemon goes on: it answers pings, keeps alice’s message, and stops on SIGTERM', async () => {
    const p = await peers();
    await hostileFolder(p);
    const daemon = fixture.bg('dmp', ['daemon'], { home: p.bob, timeoutMs: 60_000 });
    const ping = await runDmp(['ping', 'bob', '-c', '1', '-W', '20'], { home: p.alice, timeoutMs: 30_000 });
    assert.equal(ping.code, 0, `${describeResult(ping)}\n${describeBackground(daemon)}`);
    const sent = await runDmp(['send', 'bob', '--wait', '--timeout', '20', 'kept by the daemon'], {
      home: p.alice,
      timeoutMs: 30_000,
    });
    assert.equal(sent.code, 0, describeResult(sent));
    const listen = await runDmp(['listen', '--count', '1', '--timeout', '20'], { home: p.bob, timeoutMs: 30_000 });
    assert.equal(listen.code, 0, describeResult(listen));
    assert.match(listen.stdout, /kept by the daemon/);
    const result = await daemon.stop(10_000);
    assert.equal(result.code, 0, describeResult(result));
  });

  test('dftp receive goes on: alice’s file arrives whole', async () => {
    const p = await peers();
    await hostileFolder(p);
    const out = join(p.root, 'out');
    const receive = fixture.bg('dftp', ['receive', '--out', out, '--count', '1'], { home: p.bob, timeoutMs: 60_000 });
    const file = join(p.root, 'note.txt');
    await writeFile(file, 'a file among FIFOs');
    const sent = await runDftp(['send', 'bob', file], { home: p.alice, timeoutMs: 40_000 });
    assert.equal(sent.code, 0, describeResult(sent));
    const result = await receive.done;
    assert.equal(result.code, 0, describeResult(result));
    assert.equal(await readFile(join(out, 'note.txt'), 'utf8'), 'a file among FIFOs');
  });
});

describe('printing what other peers wrote', () => {
  test('dmp listen escapes bidi controls and invisible characters in message text, and keeps its lines', async () => {
    const p = await peers();
    const text = 'invoice\u202efdp.exe is ready\nsee\u200b line two\u2028end';
    const sent = await runDmp(['send', 'bob', '-'], { home: p.alice, input: text });
    assert.equal(sent.code, 0, describeResult(sent));
    const listen = await runDmp(['listen', '--count', '1', '--timeout', '20'], { home: p.bob, timeoutMs: 30_000 });
    assert.equal(listen.code, 0, describeResult(listen));
    assert.equal(
      listen.stdout,
      'alice: invoice\\u{202e}fdp.exe is ready\n  see\\u{200b} line two\\u{2028}end\n',
      describeResult(listen),
    );
    // Nothing invisible or reordering reaches the terminal.
    assert.doesNotMatch(listen.stdout, /[\u202a-\u202e\u2066-\u2069\u200b\u2028]/u);
  });
});
