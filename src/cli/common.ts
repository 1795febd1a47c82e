/**
 * What the two commands share: the global options, opening the peer from flags/env/config,
 * turning errors into one line and an exit status, and Ctrl-C into an AbortSignal.
 */
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import yargs, { type Argv, type CommandModule } from 'yargs';
import {
  DmpError,
  isDmpError,
  type Logger,
  type LogLevel,
  Peer,
  type PeerOptions,
  printable,
  resolveConfig,
  type ServeConfig,
} from '../index.js';
import { setColorFlag, styleFor, writeStderr } from './terminal.js';

export interface GlobalArgs {
  relay?: string;
  id?: string;
  key?: string;
  'key-file'?: string;
  home?: string;
  /** Milliseconds, as typed: parsed by parseWholeNumber so a bad value can be quoted as given. */
  poll?: string;
  json?: boolean;
  verbose?: boolean;
  strict?: boolean;
  /** false with --no-color. */
  color?: boolean;
}

export function withGlobalOptions<T>(yargs: Argv<T>): Argv<T & GlobalArgs> {
  return yargs
    .option('relay', { type: 'string', requiresArg: true, describe: 'the synced relay folder [env DMP_RELAY]' })
    .option('id', { type: 'string', requiresArg: true, describe: "this peer's id, 1-32 of a-z 0-9 - [env DMP_ID]" })
    .option('key', { type: 'string', requiresArg: true, describe: 'the relay key (Fernet) [env DMP_KEY]' })
    .option('key-file', {
      type: 'string',
      requiresArg: true,
      describe: 'read the relay key from a file [env DMP_KEY_FILE]',
    })
    .option('home', {
      type: 'string',
      requiresArg: true,
      describe: 'config, state and inbox of this peer [env DMP_HOME]',
    })
    .option('poll', {
      type: 'string',
      requiresArg: true,
      describe: 'poll the relay every MS instead of native events [env DMP_POLL]',
    })
    .option('json', { type: 'boolean', describe: 'one JSON object per line on stdout' })
    .option('verbose', { type: 'boolean', alias: 'v', describe: 'debug lines on stderr' })
    .option('strict', {
      type: 'boolean',
      describe: 'accept nothing from peers not verified with dmp verify [env DMP_STRICT]',
    })
    .option('color', { type: 'boolean', describe: 'colour and bold on a terminal; --no-color or NO_COLOR=1: none' })
    .group(
      ['relay', 'id', 'key', 'key-file', 'home', 'poll', 'strict', 'json', 'verbose', 'color', 'help'],
      'Common options:',
    ) as Argv<T & GlobalArgs>;
}

const VALUE_OPTIONS = new Set(['--relay', '--id', '--key', '--key-file', '--home']);

/**
 * `--key -abc...` must keep its value: a Fernet key can start with '-', which yargs would read
 * as a bundle of short flags. Values of the options that take one are joined as `--key=-abc...`.
 * Give it only the arguments before `--` (see hideOperands).
 */
export function joinOptionValues(args: string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] ?? '';
    const value = args[i + 1];
    if (VALUE_OPTIONS.has(arg) && value?.startsWith('-') && value !== '-' && !value.startsWith('--')) {
      joined.push(`${arg}=${value}`);
      i += 1;
    } else joined.push(arg);
  }
  return joined;
}

/**
 * `--` ends the options: what follows is operands only (file names, message text), never options,
 * and reaches the command unchanged however it is spelled (`dftp send bob -- -rf` sends the file
 * named `-rf`). yargs cannot be trusted with them: it leaves them out of a command's positional
 * arguments, and reads `-rf` as flags when it parses those again. So yargs sees a placeholder for
 * each operand, which no parser reads as an option, and `restoreOperands` puts the operands back
 * before the handler runs.
 */
export function hideOperands(args: readonly string[]): { args: string[]; operands: string[] } {
  const at = args.indexOf('--');
  if (at < 0) return { args: [...args], operands: [] };
  const operands = args.slice(at + 1);
  return { args: [...args.slice(0, at), ...operands.map((_, index) => placeholder(index))], operands };
}

const PLACEHOLDER = /^\u0000operand-(\d+)\u0000$/;

function placeholder(index: number): string {
  return `\u0000operand-${index}\u0000`;
}

/** The operand a placeholder stands for (any other text unchanged). */
function restoreOperand(text: string, operands: readonly string[]): string {
  const index = PLACEHOLDER.exec(text)?.[1];
  return index === undefined ? text : (operands[Number(index)] ?? text);
}

/** Puts the operands back wherever yargs placed their placeholders in `argv`. */
function restoreOperands(argv: Record<string, unknown>, operands: readonly string[]): void {
  if (operands.length === 0) return;
  for (const [name, value] of Object.entries(argv)) {
    if (typeof value === 'string') argv[name] = restoreOperand(value, operands);
    else if (Array.isArray(value)) {
      argv[name] = value.map((item) => (typeof item === 'string' ? restoreOperand(item, operands) : item));
    }
  }
}

/** Refusals already printed, so a command that then fails for the same reason says it once. */
const refusalsSaid = new Set<string>();

/** Human log lines on stderr: warnings always, debug with --verbose. */
export function stderrLogger(program: string, verbose: boolean): Logger {
  return {
    log(level: LogLevel, event: string, fields: Record<string, unknown> = {}) {
      if (level === 'debug' && !verbose) return;
      if (level === 'info' && !verbose) return;
      if (event === 'peer-unauthenticated') {
        // One line per peer: the reason says whether it is another key, a changed identity, ...
        refusalsSaid.add(String(fields.reason));
        writeStderr(`${program}: ${sanitize(String(fields.reason))}\n`);
        return;
      }
      if (event === 'peer-quarantined') {
        writeStderr(
          `${program}: ${sanitize(String(fields.peer))} is quarantined for ${String(fields.minutes)} min: ${sanitize(String(fields.reason))}\n`,
        );
        return;
      }
      // Said once through peer-unauthenticated above.
      if (event === 'identity-refused') return;
      const details = Object.entries(fields)
        .map(([name, value]) => `${name}=${typeof value === 'string' ? sanitize(value) : JSON.stringify(value)}`)
        .join(' ');
      const style = styleFor(process.stderr);
      const label = level === 'warn' ? style.yellow('warning: ') : level === 'error' ? style.red('error: ') : '';
      writeStderr(`${program}: ${label}${event} ${details}\n`);
    },
  };
}

/**
 * Text from the other side, made safe to print: control characters (terminal escapes), bidi
 * controls (`invoice\u202efdp.exe` would show as `invoiceexe.pdf`) and invisible characters are
 * escaped visibly (src/util/printable.ts).
 */
export function sanitize(text: string): string {
  return printable(text);
}

/** Settings from flags, environment and config, ready for Peer.open; and the folder to serve. */
export async function peerOptions(
  argv: GlobalArgs & { quota?: string },
  program: string,
): Promise<PeerOptions & { serve?: ServeConfig }> {
  const config = await resolveConfig({
    relay: argv.relay,
    id: argv.id,
    key: argv.key,
    keyFile: argv['key-file'],
    home: argv.home,
    poll: parseWholeNumber(argv.poll, 'poll', 'milliseconds'),
    quota: argv.quota,
    strict: argv.strict,
  });
  return {
    relay: config.relay,
    id: config.id,
    key: config.key,
    home: config.home,
    pollMs: config.pollMs,
    quota: config.quota,
    strict: config.strict,
    logger: stderrLogger(program, argv.verbose ?? false),
    ...(config.serve ? { serve: config.serve } : {}),
  };
}

/** Fails with a usage error unless `dir` is a folder (before a server starts on it). */
export async function checkServedFolder(dir: string): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new DmpError('USAGE', `cannot serve ${dir}: not a folder`);
}

/** Opens the peer, runs `run`, and closes the peer whatever happens. */
export async function withPeer<T>(argv: GlobalArgs, program: string, run: (peer: Peer) => Promise<T>): Promise<T> {
  const peer = await openPeer(argv, program);
  try {
    return await run(peer);
  } finally {
    peer.close();
  }
}

export async function openPeer(argv: GlobalArgs & { quota?: string }, program: string): Promise<Peer> {
  return Peer.open(await peerOptions(argv, program));
}

export const EXIT_USAGE = 2;
/** 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C. */
export const EXIT_INTERRUPTED = 130;

/**
 * Ctrl-C for the whole run of a program. Until a command says it can stop cleanly (by asking for
 * `interruptSignal()`), SIGINT ends the process at once; after that, the first SIGINT (or
 * SIGTERM) aborts the command's signal and the command winds down, and a second one ends the
 * process at once. Either way a Ctrl-C ends with exit 130 and one line.
 */
class Interrupts {
  private readonly controller = new AbortController();
  private listening = false;
  private resumable = false;
  /** The first SIGINT or SIGTERM received. */
  received: NodeJS.Signals | undefined;

  constructor(private readonly program: string) {}

  /** Catches SIGINT from the start, so no Ctrl-C ends a command without its line and status. */
  install(): void {
    process.on('SIGINT', () => this.onSignal('SIGINT'));
  }

  signal(options: { resumable?: boolean }): AbortSignal {
    this.resumable ||= options.resumable ?? false;
    if (!this.listening) {
      this.listening = true;
      // SIGTERM keeps its meaning of a clean stop (the daemon exits 0 on it); it only becomes an
      // interruption for the commands that can stop cleanly.
      process.on('SIGTERM', () => this.onSignal('SIGTERM'));
    }
    return this.controller.signal;
  }

  /** The line for a Ctrl-C. */
  line(): string {
    return `${this.program}: interrupted${this.resumable ? '; run the same command again to resume' : ''}\n`;
  }

  private onSignal(name: NodeJS.Signals): void {
    if (this.received !== undefined || !this.listening) {
      // A second signal, or nothing to wind down: leave now.
      writeStderr(this.line());
      // A progress bar hides the cursor; never leave the terminal without one.
      if (process.stderr.isTTY) process.stderr.write('\x1b[?25h');
      process.exit(EXIT_INTERRUPTED);
    }
    this.received = name;
    this.controller.abort(new DmpError('ABORTED', `interrupted by ${name}`));
  }
}

let interrupts: Interrupts | undefined;

/**
 * An AbortSignal that fires on SIGINT or SIGTERM; a second signal exits at once. `resumable`:
 * the Ctrl-C line tells the user to run the same command again to resume.
 */
export function interruptSignal(options: { resumable?: boolean } = {}): AbortSignal {
  if (interrupts === undefined) throw new Error('interruptSignal() is for commands run by runProgram()');
  return interrupts.signal(options);
}

/** Prints one line for an error and returns the exit status. `command`: the subcommand that ran. */
export function reportError(program: string, error: unknown, command?: string): number {
  if (isDmpError(error)) {
    // A malformed key is a mistake in what was typed or configured, like a malformed id.
    if (error.code === 'USAGE' || error.code === 'BAD_KEY') {
      writeStderr(usageLine(program, command, error.message));
      return EXIT_USAGE;
    }
    if (!refusalsSaid.has(error.message)) writeStderr(`${program}: ${sanitize(error.message)}\n`);
    if (error.code === 'ABORTED') return EXIT_INTERRUPTED;
    return 1;
  }
  const message = error instanceof Error ? error.message : String(error);
  writeStderr(`${program}: unexpected error: ${sanitize(message)}\n`);
  if (process.env.DMP_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  return 1;
}

/** Every usage error reads the same: `dftp send: what is wrong (see dftp send --help)`. */
function usageLine(program: string, command: string | undefined, message: string): string {
  const where = command === undefined ? program : `${program} ${command}`;
  // Messages of the library may name the command themselves ("dmp init needs --relay DIR").
  const text = message.startsWith(`${where} `) ? message.slice(where.length + 1) : message;
  return `${where}: ${sanitize(text)} (see ${where} --help)\n`;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Reads all of stdin as text. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Number options are declared as strings and parsed here: yargs turns `--count x` into NaN, and
 * the message must quote what was typed. A repeated option (an array) counts with its last value.
 */
function optionText(value: string | readonly string[] | undefined): string | undefined {
  return typeof value === 'string' || value === undefined ? value : value.at(-1);
}

/** A --count: a whole number of at least 1 (usage error otherwise). */
export function parseCount(value: string | readonly string[] | undefined): number | undefined {
  return parseWholeNumber(value, 'count');
}

/** A whole number of at least 1 (`unit` names what it counts, for the message). */
export function parseWholeNumber(
  value: string | readonly string[] | undefined,
  name: string,
  unit?: string,
): number | undefined {
  const text = optionText(value);
  if (text === undefined) return undefined;
  const number = Number(text.trim());
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(number) || number < 1) {
    const what = unit === undefined ? 'a whole number of at least 1' : `a whole number of ${unit}, at least 1`;
    throw new DmpError('USAGE', `invalid --${name} '${text}': give ${what}`);
  }
  return number;
}

/** Seconds (fractions allowed, 0 or more) as milliseconds. */
export function secondsToMs(value: string | readonly string[] | undefined, name: string): number | undefined {
  const text = optionText(value);
  if (text === undefined) return undefined;
  const seconds = Number(text.trim());
  if (!/^\s*(\d+\.?\d*|\.\d+)\s*$/.test(text) || !Number.isFinite(seconds)) {
    throw new DmpError('USAGE', `invalid --${name} '${text}': give a number of seconds, 0 or more`);
  }
  return seconds * 1000;
}

/** A command module; each types the arguments its handler takes. */
export interface Command {
  /** `name <positional> [more..]`, as yargs reads it. */
  command: string;
  describe: string;
  /** What to say when positional arguments are missing, e.g. 'give a peer and at least one file'. */
  missing?: string;
  builder?: (y: Argv) => Argv<unknown>;
  handler: (argv: never) => void | Promise<void>;
}

export interface ProgramSpec {
  name: 'dmp' | 'dftp';
  /** One sentence for the top of --help. */
  about: string;
  /** Shown under Examples: in `<name> --help`. */
  examples: readonly (readonly [string, string])[];
  commands: readonly Command[];
  /** Rewrites spellings yargs does not know; it only ever sees the arguments before `--`. */
  normalize?: (args: string[]) => string[];
}

/**
 * Turns yargs' own messages into the program's style: what to do, not what the parser counted.
 * `args`: what yargs was given, to tell an unknown option from an unexpected operand.
 */
function usageMessage(
  message: string,
  command: Command | undefined,
  args: readonly string[],
  operands: readonly string[],
): string {
  const unknown = /^Unknown arguments?: (.+)$/.exec(message);
  if (unknown) {
    const asOption = (name: string) =>
      args.find(
        (arg) => arg === `--${name}` || arg.startsWith(`--${name}=`) || arg === `--no-${name}` || arg === `-${name}`,
      );
    const names = (unknown[1] ?? '').split(', ');
    // An unknown command explains the rest: its options are unknown because it is.
    const operand = names.find((name) => asOption(name) === undefined);
    if (operand !== undefined) {
      const text = restoreOperand(operand, operands);
      return command === undefined ? `unknown command '${text}'` : `unexpected argument '${text}'`;
    }
    return `unknown option ${asOption(names[0] ?? '')?.split('=')[0]}`;
  }
  if (/^Not enough non-option arguments/.test(message)) return command?.missing ?? 'give a command';
  const noValue = /^Not enough arguments following: (.+)$/.exec(message);
  if (noValue) {
    const name = noValue[1] ?? '';
    return `${name.length === 1 ? '-' : '--'}${name} needs a value`;
  }
  return message.charAt(0).toLowerCase() + message.slice(1).replace(/\.$/, '');
}

const PACKAGE_JSON = new URL('../../../package.json', import.meta.url);

/** The version in package.json (dist/src/cli/ is three levels below the package root). */
function packageVersion(): string {
  try {
    const manifest = JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { version?: unknown };
    if (typeof manifest.version === 'string') return manifest.version;
  } catch {
    // Reported below.
  }
  return 'unknown (no package.json beside the program)';
}

/**
 * Runs a program's commands: strict parsing, help with examples, --version, shell completion,
 * one-line usage errors (exit 2), one-line failures (exit 1), Ctrl-C (exit 130), and an explicit
 * exit, so that watchers and lock timers never keep a finished command alive.
 */
export function runProgram(spec: ProgramSpec, args: string[]): void {
  const program = spec.name;
  const interrupt = new Interrupts(program);
  interrupts = interrupt;
  interrupt.install();
  // A reader that stopped reading (`dftp ls alice | head`) is no failure: stop quietly.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  });
  // The shell's completion script hands yargs the whole command line as typed, `--` included.
  const completing = args.includes('--get-yargs-completions');
  const { args: visible, operands } = completing ? { args, operands: [] } : hideOperands(args);
  const optionCount = visible.length - operands.length;
  const options = visible.slice(0, optionCount);
  const parsed = [
    ...(spec.normalize && !completing ? spec.normalize(options) : options),
    ...visible.slice(optionCount),
  ];
  /** The command yargs chose (its builder ran), so that a usage error names it. */
  let command: Command | undefined;

  let parser = yargs(parsed)
    .scriptName(program)
    .usage(`$0 <command> [options]\n\n${spec.about}`)
    .middleware((argv) => {
      restoreOperands(argv, operands);
      // --no-color holds for everything the command prints, before it prints anything.
      setColorFlag(argv.color === false ? false : undefined);
    });
  // Our own completion command rather than yargs' .completion(), so that its --help is a help page
  // with examples like every other; yargs answers --get-yargs-completions either way.
  const completion: Command = {
    command: 'completion',
    describe: 'print a shell completion script for the shell in $SHELL (bash or zsh)',
    builder: (y: Argv) =>
      y
        .example(`$0 completion >> ~/.bashrc`, `complete ${program}'s commands and options in bash`)
        .example(`SHELL=zsh $0 completion >> ~/.zshrc`, 'the same for zsh'),
    handler: () => {
      parser.showCompletionScript();
    },
  };
  for (const module of [...spec.commands, completion]) {
    const failInCommand = (message: string | null, error: Error | null): never => {
      if (error && error.name !== 'YError') throw error;
      throw new DmpError('USAGE', usageMessage(message ?? error?.message ?? '', module, parsed, operands));
    };
    parser = parser.command({
      ...module,
      builder: (y: Argv) => {
        command = module;
        // A command's own fail handler runs first, so yargs' complaints name the command.
        return (module.builder ? module.builder(y) : y).fail(failInCommand);
      },
    } as unknown as CommandModule);
  }
  for (const [example, description] of spec.examples) parser = parser.example(example, description);
  // Inside an async function: yargs throws usage errors synchronously from parseAsync.
  const run = async () =>
    parser
      .demandCommand(1, 'give a command')
      .strict()
      .help()
      .alias('help', 'h')
      .version(packageVersion())
      // yargs renders the running command's help on every run, shown or not; wrapping it to the
      // terminal took ~25 ms of a 300 ms start-up, so it is wrapped only when help is asked for.
      .wrap(wantsHelp(visible) ? Math.min(100, process.stderr.columns ?? 100) : null)
      .fail((message, error) => {
        // Errors of the handlers pass through; yargs' own (a YError) are usage errors.
        if (error && error.name !== 'YError') throw error;
        throw new DmpError('USAGE', usageMessage(message ?? error?.message ?? '', command, parsed, operands));
      })
      .parseAsync();
  run().then(
    () => finish(),
    (error: unknown) => finish({ error }),
  );

  function finish(failure?: { error: unknown }): void {
    if (interrupt.received === 'SIGINT') {
      // Whatever the command made of its aborted signal, a Ctrl-C reads the same everywhere.
      writeStderr(interrupt.line());
      exit(EXIT_INTERRUPTED);
    } else exit(failure === undefined ? 0 : reportError(program, failure.error, commandName(command)));
  }
}

/** Whether the arguments (before `--`) ask for a help page. */
function wantsHelp(args: readonly string[]): boolean {
  return args.some((arg) => arg === '--help' || arg === '-h' || (/^-[a-zA-Z]+$/.test(arg) && arg.includes('h')));
}

/** `send <peer> <paths..>` -> send. */
function commandName(command: Command | undefined): string | undefined {
  return command?.command.split(' ')[0];
}

function exit(status: number): void {
  process.exitCode = status;
  const leave = () => setImmediate(() => process.exit(status));
  // Writes to a pipe are asynchronous: exiting at once would cut a long output (a listing of
  // thousands of lines) short. An empty write's callback runs once everything before it is out.
  if (process.stdout.writableLength > 0) process.stdout.write('', leave);
  else leave();
}
