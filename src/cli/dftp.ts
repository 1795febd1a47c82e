#!/usr/bin/env node
/**
 * dftp: files of any size through the relay, in encrypted chunks that never exceed the quota.
 * A thin layer over the public API in src/peer.ts.
 */
import './small-heap.js';
import { stat, unlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import {
  checkBlockSize,
  DmpError,
  daemonStatus,
  expandSources,
  formatSize,
  HomeLayout,
  isDmpError,
  openForStatus,
  parsePeerId,
  parseSize,
  queueFiles,
  type SourceFile,
  type TransferRecord,
} from '../index.js';
import {
  type GlobalArgs,
  interruptSignal,
  joinOptionValues,
  openPeer,
  parseCount,
  peerOptions,
  printJson,
  runProgram,
  sanitize,
  withGlobalOptions,
} from './common.js';
import { checkWritableFolder, copyToStdout, saveStdin, stdinFolder, stdoutFolder } from './files.js';
import { ProgressView } from './progress.js';
import { getCommand, lsCommand, putCommand, rmCommand, serveCommand } from './serve-commands.js';
import { ago, displayWidth, fitStart, padEnd, styleFor, writeStderr } from './terminal.js';

const PROGRAM = 'dftp';

interface SendArgs extends GlobalArgs {
  peer: string;
  paths?: string[];
  /** Set by normalizeArgs for a lone '-', which yargs drops from positionals. */
  stdin?: boolean;
  name?: string;
  'block-size'?: string;
  quota?: string;
  queue?: boolean;
}

/** "1 file", "3 files". */
function files(count: number): string {
  return `${count} file${count === 1 ? '' : 's'}`;
}

/** The files to send, and what was left out; fails when nothing is left to send. */
async function sourcesOf(argv: SendArgs, home: string): Promise<{ sources: SourceFile[]; skipped: string[] }> {
  const paths = argv.paths ?? [];
  if (argv.stdin) {
    if (process.stdin.isTTY) writeStderr(`${PROGRAM}: reading standard input; end it with Ctrl-D\n`);
    return { sources: [{ path: await saveStdin(home), name: argv.name ?? 'stdin' }], skipped: [] };
  }
  const { files: sources, skipped } = await expandSources(paths);
  for (const skip of skipped) {
    writeStderr(`${PROGRAM}: ${styleFor().yellow('skipped')} ${sanitize(skip.path)}: ${skip.reason}\n`);
  }
  if (sources.length === 0) {
    const where = paths.map(sanitize).join(', ');
    throw new DmpError(
      'IO',
      skipped.length === 0
        ? `nothing to send in ${where}`
        : `nothing could be read in ${where}: ${files(skipped.length)} skipped`,
    );
  }
  return { sources, skipped: skipped.map((skip) => skip.path) };
}

/** Usage errors in what was given to send, found before anything is read or opened. */
function checkSendArgs(argv: SendArgs): void {
  const paths = argv.paths ?? [];
  if (argv.stdin && paths.length > 0) throw new DmpError('USAGE', "'-' sends standard input alone: give no other file");
  if (!argv.stdin && argv.name !== undefined) {
    throw new DmpError('USAGE', "--name names standard input: give '-' as the file");
  }
  if (!argv.stdin && paths.length === 0) throw new DmpError('USAGE', 'give a peer and at least one file');
}

/** After everything else was sent: exit 1 naming what was left out. */
function failForSkipped(skipped: readonly string[]): void {
  if (skipped.length === 0) return;
  throw new DmpError(
    'IO',
    `${files(skipped.length)} could not be read and were not sent: ${skipped.map(sanitize).join(', ')}`,
  );
}

function send() {
  return {
    command: 'send <peer> [paths..]',
    describe: "send files and directories, or '-' for standard input; rerun after any interruption to resume",
    missing: 'give a peer and at least one file',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .positional('peer', { type: 'string', describe: 'the recipient' })
        .positional('paths', {
          type: 'string',
          array: true,
          describe: "files or directories, or '-' for standard input ('--' before names that start with '-')",
        })
        .option('stdin', { type: 'boolean', hidden: true })
        .option('name', {
          type: 'string',
          requiresArg: true,
          describe:
            "with '-': the file name bob gets (default stdin). Standard input is saved in DMP_HOME/tmp/stdin/ first and deleted once sent; the same input again resumes",
        })
        .option('block-size', {
          type: 'string',
          requiresArg: true,
          describe:
            'bytes per chunk, 1k to 256m: k, m, g (x1024) or kb, mb, gb, tb; also -bs (default 4m, less for a small quota). A resumed send keeps the block size it started with',
        })
        .option('quota', {
          type: 'string',
          requiresArg: true,
          describe: 'most bytes this peer may hold in the relay (default 256m)',
        })
        .option('queue', { type: 'boolean', describe: "hand the files to the daemon's outbox and return at once" })
        .example('$0 send bob movie.mkv photos/', 'a file and a folder; returns once bob has them whole')
        .example('$0 send bob huge.iso -bs 16m --quota 256m', '16 MiB chunks, at most 256 MiB in the relay')
        .example('tar c photos | $0 send bob - --name photos.tar', 'standard input, as photos.tar')
        .example('$0 send --queue bob report.pdf', 'leave it to the daemon (dmp daemon)')
        .example('$0 send bob -- -notes.txt', "a name that starts with '-'"),
    handler: async (argv: SendArgs) => {
      const { peer: peerId } = argv;
      checkSendArgs(argv);
      const blockSize = argv['block-size'] === undefined ? undefined : parseSize(argv['block-size'], 'block size');
      if (blockSize !== undefined) checkBlockSize(blockSize);
      if (argv.quota !== undefined) parseSize(argv.quota, 'quota');
      const options = await peerOptions(argv, PROGRAM);
      if (argv.queue) {
        const target = parsePeerId(peerId, 'peer');
        const { sources, skipped } = await sourcesOf(argv, options.home);
        const queued = await queueFiles(new HomeLayout(options.home).folder('outbox'), target, sources);
        if (argv.stdin) await unlink(sources[0]?.path ?? '').catch(() => {});
        const daemon = await daemonStatus(options.home);
        if (argv.json) {
          for (const path of queued) printJson({ event: 'queued', peer: peerId, path, daemon: daemon.running });
        } else {
          writeStderr(`${PROGRAM}: ${files(queued.length)} queued for ${peerId}\n`);
          if (!daemon.running) {
            writeStderr(
              `${PROGRAM}: no daemon is running for ${options.id}: start \`dmp daemon\` to send ${queued.length === 1 ? 'it' : 'them'}\n`,
            );
          }
        }
        failForSkipped(skipped);
        return;
      }
      const peer = await openPeer(argv, PROGRAM);
      const signal = interruptSignal({ resumable: true });
      const view = new ProgressView({ program: PROGRAM, direction: 'send', json: argv.json ?? false });
      try {
        const { sources, skipped } = await sourcesOf(argv, options.home);
        let bytes = 0;
        for (const source of sources) bytes += (await stat(source.path).catch(() => undefined))?.size ?? 0;
        view.expect(sources.length, bytes);
        await peer.sendSources(peerId, sources, { blockSize, signal, onEvent: (event) => view.handle(event) });
        if (argv.stdin) await unlink(sources[0]?.path ?? '').catch(() => {});
        view.stop();
        failForSkipped(skipped);
      } finally {
        view.stop();
        peer.close();
      }
    },
  };
}

interface ReceiveArgs extends GlobalArgs {
  from?: string;
  out?: string;
  count?: string;
  overwrite?: boolean;
  stdout?: boolean;
}

/**
 * Tells the senders waiting for this peer that it cannot receive, and why; quietly, as the
 * caller's error is the one line to say. Best effort: the relay may be what is missing.
 */
async function refuseWaitingFiles(argv: ReceiveArgs, reason: string): Promise<void> {
  const peer = await openPeer(argv, PROGRAM).catch(() => undefined);
  try {
    await peer?.refuseWaitingFiles(reason, argv.from);
  } catch {
    // The error being reported already says what is wrong here.
  } finally {
    peer?.close();
  }
}

function receive() {
  return {
    command: 'receive',
    describe:
      'receive files from peers into --out (or one to standard output); rerun after an interruption to continue',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .option('from', { type: 'string', requiresArg: true, describe: 'only accept files from this peer' })
        .option('out', {
          type: 'string',
          requiresArg: true,
          describe: 'where files land (default: the current directory)',
        })
        .option('count', { type: 'string', requiresArg: true, alias: 'c', describe: 'exit 0 after N files' })
        .option('overwrite', { type: 'boolean', describe: 'replace existing files instead of choosing a free name' })
        .option('stdout', {
          type: 'boolean',
          describe:
            'write one file to standard output, once it is whole and verified (it is received into DMP_HOME/tmp/stdout/ first); progress goes to stderr',
        })
        .example('$0 receive --out ~/incoming', 'accept files from every peer until Ctrl-C')
        .example('$0 receive --from alice --count 1', 'one file from alice into the current folder, then exit')
        .example('$0 receive --from alice --stdout | tar x', 'one file from alice, to standard output'),
    handler: async (argv: ReceiveArgs) => {
      let count = parseCount(argv.count);
      if (argv.stdout) {
        if (argv.out !== undefined) throw new DmpError('USAGE', '--stdout and --out: give one of them');
        if (argv.json) throw new DmpError('USAGE', '--stdout and --json both write to standard output: give one');
        if (count !== undefined && count !== 1)
          throw new DmpError('USAGE', '--stdout writes one file: leave out --count');
        if (process.stdout.isTTY) {
          throw new DmpError('USAGE', '--stdout: standard output is a terminal; redirect it to a file or a pipe');
        }
        count = 1;
      }
      const options = await peerOptions(argv, PROGRAM);
      const out = argv.stdout ? stdoutFolder(options.home) : resolve(argv.out ?? process.cwd());
      try {
        await checkWritableFolder(out);
      } catch (error) {
        // Senders waiting for this peer are told why, rather than left waiting for ever.
        if (isDmpError(error, 'IO')) await refuseWaitingFiles(argv, `${options.id} ${error.message}`);
        throw error;
      }
      const peer = await openPeer(argv, PROGRAM);
      const signal = interruptSignal({ resumable: true });
      const view = new ProgressView({ program: PROGRAM, direction: 'receive', json: argv.json ?? false });
      let failures = 0;
      let received: string[] = [];
      try {
        const done = await peer.receiveFiles({
          from: argv.from,
          out,
          count,
          // Nobody sees the folder of --stdout: a file left there by an earlier run is replaced.
          overwrite: argv.stdout ? true : argv.overwrite,
          signal,
          onEvent: (event) => {
            if (event.event === 'failed') failures += 1;
            // With --stdout, where the file waits before it is copied out is no news.
            view.handle(argv.stdout && event.event === 'done' ? { ...event, path: undefined } : event);
          },
        });
        received = done.flatMap((event) => (event.event === 'done' && event.path ? [event.path] : []));
      } finally {
        view.stop();
        peer.close();
      }
      if (argv.stdout && !signal.aborted) {
        const path = received[0];
        if (path === undefined) throw new DmpError('TRANSFER_FAILED', 'no file was received');
        await copyToStdout(path);
        await unlink(path).catch(() => {});
      }
      if (failures > 0 && count !== undefined) {
        throw new DmpError('TRANSFER_FAILED', `${failures} transfer${failures === 1 ? '' : 's'} failed`);
      }
    },
  };
}

/** "12.0 MiB/64.0 MiB 18%". */
function progressText(record: { bytes: number; total: number }): string {
  const percent = record.total === 0 ? 100 : Math.floor((record.bytes / record.total) * 100);
  return `${formatSize(record.bytes)}/${formatSize(record.total)} ${percent}%`;
}

/** What a transfer is doing, in words: a transfer nobody works on is interrupted. */
export function stateText(record: Pick<TransferRecord, 'state' | 'active' | 'reason'>): string {
  const moving = record.state === 'receiving' || record.state === 'waiting' || record.state === 'paused';
  const state = moving && !record.active ? 'interrupted' : record.state;
  return record.reason && record.state !== 'complete' ? `${state}: ${sanitize(record.reason)}` : state;
}

function list() {
  return {
    command: 'list',
    describe: 'list the transfers in flight or interrupted, both ways',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .example('$0 list', 'id, peer, file, bytes, state and last activity of each transfer')
        .example('$0 list --json', 'one JSON object per transfer'),
    handler: async (argv: GlobalArgs) => {
      const { peer } = await openForStatus(await peerOptions(argv, PROGRAM));
      try {
        const records = await peer.transfers();
        const now = peer.clock.now();
        if (argv.json) {
          for (const record of records) {
            printJson({
              id: record.tid,
              direction: record.direction,
              peer: record.peer,
              file: record.file,
              path: record.path,
              bytes: record.bytes,
              total: record.total,
              blockSize: record.blockSize,
              state: record.state,
              ...(record.reason === undefined ? {} : { reason: record.reason }),
              active: record.active,
              startedAt: new Date(record.startedAt).toISOString(),
              lastActivity: new Date(record.updatedAt).toISOString(),
            });
          }
          return;
        }
        if (records.length === 0) {
          writeStderr(`${PROGRAM}: no transfers in flight\n`);
          return;
        }
        const style = styleFor(process.stdout);
        const rows = [
          ['ID', 'PEER', 'FILE', 'DONE', 'STATE', 'LAST ACTIVITY'],
          ...records.map((record) => [
            record.tid.slice(0, 8),
            `${record.direction === 'send' ? 'to' : 'from'} ${record.peer}`,
            sanitize(record.file),
            progressText(record),
            stateText(record),
            ago(record.updatedAt, now),
          ]),
        ];
        const widths = rows[0]!.map((_, column) =>
          Math.min(column === 2 ? 40 : 60, Math.max(...rows.map((row) => displayWidth(row[column] ?? '')))),
        );
        const text = rows.map((row, index) => {
          const line = row
            .map((cell, column) =>
              column === row.length - 1 ? cell : padEnd(fitStart(cell, widths[column] ?? 0), widths[column] ?? 0),
            )
            .join('  ');
          return index === 0 ? style.bold(line) : line;
        });
        process.stdout.write(`${text.join('\n')}\n`);
      } finally {
        peer.close();
      }
    },
  };
}

interface CancelArgs extends GlobalArgs {
  which: string;
}

function cancel() {
  return {
    command: 'cancel <which>',
    describe: 'end a transfer for good on both sides: by its id (from dftp list) or its file',
    missing: 'give the id of a transfer (dftp list shows them) or its file',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .positional('which', { type: 'string', describe: 'the id, its first 4 or more characters, or the file' })
        .example('$0 cancel 3fa94c1b', 'by id: a send is withdrawn, a receive refused and its partial file deleted')
        .example('$0 cancel movie.mkv', 'the send of movie.mkv (the path it was sent from)'),
    handler: async (argv: CancelArgs) => {
      const options = await peerOptions(argv, PROGRAM);
      const peer = await openPeer(argv, PROGRAM);
      try {
        const record = await peer.cancelTransfer(argv.which);
        // Standard input saved for this send has no other use.
        if (record.direction === 'send' && dirname(record.path) === stdinFolder(options.home)) {
          await unlink(record.path).catch(() => {});
        }
        if (argv.json) {
          printJson({
            event: 'cancelled',
            id: record.tid,
            direction: record.direction,
            peer: record.peer,
            file: record.file,
          });
        } else if (record.direction === 'send') {
          writeStderr(
            `${PROGRAM}: cancelled ${sanitize(record.file)} to ${record.peer} (${record.tid}): withdrawn from the relay; ${record.peer} deletes its partial file when it next receives\n`,
          );
        } else {
          writeStderr(
            `${PROGRAM}: cancelled ${sanitize(record.file)} from ${record.peer} (${record.tid}): partial file deleted; ${record.peer} is told when it next looks\n`,
          );
        }
      } finally {
        peer.close();
      }
    },
  };
}

/**
 * The original DFTP spelled the block size `-bs`; yargs would read that as -b -s. A lone '-'
 * (standard input) becomes --stdin: yargs drops it from positionals. Only ever given the
 * arguments before `--`: after it, `-bs` and `-` are file names.
 */
export function normalizeArgs(args: string[]): string[] {
  return joinOptionValues(args).flatMap((arg) => {
    if (arg === '-bs') return ['--block-size'];
    if (arg.startsWith('-bs=')) return [`--block-size=${arg.slice(4)}`];
    if (arg === '-') return ['--stdin'];
    return [arg];
  });
}

runProgram(
  {
    name: PROGRAM,
    about: 'Files of any size through a synced folder, in encrypted chunks that never exceed a quota.',
    examples: [
      ['$0 receive --out ~/incoming', 'bob: accept files into ~/incoming'],
      ['$0 send bob movie.mkv photos/', 'alice: send a file and a folder to bob'],
      ['$0 list', 'the transfers in flight or interrupted'],
      ['$0 serve ~/public', 'serve a folder; others run dftp ls alice, dftp get alice FILE'],
    ],
    commands: [
      send(),
      receive(),
      list(),
      cancel(),
      serveCommand(),
      lsCommand(),
      getCommand(),
      putCommand(),
      rmCommand(),
    ],
    normalize: normalizeArgs,
  },
  hideBin(process.argv),
);
