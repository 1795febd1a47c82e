#!/usr/bin/env node
/**
 * dftp: files of any size through the relay, in encrypted chunks that never exceed the quota.
 * A thin layer over the public API in src/peer.ts.
 */
import type { Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DmpError, expandSources, HomeLayout, parsePeerId, parseSize, queueFiles } from '../index.js';
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
import { ProgressView } from './progress.js';

const PROGRAM = 'dftp';

interface SendArgs extends GlobalArgs {
  peer: string;
  paths: string[];
  'block-size'?: string;
  quota?: string;
  queue?: boolean;
}

function send() {
  return {
    command: 'send <peer> <paths..>',
    describe: 'send files and directories; rerun after any interruption to resume',
    missing: 'give a peer and at least one file',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .positional('peer', { type: 'string', describe: 'the recipient' })
        .positional('paths', {
          type: 'string',
          array: true,
          describe: "files or directories ('--' before names that start with '-')",
        })
        .option('block-size', {
          type: 'string',
          requiresArg: true,
          describe: 'bytes per chunk: k, m, g (x1024) or kb, mb, gb, tb; also -bs (default 4m, less for a small quota)',
        })
        .option('quota', {
          type: 'string',
          requiresArg: true,
          describe: 'most bytes this peer may hold in the relay (default 64m)',
        })
        .option('queue', { type: 'boolean', describe: "hand the files to the daemon's outbox and return at once" })
        .example('$0 send bob movie.mkv photos/', 'a file and a folder; returns once bob has them whole')
        .example('$0 send bob huge.iso -bs 16m --quota 256m', '16 MiB chunks, at most 256 MiB in the relay')
        .example('$0 send --queue bob report.pdf', 'leave it to the daemon (dmp daemon)')
        .example('$0 send bob -- -notes.txt', "a name that starts with '-'"),
    handler: async (argv: SendArgs) => {
      const { peer: peerId, paths } = argv;
      const blockSize = argv['block-size'] === undefined ? undefined : parseSize(argv['block-size'], 'block size');
      if (argv.queue) {
        const options = await peerOptions(argv, PROGRAM);
        const { files, skipped } = await expandSources(paths);
        for (const skip of skipped) process.stderr.write(`dftp: skipped ${sanitize(skip.path)}: ${skip.reason}\n`);
        const queued = await queueFiles(
          new HomeLayout(options.home).folder('outbox'),
          parsePeerId(peerId, 'peer'),
          files,
        );
        if (argv.json) for (const path of queued) printJson({ event: 'queued', peer: peerId, path });
        else
          process.stderr.write(`dftp: ${queued.length} file${queued.length === 1 ? '' : 's'} queued for ${peerId}\n`);
        return;
      }
      if (argv.quota !== undefined) parseSize(argv.quota, 'quota');
      const peer = await openPeer(argv, PROGRAM);
      const signal = interruptSignal({ resumable: true });
      const view = new ProgressView({ program: PROGRAM, direction: 'send', json: argv.json ?? false });
      try {
        await peer.sendFiles(peerId, paths, { blockSize, signal, onEvent: (event) => view.handle(event) });
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
}

function receive() {
  return {
    command: 'receive',
    describe: 'receive files from peers into --out; rerun after an interruption to continue',
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
        .example('$0 receive --out ~/incoming', 'accept files from every peer until Ctrl-C')
        .example('$0 receive --from alice --count 1', 'one file from alice into the current folder, then exit'),
    handler: async (argv: ReceiveArgs) => {
      const count = parseCount(argv.count);
      const peer = await openPeer(argv, PROGRAM);
      const signal = interruptSignal({ resumable: true });
      const view = new ProgressView({ program: PROGRAM, direction: 'receive', json: argv.json ?? false });
      let failures = 0;
      try {
        await peer.receiveFiles({
          from: argv.from,
          out: argv.out,
          count,
          overwrite: argv.overwrite,
          signal,
          onEvent: (event) => {
            if (event.event === 'failed') failures += 1;
            view.handle(event);
          },
        });
      } finally {
        view.stop();
        peer.close();
      }
      if (failures > 0 && count !== undefined) {
        throw new DmpError('TRANSFER_FAILED', `${failures} transfer${failures === 1 ? '' : 's'} failed`);
      }
    },
  };
}

/**
 * The original DFTP spelled the block size `-bs`; yargs would read that as -b -s. Only ever given
 * the arguments before `--`: a file named `-bs` after it is a file name.
 */
export function normalizeArgs(args: string[]): string[] {
  return joinOptionValues(args).flatMap((arg) => {
    if (arg === '-bs') return ['--block-size'];
    if (arg.startsWith('-bs=')) return [`--block-size=${arg.slice(4)}`];
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
    ],
    commands: [send(), receive()],
    normalize: normalizeArgs,
  },
  hideBin(process.argv),
);
