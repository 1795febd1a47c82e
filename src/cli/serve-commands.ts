/**
 * dftp serve, ls, get, put, rm: a folder served to the other peers, and its clients. A thin layer
 * over Peer.serveFolder, listFolder, getFiles, putFiles and removeFile.
 */
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import {
  checkBlockSize,
  DmpError,
  type FileResult,
  formatSize,
  type ListEntry,
  parseSize,
  type ServeEvent,
} from '../index.js';
import {
  checkServedFolder,
  type GlobalArgs,
  interruptSignal,
  peerOptions,
  printJson,
  sanitize,
  secondsToMs,
  withGlobalOptions,
  withPeer,
} from './common.js';
import { checkWritableFolder } from './files.js';
import { passcodeSource } from './passcode.js';
import { ProgressView } from './progress.js';
import { displayWidth, padEnd, styleFor, writeStderr } from './terminal.js';

const PROGRAM = 'dftp';

interface ClientArgs extends GlobalArgs {
  peer: string;
  timeout?: string;
  'passcode-file'?: string;
}

/** The options every client command has. */
function clientOptions<T>(y: Argv<T>): Argv<T & GlobalArgs> {
  return withGlobalOptions(y)
    .option('timeout', {
      type: 'string',
      requiresArg: true,
      alias: 'W',
      describe: 'seconds to wait for an answer before saying the server does not run (default 30)',
    })
    .option('passcode-file', {
      type: 'string',
      requiresArg: true,
      describe: 'read the passcode of protected files from this file (on a terminal it is asked for, hidden)',
    }) as Argv<T & GlobalArgs>;
}

/**
 * After a get or a put: nothing more when every file went; the one failure as the command's own
 * error; several named one per line, then counted. Ctrl-C is an interruption, whatever the files say.
 */
function reportResults(
  results: readonly FileResult[],
  signal: AbortSignal,
  json: boolean,
  say: (line: string) => void,
): void {
  if (signal.aborted) throw new DmpError('ABORTED', 'interrupted; run the same command again to resume');
  const failed = results.filter((result) => result.error !== undefined);
  if (json)
    for (const result of failed)
      printJson({ event: 'failed', file: result.name, code: result.error?.code, reason: result.error?.message });
  const [only] = failed;
  if (only?.error === undefined) return;
  if (failed.length === 1 && !json) throw only.error;
  if (!json) for (const result of failed) say(`${PROGRAM}: ${sanitize(result.error?.message ?? '')}`);
  throw new DmpError(only.error.code, `${failed.length} of ${results.length} files failed`, { data: only.error.data });
}

interface ServeArgs extends GlobalArgs {
  dir?: string;
  allow?: string[];
  'allow-put'?: boolean;
  'allow-delete'?: boolean;
  'allow-overwrite'?: boolean;
  quota?: string;
}

export function serveCommand() {
  return {
    command: 'serve [dir]',
    describe: 'serve a folder: other peers list it, get files, and (when allowed) put and delete them',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .positional('dir', { type: 'string', describe: 'the folder (default: "serve" in the config)' })
        .option('allow', {
          type: 'string',
          array: true,
          requiresArg: true,
          describe: 'only these peers (default: every peer whose identity is accepted)',
        })
        .option('allow-put', { type: 'boolean', describe: 'peers may put files into the folder' })
        .option('allow-delete', { type: 'boolean', describe: 'peers may delete files in the folder' })
        .option('allow-overwrite', {
          type: 'boolean',
          describe: 'a put may replace a file (a protected one only with its passcode)',
        })
        .option('quota', { type: 'string', requiresArg: true, describe: 'most bytes this peer may hold in the relay' })
        .example('$0 serve ~/public', 'every peer may list and get; Ctrl-C stops')
        .example('$0 serve ~/drop --allow bob carol --allow-put', 'bob and carol may also put files')
        .example('$0 serve ~/shared --allow-put --allow-delete --json', 'one JSON line per request answered'),
    handler: async (argv: ServeArgs) => {
      if (argv.quota !== undefined) parseSize(argv.quota, 'quota');
      const options = await peerOptions(argv, PROGRAM);
      const config = options.serve;
      const given = argv.dir ?? config?.dir;
      if (given === undefined) throw new DmpError('USAGE', 'give the folder to serve');
      const dir = resolve(given);
      await checkServedFolder(dir);
      const allow = argv.allow ?? config?.allow;
      const allowPut = argv['allow-put'] ?? config?.allowPut ?? false;
      const allowDelete = argv['allow-delete'] ?? config?.allowDelete ?? false;
      const allowOverwrite = argv['allow-overwrite'] ?? config?.allowOverwrite ?? false;
      await withPeer(argv, PROGRAM, async (peer) => {
        const signal = interruptSignal();
        const ops = ['ls', 'get', ...(allowPut ? ['put'] : []), ...(allowDelete ? ['rm'] : [])].join(', ');
        const who = allow === undefined ? 'every peer' : allow.join(', ');
        if (!argv.json) writeStderr(`${PROGRAM}: serving ${sanitize(dir)} to ${who} (${ops}); Ctrl-C stops\n`);
        const style = styleFor(process.stderr);
        const onEvent = (event: ServeEvent) => {
          if (argv.json) {
            if (event.event === 'answered') printJson(event);
            else if (event.transfer.event === 'done' || event.transfer.event === 'failed') {
              const { event: outcome, ...transfer } = event.transfer;
              const done = event.side === 'send' ? 'sent' : 'received';
              printJson({ event: outcome === 'done' ? done : 'transfer-failed', ...transfer });
            }
            return;
          }
          if (event.event === 'answered') {
            const what = `${event.peer}: ${event.op}${event.path === '' ? '' : ` ${sanitize(event.path)}`}`;
            writeStderr(`${PROGRAM}: ${what}${event.ok ? '' : `: ${style.yellow(event.code ?? 'refused')}`}\n`);
          } else if (event.transfer.event === 'done') {
            const { transfer } = event;
            const way = event.side === 'send' ? `sent to ${transfer.peer}` : `received from ${transfer.peer}`;
            writeStderr(
              `${PROGRAM}: ${sanitize(transfer.file)} ${way}, ${formatSize(transfer.bytes)} ${style.green('verified')}\n`,
            );
          } else if (event.transfer.event === 'failed') {
            const { transfer } = event;
            writeStderr(`${PROGRAM}: ${sanitize(transfer.file)}: ${style.red(sanitize(transfer.reason))}\n`);
          }
        };
        // Online while serving: `dmp who` on the clients says so.
        const online = peer.publishPresence(signal).catch(() => {});
        await peer.serveFolder(dir, { allow, allowPut, allowDelete, allowOverwrite, signal, onEvent });
        await online;
      });
    },
  };
}

interface LsArgs extends ClientArgs {
  path?: string;
}

/** "2026-01-01 12:34" in local time. */
function when(ms: number): string {
  const date = new Date(ms);
  const two = (value: number) => String(value).padStart(2, '0');
  return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ${two(date.getHours())}:${two(date.getMinutes())}`;
}

export function lsCommand() {
  return {
    command: 'ls <peer> [path]',
    describe: 'list a folder a peer serves: sizes, times, whether protected, SHA-256',
    missing: 'give the peer that serves the folder',
    builder: (y: Argv) =>
      clientOptions(y)
        .positional('peer', { type: 'string', describe: 'the peer running dftp serve' })
        .positional('path', { type: 'string', describe: 'a folder inside what it serves (default: the top)' })
        .example('$0 ls alice', 'what alice serves')
        .example('$0 ls alice photos --json', 'one JSON object per entry of photos/'),
    handler: async (argv: LsArgs) => {
      const timeoutMs = secondsToMs(argv.timeout, 'timeout');
      await withPeer(argv, PROGRAM, async (peer) => {
        const signal = interruptSignal();
        const listing = await peer.listFolder(argv.peer, argv.path ?? '', { timeoutMs, signal });
        if (argv.json) {
          for (const entry of listing.entries) {
            printJson({
              name: entry.name,
              type: entry.type,
              size: entry.size,
              mtime: new Date(entry.mtimeMs).toISOString(),
              protected: entry.protected ?? false,
              ...(entry.sha256 === undefined ? {} : { sha256: entry.sha256 }),
            });
          }
        } else printListing(listing.entries);
        if (listing.truncated) {
          writeStderr(`${PROGRAM}: only the first ${listing.entries.length} entries: list a folder inside it\n`);
        }
        if (listing.entries.length === 0 && !argv.json) writeStderr(`${PROGRAM}: the folder is empty\n`);
      });
    },
  };
}

function printListing(entries: readonly ListEntry[]): void {
  if (entries.length === 0) return;
  const style = styleFor(process.stdout);
  const rows = entries.map((entry) => [
    entry.type === 'folder' ? '-' : formatSize(entry.size),
    when(entry.mtimeMs),
    entry.protected ? 'protected' : '',
    entry.sha256 === undefined ? '' : `${entry.sha256.slice(0, 16)}…`,
    `${sanitize(entry.name)}${entry.type === 'folder' ? '/' : ''}`,
  ]);
  const header = ['SIZE', 'MODIFIED', '', 'SHA-256', 'NAME'];
  const widths = header.map((_, column) =>
    Math.max(...[header, ...rows].map((row) => displayWidth(row[column] ?? ''))),
  );
  const line = (row: string[]) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : padEnd(cell, widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${[style.bold(line(header)), ...rows.map(line)].join('\n')}\n`);
}

interface GetArgs extends ClientArgs {
  names?: string[];
  out?: string;
  overwrite?: boolean;
}

export function getCommand() {
  return {
    command: 'get <peer> [names..]',
    describe: 'get files from a folder a peer serves; rerun after an interruption to resume',
    missing: 'give the peer and at least one file',
    builder: (y: Argv) =>
      clientOptions(y)
        .positional('peer', { type: 'string', describe: 'the peer running dftp serve' })
        .positional('names', { type: 'string', array: true, describe: 'files, as dftp ls shows them' })
        .option('out', {
          type: 'string',
          requiresArg: true,
          describe: 'where files land (default: the current folder)',
        })
        .option('overwrite', { type: 'boolean', describe: 'replace existing files instead of choosing a free name' })
        .example('$0 get alice report.pdf photos/cat.jpg --out ~/in', 'two files into ~/in')
        .example('$0 get alice secret.txt --passcode-file pass.txt', 'a protected file, in a script'),
    handler: async (argv: GetArgs) => {
      const names = argv.names ?? [];
      if (names.length === 0) throw new DmpError('USAGE', 'give the peer and at least one file');
      const timeoutMs = secondsToMs(argv.timeout, 'timeout');
      await peerOptions(argv, PROGRAM);
      const out = resolve(argv.out ?? process.cwd());
      await checkWritableFolder(out);
      await withPeer(argv, PROGRAM, async (peer) => {
        const signal = interruptSignal({ resumable: true });
        const view = new ProgressView({ program: PROGRAM, direction: 'receive', json: argv.json ?? false });
        try {
          const results = await peer.getFiles(argv.peer, names, {
            out,
            overwrite: argv.overwrite,
            timeoutMs,
            signal,
            passcode: passcodeSource({ file: argv['passcode-file'] }),
            onEvent: (event) => view.handle(event),
          });
          view.stop();
          reportResults(results, signal, argv.json ?? false, (line) => view.say(line));
        } finally {
          view.stop();
        }
      });
    },
  };
}

interface PutArgs extends ClientArgs {
  paths?: string[];
  protect?: boolean;
  'block-size'?: string;
  quota?: string;
}

export function putCommand() {
  return {
    command: 'put <peer> [paths..]',
    describe: 'put files (folders with what is in them) into a folder a peer serves; rerun to resume',
    missing: 'give the peer and at least one file',
    builder: (y: Argv) =>
      clientOptions(y)
        .positional('peer', { type: 'string', describe: 'the peer running dftp serve --allow-put' })
        .positional('paths', { type: 'string', array: true, describe: 'files or folders' })
        .option('protect', {
          type: 'boolean',
          describe:
            'only those who give the passcode may get or delete them (asked on the terminal, or --passcode-file)',
        })
        .option('block-size', {
          type: 'string',
          requiresArg: true,
          describe: 'bytes per chunk, 1k to 256m (default 4m)',
        })
        .option('quota', { type: 'string', requiresArg: true, describe: 'most bytes this peer may hold in the relay' })
        .example('$0 put alice notes.txt photos/', 'a file and a folder')
        .example('$0 put alice diary.txt --protect', 'protected: asks for a passcode twice, hidden'),
    handler: async (argv: PutArgs) => {
      const paths = argv.paths ?? [];
      if (paths.length === 0) throw new DmpError('USAGE', 'give the peer and at least one file');
      const timeoutMs = secondsToMs(argv.timeout, 'timeout');
      const blockSize = argv['block-size'] === undefined ? undefined : parseSize(argv['block-size'], 'block size');
      if (blockSize !== undefined) checkBlockSize(blockSize);
      if (argv.quota !== undefined) parseSize(argv.quota, 'quota');
      await withPeer(argv, PROGRAM, async (peer) => {
        const signal = interruptSignal({ resumable: true });
        const view = new ProgressView({ program: PROGRAM, direction: 'send', json: argv.json ?? false });
        try {
          const results = await peer.putFiles(argv.peer, paths, {
            protect: argv.protect,
            blockSize,
            timeoutMs,
            signal,
            passcode: passcodeSource({ file: argv['passcode-file'], confirm: argv.protect }),
            onEvent: (event) => view.handle(event),
          });
          view.stop();
          if (!argv.json) {
            for (const result of results) {
              if (result.error === undefined && result.path !== undefined && result.path !== result.name) {
                view.say(`${PROGRAM}: ${sanitize(result.name)} is ${sanitize(result.path)} on ${argv.peer}`);
              }
            }
          }
          reportResults(results, signal, argv.json ?? false, (line) => view.say(line));
        } finally {
          view.stop();
        }
      });
    },
  };
}

interface RmArgs extends ClientArgs {
  name: string;
}

export function rmCommand() {
  return {
    command: 'rm <peer> <name>',
    describe: 'delete a file in a folder a peer serves (dftp serve --allow-delete)',
    missing: 'give the peer and the file',
    builder: (y: Argv) =>
      clientOptions(y)
        .positional('peer', { type: 'string', describe: 'the peer running dftp serve' })
        .positional('name', { type: 'string', describe: 'the file, as dftp ls shows it' })
        .example('$0 rm alice old/report.pdf', 'delete it on alice')
        .example('$0 rm alice diary.txt --passcode-file pass.txt', 'a protected file, in a script'),
    handler: async (argv: RmArgs) => {
      const timeoutMs = secondsToMs(argv.timeout, 'timeout');
      await withPeer(argv, PROGRAM, async (peer) => {
        const signal = interruptSignal();
        const removed = await peer.removeFile(argv.peer, argv.name, {
          timeoutMs,
          signal,
          passcode: passcodeSource({ file: argv['passcode-file'] }),
        });
        if (argv.json) printJson({ event: 'removed', peer: argv.peer, name: removed });
        else writeStderr(`${PROGRAM}: removed ${sanitize(removed)} on ${argv.peer}\n`);
      });
    },
  };
}
