/**
 * `npm run demo`: two peers, alice and bob, each with its own DMP_HOME, over a temporary relay
 * folder. Bob listens; alice pings him, sends messages, then a file through a small quota with
 * a progress bar. Everything runs through the real `dmp` and `dftp` commands.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const dmp = join(root, 'dist', 'src', 'cli', 'dmp.js');
const dftp = join(root, 'dist', 'src', 'cli', 'dftp.js');

function say(text: string): void {
  process.stderr.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

function run(bin: string, home: string, args: string[], input?: string): string {
  const result = spawnSync(process.execPath, [bin, ...args], {
    env: { ...process.env, DMP_HOME: home },
    input,
    stdio: [input === undefined ? 'inherit' : 'pipe', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  process.stdout.write(result.stdout);
  if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}`);
  return result.stdout;
}

function background(bin: string, home: string, args: string[]): { child: ChildProcess; done: Promise<number> } {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, DMP_HOME: home },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const done = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
  return { child, done };
}

async function main(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'dmp-demo-'));
  const relay = join(base, 'relay');
  const alice = join(base, 'alice');
  const bob = join(base, 'bob');
  const inbox = join(base, 'bob-files');
  await mkdir(relay);
  const children: ChildProcess[] = [];
  try {
    say(`a relay folder: ${relay} (in real use, a folder that Dropbox or Syncthing keeps in sync)`);
    const key = run(dmp, alice, ['init', '--relay', relay, '--id', 'alice']).trim();
    run(dmp, bob, ['init', '--relay', relay, '--id', 'bob', '--key', key]);

    say('bob listens for 3 messages (and answers pings while he does)');
    const listener = background(dmp, bob, ['listen', '--count', '3']);
    children.push(listener.child);

    say('alice pings bob through the folder');
    run(dmp, alice, ['ping', 'bob', '-c', '3', '-i', '0.2']);

    say('alice sends three messages and waits for bob to acknowledge them');
    run(
      dmp,
      alice,
      ['send', 'bob', '--lines', '--wait', '--timeout', '30'],
      'hello bob\nthis travels as files\nno server involved\n',
    );
    if ((await listener.done) !== 0) throw new Error('bob did not get the messages');

    const file = join(base, 'holiday.bin');
    await writeFile(file, randomBytes(6 * 1024 * 1024));
    say('alice sends a 6 MiB file in 256 KiB chunks, never holding more than 1 MiB in the relay');
    const receiver = background(dftp, bob, ['receive', '--out', inbox, '--count', '1']);
    children.push(receiver.child);
    run(dftp, alice, ['send', 'bob', file, '-bs', '256k', '--quota', '1m']);
    if ((await receiver.done) !== 0) throw new Error('bob did not get the file');
    const same = Buffer.compare(await readFile(file), await readFile(join(inbox, 'holiday.bin'))) === 0;
    say(same ? 'bob has the file, byte for byte' : 'the file differs!');
    if (!same) process.exitCode = 1;
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill();
    await rm(base, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`demo failed: ${error.message}\n`);
  process.exitCode = 1;
});
