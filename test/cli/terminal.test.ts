/**
 * What a person sees on a terminal, in a real one: tmux sessions of 80, 120 and 200 columns.
 * Progress bars of several files at once (one line per file in flight and a total, fitted to the
 * width, never mixed with log lines), a resumed send, colour that follows NO_COLOR and
 * --no-color, the daemon's log in words, and `dmp status --watch`.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { displayWidth } from '../../src/cli/terminal.js';
import {
  type Background,
  describeBackground,
  killAll,
  lines,
  makePeers,
  type Peers,
  runDmp,
  startDftp,
} from '../support/cli.js';
import { MiB, writeRandomFile } from '../support/files.js';
import { sleep } from '../support/wait.js';
import { cliLine, hasTmux, openTerminal, type Terminal } from './tmux.js';

const cleanups: (() => Promise<void>)[] = [];
const background: Background[] = [];
const terminals: Terminal[] = [];

async function peers(): Promise<Peers> {
  const made = await makePeers('dmp-terminal-');
  cleanups.push(made.cleanup);
  return made;
}

async function terminal(width: number, height: number, env: Record<string, string> = {}): Promise<Terminal> {
  const opened = await openTerminal(width, height, env);
  terminals.push(opened);
  return opened;
}

afterEach(async () => {
  for (const child of background.splice(0)) {
    child.kill('SIGKILL');
    await child.done;
  }
  for (const opened of terminals.splice(0)) await opened.close();
});

after(async () => {
  killAll();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const skip = !(await hasTmux()) && 'tmux is not installed';

/** Escape sequences that set colour or bold (SGR), as capture-pane -e shows them. */
const SGR = /\x1b\[[0-9;]*m/;
const BAR = /[█░]/;

/** Rows of a screen that hold a progress bar. */
function barRows(rows: readonly string[]): string[] {
  return rows.filter((row) => /\|[█░]+\|/.test(row));
}

/**
 * Sends three files at once from alice on a terminal of `width` columns while bob receives in
 * the background, watching the screen all along. Returns every screen seen and the final
 * scrollback.
 */
async function sendThreeFiles(width: number, env: Record<string, string>, extra: string[] = []) {
  const p = await peers();
  const folder = join(p.root, 'holiday photos');
  await mkdir(folder);
  for (const index of [1, 2, 3]) {
    await writeRandomFile(join(folder, `a-long-name-for-a-holiday-picture-number-${index}.jpg`), 6 * MiB);
  }
  const receiver = startDftp(['receive', '--from', 'alice', '--out', join(p.root, 'out'), '--count', '3'], {
    home: p.bob,
    timeoutMs: 120_000,
  });
  background.push(receiver);
  const term = await terminal(width, 30, env);
  await term.type(
    `${cliLine('dftp', ['send', 'bob', folder, '-bs', '64k', '--quota', '256k', ...extra], { DMP_HOME: p.alice })}; echo "exit=$?"`,
  );
  const screens: string[][] = [];
  const colourScreens: string[] = [];
  for (;;) {
    const rows = await term.screen();
    screens.push(rows);
    colourScreens.push((await term.screen({ escapes: true })).join('\n'));
    if (rows.some((row) => /^exit=\d+/.test(row))) break;
    assert.ok(screens.length < 1200, `the send did not finish\n${rows.join('\n')}\n${describeBackground(receiver)}`);
    await sleep(50);
  }
  return { screens, colourScreens, history: await term.history() };
}

function checkScreens(width: number, result: Awaited<ReturnType<typeof sendThreeFiles>>): void {
  const { screens, history } = result;
  const context = () => history.join('\n');
  assert.ok(history.includes('exit=0'), `the send failed\n${context()}`);
  for (const rows of screens) {
    for (const row of rows) {
      // Log lines stay whole: no piece of a bar in them, no bar drawn into them. (A long log line
      // may wrap, as any printed line does; bars are redrawn in place and must not.)
      if (row.startsWith('dftp:')) assert.doesNotMatch(row, BAR, `a bar in a log line:\n${rows.join('\n')}`);
      if (BAR.test(row)) {
        assert.match(row, /^ \S.*\|[█░]+\| +\d+%/, `not a whole bar line:\n${rows.join('\n')}`);
        // A line as wide as the terminal wraps on some terminals: bars leave the last column free.
        assert.ok(displayWidth(row) < width, `a bar of ${displayWidth(row)} columns at ${width}:\n${rows.join('\n')}`);
      }
    }
    // Each file in flight once, and never two total lines.
    const bars = barRows(rows);
    assert.ok(bars.filter((row) => row.startsWith(' total ')).length <= 1, rows.join('\n'));
    const names = bars.map((row) => row.split('|')[0]?.trim());
    assert.equal(new Set(names).size, names.length, `a bar drawn twice:\n${rows.join('\n')}`);
  }
  const withBars = screens.filter((rows) => barRows(rows).length > 0);
  assert.ok(withBars.length >= 3, `bars seen on only ${withBars.length} screens\n${context()}`);
  // Several files at once: a line per file in flight, and the total under them.
  assert.ok(
    withBars.some((rows) => {
      const bars = barRows(rows);
      return bars.length >= 3 && bars.at(-1)?.startsWith(' total ');
    }),
    `never two files and a total at once\n${withBars.map((rows) => rows.join('\n')).join('\n---\n')}`,
  );
  // Percent and sizes at every width (at 80 columns they used to be cut off).
  assert.ok(
    withBars.some((rows) => barRows(rows).some((row) => /\d+% +[\d.]+ (B|KiB|MiB)\/[\d.]+ MiB/.test(row))),
    `no percent and sizes in the bars\n${context()}`,
  );
  // Every file's verified line, the last one included; no bar left behind.
  const verified = history.filter((row) =>
    /^dftp: .*number-\d\.jpg: 6 MiB verified \(sha256 [0-9a-f]{16}…\)$/.test(row),
  );
  assert.equal(verified.length, 3, `verified lines:\n${context()}`);
  assert.deepEqual(barRows(screens.at(-1) ?? []), [], `bars left after the end\n${context()}`);
}

describe('progress on a terminal', { skip, timeout: 300_000 }, () => {
  test('80 columns, NO_COLOR: one line per file plus a total, fitted to the width, log lines whole, no colour', async () => {
    const result = await sendThreeFiles(80, { NO_COLOR: '1' });
    checkScreens(80, result);
    for (const screen of result.colourScreens) assert.doesNotMatch(screen, SGR, 'colour or bold despite NO_COLOR');
  });

  test('120 columns: speed and ETA show, and colour', async () => {
    const result = await sendThreeFiles(120, {});
    checkScreens(120, result);
    assert.ok(
      result.screens.some((rows) => barRows(rows).some((row) => /\/s +ETA \d+:\d\d/.test(row))),
      `no speed and ETA at 120 columns\n${result.history.join('\n')}`,
    );
    assert.ok(
      result.colourScreens.some((screen) => SGR.test(screen)),
      'no colour on a colour terminal',
    );
  });

  test('200 columns with --no-color: full names, no colour', async () => {
    const result = await sendThreeFiles(200, {}, ['--no-color']);
    checkScreens(200, result);
    assert.ok(
      result.screens.some((rows) =>
        barRows(rows).some((row) => row.includes('holiday photos/a-long-name-for-a-holiday-picture-number-')),
      ),
      `names cut at 200 columns\n${result.history.join('\n')}`,
    );
    for (const screen of result.colourScreens) assert.doesNotMatch(screen, SGR, 'colour or bold despite --no-color');
  });

  test('a resumed send says "resuming at N%" and goes on to the end', async () => {
    const p = await peers();
    const file = join(p.root, 'resume.bin');
    await writeRandomFile(file, 12 * MiB);
    const receiver = startDftp(['receive', '--from', 'alice', '--out', join(p.root, 'out'), '--count', '1'], {
      home: p.bob,
      timeoutMs: 120_000,
    });
    background.push(receiver);
    const term = await terminal(100, 20, { NO_COLOR: '1' });
    const send = cliLine('dftp', ['send', 'bob', file, '-bs', '64k', '--quota', '256k'], { DMP_HOME: p.alice });
    await term.type(`${send}; echo "first=$?"`);
    await term.waitFor('a bar past 20%', /\| +([2-9]\d)% /);
    await term.keys('C-c');
    const stopped = await term.waitFor('the interruption', /^first=130$/m);
    assert.ok(
      stopped.some((row) => /^dftp: resume\.bin to bob: stopped at \d+%/.test(row)),
      `where it stopped is not said\n${stopped.join('\n')}`,
    );
    await term.type(`${send}; echo "second=$?"`);
    const rows = await term.waitFor('the second run to end', /^second=\d+$/m, 90_000);
    const resumed = rows.map((row) => /^dftp: resuming resume\.bin to bob at (\d+)% /.exec(row)).find(Boolean);
    assert.ok(resumed, `no "resuming at" line\n${rows.join('\n')}`);
    assert.ok(Number(resumed[1]) >= 10, `resumed at ${resumed[1]}%\n${rows.join('\n')}`);
    assert.ok(rows.includes('second=0'), rows.join('\n'));
    assert.ok(
      rows.some((row) => /^dftp: resume\.bin: 12 MiB verified/.test(row)),
      rows.join('\n'),
    );
  });
});

describe('dmp on a terminal', { skip, timeout: 120_000 }, () => {
  test('dmp daemon prints readable lines on a terminal, JSON with --json; daemon.log stays JSON', async () => {
    const p = await peers();
    const term = await terminal(120, 20, { NO_COLOR: '1' });
    await term.type(`${cliLine('dmp', ['daemon'], { DMP_HOME: p.bob })}; echo "exit=$?"`);
    await term.waitFor('the daemon to start', /daemon started for bob/);
    const sent = await runDmp(['send', 'bob', 'hello daemon'], { home: p.alice });
    assert.equal(sent.code, 0);
    const rows = await term.waitFor('the message', /1 message from alice/);
    const logged = rows.filter((row) => /^\d\d:\d\d:\d\d /.test(row));
    assert.ok(
      logged.some((row) => /^\d\d:\d\d:\d\d info {2}daemon started for bob \(relay .*, pid \d+\)$/.test(row)),
      rows.join('\n'),
    );
    assert.ok(
      logged.some((row) => /^\d\d:\d\d:\d\d info {2}1 message from alice \(#1\); dmp listen shows it$/.test(row)),
      rows.join('\n'),
    );
    assert.deepEqual(
      rows.filter((row) => row.startsWith('{')),
      [],
      'JSON on the terminal',
    );
    await term.keys('C-c');
    await term.waitFor('the daemon to stop', /^exit=130$/m);
    const log = lines(await readFile(join(p.bob, 'daemon.log'), 'utf8'));
    assert.ok(log.length >= 3);
    for (const line of log) assert.doesNotThrow(() => JSON.parse(line), line);

    await term.type(`clear; ${cliLine('dmp', ['daemon', '--json'], { DMP_HOME: p.bob })}; echo "again=$?"`);
    const json = await term.waitFor('the daemon to start', /"event":"daemon-started"/);
    assert.ok(
      json.some((row) => row.startsWith('{"time":')),
      json.join('\n'),
    );
    await term.keys('C-c');
    await term.waitFor('the daemon to stop', /^again=130$/m);
  });

  test('dmp status --watch redraws in place every second until Ctrl-C (exit 130)', async () => {
    const p = await peers();
    const term = await terminal(80, 24, {});
    await term.type(`clear; ${cliLine('dmp', ['status', '--watch'], { DMP_HOME: p.alice })}; echo "exit=$?"`);
    await term.waitFor('the report', /^alice: daemon not running/m);
    const first = await term.screen();
    assert.match(first[0] ?? '', /^every 1 s; Ctrl-C to stop/, first.join('\n'));
    // A message from bob shows up in the next redraw, in the same place.
    const sent = await runDmp(['send', 'alice', 'news'], { home: p.bob });
    assert.equal(sent.code, 0);
    const rows = await term.waitFor('the new message', /1 new message from bob/, 10_000);
    const screen = await term.screen();
    assert.match(screen[0] ?? '', /^every 1 s; Ctrl-C to stop/, screen.join('\n'));
    assert.equal(
      rows.filter((row) => /^alice: daemon/.test(row)).length,
      1,
      `not redrawn in place:\n${rows.join('\n')}`,
    );
    const colour = (await term.screen({ escapes: true })).join('\n');
    assert.match(colour, SGR, 'no bold headings on a colour terminal');
    await term.keys('C-c');
    await term.waitFor('the end', /^exit=130$/m);
  });
});
