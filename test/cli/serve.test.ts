/**
 * A served folder through real processes: `dftp serve` and a client doing every command, the
 * same folder served by `dmp daemon --serve`, and a seeded stream of random and hostile requests
 * after which the server still serves a legitimate get. Every child is killed in the hooks.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { encryptText, parseKey } from '../../src/crypto/fernet.js';
import { seededRandom } from '../../src/util/random.js';
import {
  type Background,
  describeBackground,
  describeResult,
  jsonLines,
  lines,
  type Peers,
  type RunResult,
  runDftp,
  runDmp,
  runProcess,
  stackLines,
} from '../support/cli.js';
import { processFixture } from '../support/fixture.js';
import { openResponse } from '../support/serve.js';
import { waitFor } from '../support/wait.js';
import { cliLine, hasTmux, openTerminal } from './tmux.js';

const fx = processFixture('dftp-serve-');
const { peers } = fx;

const noTmux = !(await hasTmux()) && 'tmux is not installed';

function assertExit(result: RunResult, code: number): void {
  assert.equal(result.timedOut, false, `hard timeout: ${describeResult(result)}`);
  assert.equal(result.code, code, describeResult(result));
  assert.deepEqual(stackLines(result.stderr), [], `stack trace printed: ${describeResult(result)}`);
}

/** Exit 1 with exactly one line on stderr, matching `pattern`. */
function assertFails(result: RunResult, pattern: RegExp): void {
  assertExit(result, 1);
  const errorLines = lines(result.stderr);
  assert.equal(errorLines.length, 1, `expected one line on stderr: ${describeResult(result)}`);
  assert.match(errorLines[0] ?? '', pattern, describeResult(result));
}

/** The folder alice serves: two files, and a link out of it and a FIFO that are never served. */
async function servedFolder(p: Peers): Promise<string> {
  const dir = join(p.root, 'served');
  await mkdir(join(dir, 'sub'), { recursive: true });
  await writeFile(join(dir, 'a.txt'), 'alpha\n');
  await writeFile(join(dir, 'sub', 'b.bin'), randomBytes(200 * 1024));
  await writeFile(join(p.root, 'secret-outside.txt'), 'not served\n');
  await symlink(join(p.root, 'secret-outside.txt'), join(dir, 'escape.txt'));
  assertExit(await runProcess('mkfifo', [join(dir, 'pipe')]), 0);
  return dir;
}

/** Starts `dftp serve` as alice and waits until it says it serves. */
async function serve(p: Peers, dir: string, args: string[] = []): Promise<Background> {
  const server = fx.bg('dftp', ['serve', dir, ...args], { home: p.alice, timeoutMs: 240_000 });
  await waitFor('dftp serve to start', () => server.stderr().includes('serving'), 30_000, {
    describe: () => describeBackground(server),
  });
  return server;
}

describe('dftp serve', () => {
  test('a client does every command; protected files; a server that stopped is named', async () => {
    const p = await peers();
    const dir = await servedFolder(p);
    const server = await serve(p, dir, ['--allow-put', '--allow-delete']);
    const bob = { home: p.bob, timeoutMs: 60_000 };

    const who = await runDmp(['who', '--json'], bob);
    assertExit(who, 0);
    assert.deepEqual(
      jsonLines<{ peer: string; online: boolean }>(who.stdout).map((entry) => [entry.peer, entry.online]),
      [['alice', true]],
    );

    const ls = await runDftp(['ls', 'alice', '--json'], bob);
    assertExit(ls, 0);
    const entries = jsonLines<{ name: string; type: string; size: number; sha256?: string }>(ls.stdout);
    assert.deepEqual(
      entries.map((entry) => [entry.name, entry.type]),
      [
        ['a.txt', 'file'],
        ['sub', 'folder'],
      ],
    );
    const human = await runDftp(['ls', 'alice', 'sub'], bob);
    assertExit(human, 0);
    assert.match(human.stdout, /200 KiB .* b\.bin/);

    const out = join(p.root, 'out');
    const get = await runDftp(['get', 'alice', 'a.txt', 'sub/b.bin', '--out', out], bob);
    assertExit(get, 0);
    assert.equal(await readFile(join(out, 'a.txt'), 'utf8'), 'alpha\n');
    assert.deepEqual(await readFile(join(out, 'b.bin')), await readFile(join(dir, 'sub', 'b.bin')));

    const upload = join(p.root, 'up.txt');
    await writeFile(upload, 'from bob\n');
    assertExit(await runDftp(['put', 'alice', upload], bob), 0);
    assert.equal(await readFile(join(dir, 'up.txt'), 'utf8'), 'from bob\n');

    const secret = join(p.root, 'secret.txt');
    await writeFile(secret, 'protected words\n');
    const passcode = join(p.root, 'passcode');
    await writeFile(passcode, 'a long passcode\n');
    const wrong = join(p.root, 'wrong');
    await writeFile(wrong, 'not it\n');
    assertExit(await runDftp(['put', 'alice', secret, '--protect', '--passcode-file', passcode], bob), 0);
    const listed = jsonLines<{ name: string; protected: boolean }>(
      (await runDftp(['ls', 'alice', '--json'], bob)).stdout,
    );
    assert.equal(listed.find((entry) => entry.name === 'secret.txt')?.protected, true);
    assertFails(
      await runDftp(['get', 'alice', 'secret.txt', '--out', out], bob),
      /secret\.txt is protected: give --passcode-file/,
    );
    assertFails(
      await runDftp(['get', 'alice', 'secret.txt', '--out', out, '--passcode-file', wrong], bob),
      /^dftp: alice: secret\.txt: denied$/,
    );
    assertExit(await runDftp(['get', 'alice', 'secret.txt', '--out', out, '--passcode-file', passcode], bob), 0);
    assert.equal(await readFile(join(out, 'secret.txt'), 'utf8'), 'protected words\n');
    assertFails(await runDftp(['rm', 'alice', 'secret.txt', '--passcode-file', wrong], bob), /denied/);
    assertExit(await runDftp(['rm', 'alice', 'secret.txt', '--passcode-file', passcode], bob), 0);
    assertExit(await runDftp(['rm', 'alice', 'up.txt'], bob), 0);
    assert.deepEqual((await readdir(dir)).sort(), ['a.txt', 'escape.txt', 'pipe', 'sub']);

    assertFails(
      await runDftp(['get', 'alice', 'escape.txt', '--out', out], bob),
      /escape\.txt is a link: links are not served/,
    );
    assertFails(await runDftp(['get', 'alice', 'pipe', '--out', out], bob), /not a regular file/);
    assertFails(
      await runDftp(['get', 'alice', '../secret-outside.txt', '--out', out], bob),
      /not a plain relative path/,
    );
    assertFails(await runDftp(['get', 'alice', 'nothing.txt', '--out', out], bob), /no nothing\.txt here/);

    const stopped = await server.stop();
    assert.deepEqual(stackLines(stopped.stderr), [], describeResult(stopped));
    assert.match(stopped.stderr, /bob: get a\.txt/);
    assertFails(
      await runDftp(['ls', 'alice', '--timeout', '2'], bob),
      /no answer from alice in 2 s: is dftp serve .* running there\? dmp who shows whether alice is online/,
    );
  });

  test('on a terminal the passcode is asked for, twice for a new one, and never shown', { skip: noTmux }, async () => {
    const p = await peers();
    const dir = await servedFolder(p);
    await serve(p, dir, ['--allow-put']);
    const secret = join(p.root, 'diary.txt');
    await writeFile(secret, 'dear diary\n');
    const out = join(p.root, 'out');
    const terminal = await openTerminal(100, 30);
    try {
      const env = { DMP_HOME: p.bob };
      await terminal.type(`${cliLine('dftp', ['put', 'alice', secret, '--protect'], env)}; echo exit=$?`);
      await terminal.waitFor('the prompt for a new passcode', /New passcode for diary\.txt:$/m);
      await terminal.type('tiger lily 42');
      await terminal.waitFor('the prompt to repeat it', /The same again:$/m);
      await terminal.type('tiger lily 42');
      await terminal.waitFor('the put', /exit=0/);
      await terminal.type(`${cliLine('dftp', ['get', 'alice', 'diary.txt', '--out', out], env)}; echo exit=$?`);
      await terminal.waitFor('the prompt for the passcode', /^Passcode for diary\.txt:$/m);
      // Typed with a mistake, taken back with Backspace.
      await terminal.keys('-l', 'tiger lilx');
      await terminal.keys('BSpace');
      await terminal.type('y 42');
      const rows = await terminal.waitFor('the get', /exit=\d+[\s\S]*exit=\d+/);
      assert.match(rows.join('\n'), /exit=0[\s\S]*exit=0/, rows.join('\n'));
      assert.equal(await readFile(join(out, 'diary.txt'), 'utf8'), 'dear diary\n');
      const seen = (await terminal.history()).join('\n');
      assert.equal(/tiger|lil|42/.test(seen), false, `the passcode was shown:\n${seen}`);
    } finally {
      await terminal.close();
    }
  });

  test('dmp daemon --serve serves the folder too, with the settings of "serve" in the config', async () => {
    const p = await peers();
    const dir = await servedFolder(p);
    // The config allows puts (and names another folder: --serve DIR wins).
    const configPath = join(p.alice, 'config.json');
    const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
    await writeFile(
      configPath,
      JSON.stringify({ ...config, serve: { dir: join(p.root, 'elsewhere'), allowPut: true } }),
    );
    const daemon = fx.bg('dmp', ['daemon', '--serve', dir], { home: p.alice, timeoutMs: 120_000 });
    const bob = { home: p.bob, timeoutMs: 60_000 };
    await waitFor(
      'the daemon to serve',
      async () => (await runDftp(['ls', 'alice', '-W', '2'], bob)).code === 0,
      60_000,
      {
        describe: () => describeBackground(daemon),
      },
    );
    const out = join(p.root, 'out');
    assertExit(await runDftp(['get', 'alice', 'a.txt', '--out', out], bob), 0);
    assert.equal(await readFile(join(out, 'a.txt'), 'utf8'), 'alpha\n');
    // A long listing reaches the end of the pipe whole (thousands of lines, several parts).
    const many = join(dir, 'many');
    await mkdir(many);
    for (let index = 0; index < 3000; index += 1) await writeFile(join(many, `f${index}.txt`), `${index}\n`);
    const listing = await runDftp(['ls', 'alice', 'many', '--json'], bob);
    assertExit(listing, 0);
    const names = jsonLines<{ name: string; sha256: string }>(listing.stdout);
    assert.equal(names.length, 3000);
    assert.equal(new Set(names.map((entry) => entry.name)).size, 3000);
    assert.ok(names.every((entry) => /^[0-9a-f]{64}$/.test(entry.sha256)));
    const upload = join(p.root, 'up.txt');
    await writeFile(upload, 'x');
    assertExit(await runDftp(['put', 'alice', upload], bob), 0);
    assert.equal(await readFile(join(dir, 'up.txt'), 'utf8'), 'x');
    // Deletes are off unless allowed.
    assertFails(await runDftp(['rm', 'alice', 'up.txt'], bob), /files cannot be deleted here/);
    // The file bob put is in the served folder, not in the daemon's inbox.
    assert.deepEqual(await readdir(join(p.alice, 'inbox')).catch(() => []), []);
    await daemon.stop();
  });

  test('a seeded stream of random and hostile requests: the server answers each in one line, and still serves', async () => {
    const seed = 20_260_111;
    const random = seededRandom(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const p = await peers();
    const dir = await servedFolder(p);
    const server = await serve(p, dir, ['--allow-put', '--allow-delete']);
    const bob = { home: p.bob, timeoutMs: 60_000 };
    // A legitimate request first: alice has seen bob's files authenticate (later failures are
    // then damage or forgery, answered or asked again, never a reason to stop reading him).
    assertExit(await runDftp(['ls', 'alice'], bob), 0);
    const pairKey = (await runDmp(['pair-key', 'alice'], bob)).stdout.trim();
    const key = parseKey(pairKey);
    const folder = join(p.relay, 'bob', 'alice');
    const staging = join(p.root, 'staging');
    await mkdir(staging);

    const hostileNames = [
      '../../etc/passwd',
      '/etc/passwd',
      'sub/../../secret-outside.txt',
      'escape.txt',
      'pipe',
      '.hidden',
      'sub',
      '',
      'a'.repeat(5000),
      'a\u0000b',
      'a\u001b[2J',
      'CON',
      'sub//b.bin',
      'évil\u202etxt.exe',
      '\\..\\..\\x',
    ];
    const bodies = (id: string): unknown[] => [
      { id, op: pick(['ls', 'get', 'put', 'rm', 'format', 'exec', '__proto__']), name: pick(hostileNames) },
      { id, op: 'get', name: pick(hostileNames), passcode: 'x'.repeat(Math.floor(random() * 3000)) },
      { id, op: 'ls', path: pick(hostileNames) },
      { id, op: 'rm', name: pick(hostileNames) },
      {
        id,
        op: 'put',
        name: pick(hostileNames),
        size: pick([-1, 1e300, 2 ** 60, 10]),
        mtimeMs: pick([0, -5, 1e300, Number.NaN]),
      },
      {
        id,
        op: 'put',
        name: pick(hostileNames),
        size: 10,
        mtimeMs: 1_700_000_000_000,
        protect: pick([true, 'yes', 1]),
      },
      { id: pick(['0000000000000000', 'not hex', 7, null]), op: 'ls' },
      { id, op: { $where: 'true' } },
      { id, op: ['ls'] },
      { __proto__: { op: 'rm' }, id, name: 'a.txt' },
      'a string body',
      null,
      [1, 2, 3],
    ];
    const written: { id: string; kind: string }[] = [];
    const publish = async (id: string, data: Buffer | string) => {
      const temp = join(staging, `${id}.tmp`);
      await writeFile(temp, data);
      await rename(temp, join(folder, `serve-req-${id}.dmp`));
    };
    for (let index = 0; index < 150; index += 1) {
      const id = randomBytes(8).toString('hex');
      const kind = pick([
        'junk',
        'junk-token',
        'envelope',
        'envelope',
        'envelope',
        'envelope',
        'deep',
        'big',
        'wrong-envelope',
      ]);
      const seal = (plaintext: string) =>
        encryptText(key, Buffer.from(plaintext), { timestamp: Math.floor(Date.now() / 1000) });
      const envelope = (body: unknown, overrides: Record<string, unknown> = {}) =>
        JSON.stringify({
          v: 2,
          type: 'serve-req',
          from: 'bob',
          to: 'alice',
          seq: 0,
          sentAt: Date.now(),
          body,
          ...overrides,
        });
      if (kind === 'junk') await publish(id, randomBytes(Math.floor(random() * 2000)));
      else if (kind === 'junk-token') await publish(id, encryptText(key, randomBytes(Math.floor(random() * 500))));
      else if (kind === 'envelope') await publish(id, seal(envelope(pick(bodies(id)))));
      else if (kind === 'deep') {
        const nested = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
        await publish(id, seal(envelope({ id, op: 'ls', path: 'PATH' }).replace('"PATH"', nested)));
      } else if (kind === 'big') await publish(id, seal(envelope({ id, op: 'ls', path: 'x'.repeat(200_000) })));
      else {
        const overrides = pick([
          { to: 'carol' },
          { from: 'carol' },
          { v: 1 },
          { type: 'ping' },
          { sentAt: 1e300 },
          { seq: -1 },
        ]);
        await publish(id, seal(envelope({ id, op: 'ls', path: '' }, overrides)));
      }
      written.push({ id, kind });
    }
    // Entries that are not files, under request names.
    const special = [randomBytes(8).toString('hex'), randomBytes(8).toString('hex'), randomBytes(8).toString('hex')];
    await mkdir(join(folder, `serve-req-${special[0]}.dmp`));
    await symlink('/dev/zero', join(folder, `serve-req-${special[1]}.dmp`));
    assertExit(await runProcess('mkfifo', [join(folder, `serve-req-${special[2]}.dmp`)]), 0);

    // Every request whose envelope authenticates is answered, in one line; the server runs on.
    const answerable = written.filter((request) => request.kind !== 'junk');
    const answers = join(p.relay, 'alice', 'bob');
    await waitFor(
      'answers to the hostile requests',
      async () => {
        const names = new Set(await readdir(answers));
        return answerable.every((request) => names.has(`serve-res-${request.id}-000.dmp`));
      },
      120_000,
      { everyMs: 200, describe: () => `seed ${seed}\n${describeBackground(server)}` },
    );
    for (const request of answerable) {
      const body = openResponse(pairKey, await readFile(join(answers, `serve-res-${request.id}-000.dmp`)));
      const error = body.error as { code: string; message: string } | undefined;
      if (error) {
        assert.equal(error.message.includes('\n'), false, `seed ${seed}: a message of several lines`);
        assert.ok(error.message.length <= 500);
      }
    }
    assert.equal(server.running(), true, `seed ${seed}: the server stopped\n${describeBackground(server)}`);

    const out = join(p.root, 'out');
    const get = await runDftp(['get', 'alice', 'sub/b.bin', '--out', out], bob);
    assertExit(get, 0);
    assert.deepEqual(await readFile(join(out, 'b.bin')), await readFile(join(dir, 'sub', 'b.bin')));
    // Nothing was written, deleted or followed in the served folder or beside it.
    assert.deepEqual((await readdir(dir)).sort(), ['a.txt', 'escape.txt', 'pipe', 'sub']);
    assert.deepEqual((await readdir(join(dir, 'sub'))).sort(), ['b.bin']);
    assert.equal(await readFile(join(p.root, 'secret-outside.txt'), 'utf8'), 'not served\n');
    assert.equal((await lstat(join(dir, 'escape.txt'))).isSymbolicLink(), true);
    assert.deepEqual(stackLines(server.stderr()), [], describeBackground(server));
    await server.stop();
  });
});
