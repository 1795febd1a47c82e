/**
 * `npm run demo`: two peers, alice and bob, each with its own DMP_HOME, over a temporary relay
 * folder. Bob listens; alice pings him, sends messages, then a file through a small quota with
 * a progress bar. Then the unattended part: a daemon for each, `dmp who`, a broadcast, a file
 * dropped into alice's outbox, and `dmp status`. Everything runs through the real `dmp` and `dftp`
 * commands, in well under a minute. No colour with NO_COLOR set or `npm run demo -- --no-color`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../..', import.meta.url).pathname;
const dmp = join(root, 'dist', 'src', 'cli', 'dmp.js');
const dftp = join(root, 'dist', 'src', 'cli', 'dftp.js');

const noColor = process.argv.includes('--no-color');
/** Bold headings only on a terminal, and never with NO_COLOR (https://no-color.org) or --no-color. */
const bold = process.stderr.isTTY && !noColor && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
/** The commands it runs follow the same choice. */
const childEnv = (home: string) => ({ ...process.env, DMP_HOME: home, ...(noColor ? { NO_COLOR: '1' } : {}) });

function say(text: string): void {
  process.stderr.write(bold ? `\n\x1b[1m== ${text}\x1b[0m\n` : `\n== ${text}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until `check` holds, for at most `ms`. */
async function until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function run(bin: string, home: string, args: string[], input?: string): string {
  const result = spawnSync(process.execPath, [bin, ...args], {
    env: childEnv(home),
    input,
    stdio: [input === undefined ? 'inherit' : 'pipe', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  process.stdout.write(result.stdout);
  if (result.status !== 0) throw new Error(`${args.join(' ')} exited ${result.status}`);
  return result.stdout;
}

/**
 * Starts a command in the background. 'pipe' keeps its output until `output()` is asked for:
 * two commands drawing progress on one terminal at once would draw over each other.
 */
function background(
  bin: string,
  home: string,
  args: string[],
  output: 'inherit' | 'ignore' | 'pipe' = 'inherit',
): { child: ChildProcess; done: Promise<number>; output(): string } {
  const child = spawn(process.execPath, [bin, ...args], {
    env: childEnv(home),
    stdio: ['ignore', output, output],
  });
  let text = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });
  const done = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
  return { child, done, output: () => text };
}

/** `dmp who` of the peer in `home`, quietly: who it sees online. */
function spawnWho(home: string): string {
  return spawnSync(process.execPath, [dmp, 'who'], { env: childEnv(home), encoding: 'utf8' }).stdout ?? '';
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
    const receiver = background(dftp, bob, ['receive', '--out', inbox, '--count', '1'], 'pipe');
    children.push(receiver.child);
    run(dftp, alice, ['send', 'bob', file, '-bs', '256k', '--quota', '1m']);
    const received = await receiver.done;
    say('what bob saw meanwhile (dftp receive)');
    process.stderr.write(receiver.output());
    if (received !== 0) throw new Error('bob did not get the file');
    const same = Buffer.compare(await readFile(file), await readFile(join(inbox, 'holiday.bin'))) === 0;
    say(same ? 'bob has the file, byte for byte' : 'the file differs!');
    if (!same) process.exitCode = 1;

    say('unattended: a daemon for each peer (dmp daemon; their logs are in DMP_HOME/daemon.log)');
    const daemons = [background(dmp, alice, ['daemon'], 'ignore'), background(dmp, bob, ['daemon'], 'ignore')];
    children.push(...daemons.map((daemon) => daemon.child));
    for (const home of [alice, bob]) {
      await until('the daemon to start', async () =>
        (await readFile(join(home, 'daemon.log'), 'utf8').catch(() => '')).includes('daemon-started'),
      );
    }

    say('alice: who is online? (each daemon publishes a signed heartbeat)');
    await until('bob to be seen online', async () => spawnWho(alice).includes('bob'));
    run(dmp, alice, ['who']);

    say('alice broadcasts to everyone in the relay; bob reads it from what his daemon received');
    run(dmp, alice, ['broadcast', 'the demo is almost over']);
    run(dmp, bob, ['listen', '--count', '1', '--timeout', '30']);

    say('bob answers from dmp chat (an interactive prompt on a terminal; here its lines come from a pipe)');
    run(dmp, bob, ['chat', 'alice'], '/who\nthanks alice, see you\n/quit\n');
    say('alice: the conversation with bob, both ways (dmp history bob)');
    // Alice's daemon receives it; history reads what it kept.
    await until('bob’s answer to reach alice', async () =>
      (
        spawnSync(process.execPath, [dmp, 'history', 'bob', '--json'], { env: childEnv(alice), encoding: 'utf8' })
          .stdout ?? ''
      ).includes('see you'),
    );
    run(dmp, alice, ['history', 'bob']);

    say('alice drops a file into her outbox, DMP_HOME/outbox/bob/, and looks at dmp status');
    const outbox = join(alice, 'outbox', 'bob');
    await mkdir(outbox, { recursive: true });
    // Written under a dot-name, then renamed: the daemon never takes a file still being written.
    await writeFile(join(outbox, '.report.pdf.part'), randomBytes(2 * 1024 * 1024));
    await rename(join(outbox, '.report.pdf.part'), join(outbox, 'report.pdf'));
    run(dmp, alice, ['status']);
    const delivered = join(bob, 'inbox', 'alice', 'report.pdf');
    await until(
      'the file to reach bob',
      async () => (await stat(delivered).catch(() => undefined))?.size === 2 * 1024 * 1024,
    );
    // Alice's daemon moves it to sent/ once bob's verdict is in, and notes when it heard from bob.
    await until(
      'alice to file it as sent',
      async () => (await stat(join(alice, 'sent', 'bob', 'report.pdf')).catch(() => undefined)) !== undefined,
    );
    await until('alice to note when she heard from bob', async () =>
      (await readFile(join(alice, 'state', 'peers.json'), 'utf8').catch(() => '')).includes('bob'),
    );
    say("bob's daemon put it in DMP_HOME/inbox/alice/, alice's moved it to DMP_HOME/sent/bob/; dmp status:");
    run(dmp, alice, ['status']);
    for (const daemon of daemons) daemon.child.kill('SIGTERM');
    await Promise.all(daemons.map((daemon) => daemon.done));
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill();
    await rm(base, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`demo failed: ${error.message}\n`);
  process.exitCode = 1;
});
