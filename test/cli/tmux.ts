/**
 * A real terminal for tests: a tmux session of a given size on a private server (its own socket
 * in a temp folder, so no other tmux on the machine is touched), running a plain shell. Tests
 * type commands into it and read the screen back as tmux shows it (`capture-pane`), escapes
 * included when asked.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliPath, type Program } from '../support/cli.js';
import { makeTempDir, removeTree } from '../support/files.js';
import { sleep, waitFor } from '../support/wait.js';

const run = promisify(execFile);

export interface Terminal {
  readonly width: number;
  readonly height: number;
  /** Types a command line and Enter. */
  type(line: string): Promise<void>;
  /** Sends keys as tmux names them ('C-c'). */
  keys(...keys: string[]): Promise<void>;
  /** The visible screen, one string per row (trailing spaces trimmed by tmux). */
  screen(options?: { escapes?: boolean }): Promise<string[]>;
  /** The scrollback and the screen, oldest first, lines the terminal wrapped joined again. */
  history(options?: { escapes?: boolean }): Promise<string[]>;
  /** Waits until the scrollback and screen match `pattern`. */
  waitFor(what: string, pattern: RegExp, timeoutMs?: number): Promise<string[]>;
  close(): Promise<void>;
}

/** Whether tmux can be run here. */
export async function hasTmux(): Promise<boolean> {
  return run('tmux', ['-V']).then(
    () => true,
    () => false,
  );
}

/** A shell command line that runs `program` of this checkout with `args` (quoted for sh). */
export function cliLine(program: Program, args: readonly string[], env: Record<string, string> = {}): string {
  const vars = Object.entries(env).map(([name, value]) => `${name}=${quote(value)}`);
  return [...vars, quote(process.execPath), quote(cliPath(program)), ...args.map(quote)].join(' ');
}

export function quote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * Opens a terminal of `width` x `height` running sh with `env` added (DMP_* and NO_COLOR of the
 * test runner removed; TERM is a colour terminal). `history` lines of scrollback are kept.
 */
export async function openTerminal(
  width: number,
  height: number,
  env: Record<string, string> = {},
  history = 2000,
): Promise<Terminal> {
  const dir = await makeTempDir('dmp-tmux-');
  const socket = join(dir, 'tmux.sock');
  const tmux = (...args: string[]) =>
    run('tmux', ['-S', socket, '-f', '/dev/null', ...args], { env: tmuxEnv(env), maxBuffer: 16 * 1024 * 1024 });
  try {
    await tmux('new-session', '-d', '-s', 'main', '-x', String(width), '-y', String(height), 'sh');
    await tmux('set-option', '-g', 'history-limit', String(history));
    await tmux('set-option', '-g', 'status', 'off');
    // The session was made at its size; make sure the window keeps it.
    await tmux('resize-window', '-t', 'main', '-x', String(width), '-y', String(height)).catch(() => {});
  } catch (error) {
    await removeTree(dir);
    throw error;
  }
  const capture = async (start: string | undefined, escapes: boolean) => {
    const args = [
      'capture-pane',
      '-p',
      '-t',
      'main',
      ...(escapes ? ['-e'] : []),
      ...(start ? ['-J', '-S', start] : []),
    ];
    const { stdout } = await tmux(...args);
    return stdout
      .replace(/\n$/, '')
      .split('\n')
      .map((row) => row.trimEnd());
  };
  // Typing before the shell has drawn its prompt mixes the prompt into the first output line.
  await waitFor(
    'the shell prompt',
    async () => (await capture(undefined, false)).some((row) => /[#$] ?$/.test(row)),
    10_000,
    {
      everyMs: 20,
    },
  );
  const terminal: Terminal = {
    width,
    height,
    async type(line) {
      await tmux('send-keys', '-t', 'main', '-l', line);
      await tmux('send-keys', '-t', 'main', 'Enter');
    },
    async keys(...keys) {
      await tmux('send-keys', '-t', 'main', ...keys);
    },
    screen: (options = {}) => capture(undefined, options.escapes ?? false),
    history: (options = {}) => capture('-', options.escapes ?? false),
    async waitFor(what, pattern, timeoutMs = 30_000) {
      let rows: string[] = [];
      await waitFor(
        `${what} on the terminal`,
        async () => {
          rows = await capture('-', false);
          return pattern.test(rows.join('\n'));
        },
        timeoutMs,
        { everyMs: 100, describe: () => rows.join('\n') },
      );
      return rows;
    },
    async close() {
      await tmux('kill-server').catch(() => {});
      await sleep(50);
      await removeTree(dir);
    },
  };
  return terminal;
}

function tmuxEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('DMP_') && !name.startsWith('TMUX') && name !== 'NO_COLOR' && name !== 'NODE_OPTIONS') {
      if (name !== 'NODE_TEST_CONTEXT') out[name] = value;
    }
  }
  return { ...out, TERM: 'xterm-256color', PS1: '$ ', ENV: '', ...env };
}
