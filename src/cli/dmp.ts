#!/usr/bin/env node
/**
 * dmp: messages, ping, status and the background service, over a synced relay folder.
 * A thin layer over the public API in src/peer.ts; it only parses, renders and maps errors.
 */
import './small-heap.js';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import {
  collectStatus,
  DmpError,
  generateKey,
  HomeLayout,
  type InboxMessage,
  initPeer,
  jsonLogger,
  openForStatus,
  type PeerOptions,
  runDaemon,
  type StatusReport,
} from '../index.js';
import { chatCommand } from './chat.js';
import {
  checkServedFolder,
  type GlobalArgs,
  interruptSignal,
  joinOptionValues,
  openPeer,
  parseCount,
  peerOptions,
  printJson,
  readStdin,
  runProgram,
  sanitize,
  secondsToMs,
  withGlobalOptions,
} from './common.js';
import { checkWritableFolder } from './files.js';
import { historyCommand } from './history-command.js';
import {
  idCommand,
  pairKeyCommand,
  peersCommand,
  rotateCommand,
  trustCommand,
  unquarantineCommand,
  verifyCommand,
} from './identity-commands.js';
import { describeLogLine } from './log-lines.js';
import { formatMessage, messageJson, speaker } from './message-lines.js';
import { blockCommands, blockedCommand, logoutCommand, whoCommand } from './presence-commands.js';
import { speedsBetween, statusLines } from './status-view.js';
import { fitEnd, styleFor, writeStderr } from './terminal.js';

const PROGRAM = 'dmp';

function keygen() {
  return {
    command: 'keygen',
    describe: 'print a new relay key (same form as Python Fernet.generate_key())',
    builder: (y: Argv) => y.example('$0 keygen > relay.key', 'a new key in a file, for dmp init --key-file relay.key'),
    handler: () => {
      process.stdout.write(`${generateKey()}\n`);
    },
  };
}

function init() {
  return {
    command: 'init',
    describe: 'write the config in DMP_HOME and create this peer in the relay',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .option('force', {
          type: 'boolean',
          describe: 'replace a stored key, take over an id, or start anew where the key opens no identity',
        })
        .example('$0 init --relay ~/Dropbox/relay --id alice', 'the first peer: prints a new key to share')
        .example("$0 init --relay ~/Dropbox/relay --id bob --key 'KEY...'", 'the other peers, with that key'),
    handler: async (argv: GlobalArgs & { force?: boolean }) => {
      const result = await initPeer({
        relay: argv.relay,
        id: argv.id,
        key: argv.key,
        keyFile: argv['key-file'],
        home: argv.home,
        force: argv.force,
      });
      if (argv.json) {
        printJson({
          config: result.configPath,
          home: result.home,
          generatedKey: result.generated ? result.key : undefined,
        });
      } else {
        process.stderr.write(`dmp: ${argv.id} is ready in ${argv.relay} (config ${result.configPath})\n`);
      }
      if (result.generated && !argv.json) {
        process.stdout.write(`${result.key}\n`);
        process.stderr.write(
          'dmp: this is the new relay key; give it to your peers over a safe channel (dmp init --key KEY)\n',
        );
      }
    },
  };
}

interface SendArgs extends GlobalArgs {
  peer: string;
  text?: string[];
  lines?: boolean;
  /** Set by normalizeArgs for a lone '-', which yargs drops from positionals. */
  stdin?: boolean;
  wait?: boolean;
  timeout?: string;
}

function send() {
  return {
    command: 'send <peer> [text..]',
    describe: "send a message: words, '-' for stdin as one message, or --lines for one per line",
    missing: 'give a peer and a message',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .positional('peer', { type: 'string', describe: 'the recipient' })
        .positional('text', {
          type: 'string',
          array: true,
          describe: "the message, or '-' to read stdin ('--' before text that starts with '-')",
        })
        .option('lines', { type: 'boolean', describe: 'send each line of stdin as its own message' })
        .option('stdin', { type: 'boolean', hidden: true })
        .option('wait', { type: 'boolean', describe: "wait for the peer's acknowledgement" })
        .option('timeout', { type: 'string', requiresArg: true, describe: 'with --wait: give up after S seconds' })
        .example('$0 send bob hello there', 'one message; returns once it is safely in the relay')
        .example('seq 1000 | $0 send bob --lines', 'one message per line of stdin')
        .example('$0 send bob - < note.txt', 'stdin as one message')
        .example('$0 send bob --wait --timeout 60 are you there', "wait for bob's acknowledgement")
        .example('$0 send bob -- -1 is less than 0', "text that starts with '-'"),
    handler: async (argv: SendArgs) => {
      const { peer: peerId } = argv;
      const timeoutMs = secondsToMs(argv.timeout, 'timeout');
      const texts = await textsToSend(argv);
      const peer = await openPeer(argv, PROGRAM);
      const signal = interruptSignal();
      try {
        let said: string | undefined;
        const seqs = await peer.send(peerId, texts, {
          wait: argv.wait,
          timeoutMs,
          signal,
          onWaiting: (_held, reason) => {
            // Once for each reason in a row, not once per batch.
            if (reason === said) return;
            said = reason;
            process.stderr.write(
              reason === 'relay-full'
                ? 'dmp: relay full: waiting for space…\n'
                : `dmp: relay quota full, waiting for ${sanitize(peerId)}…\n`,
            );
          },
        });
        if (argv.json)
          printJson({
            event: 'sent',
            to: peerId,
            count: seqs.length,
            first: seqs[0],
            last: seqs.at(-1),
            acked: argv.wait ?? false,
          });
        else if (seqs.length > 0) {
          const range = seqs.length === 1 ? `#${seqs[0]}` : `#${seqs[0]}-${seqs.at(-1)}`;
          process.stderr.write(
            `dmp: ${seqs.length} message${seqs.length === 1 ? '' : 's'} ${argv.wait ? 'delivered to' : 'sent to'} ${peerId} (${range})\n`,
          );
        }
      } finally {
        peer.close();
      }
    },
  };
}

/** What `send` and `broadcast` send: the words, stdin as one text ('-'), or one per line (--lines). */
async function textsToSend(argv: { text?: string[]; lines?: boolean; stdin?: boolean }): Promise<string[]> {
  const words = argv.text ?? [];
  if (argv.lines) {
    if (words.length > 0) throw new DmpError('USAGE', '--lines reads stdin; give no text');
    const texts = (await readStdin()).split('\n');
    if (texts.at(-1) === '') texts.pop();
    return texts;
  }
  if (argv.stdin && words.length === 0) return [await readStdin()];
  if (words.length > 0) return [words.join(' ')];
  throw new DmpError('USAGE', "nothing to send: give text, '-' for stdin, or --lines");
}

function broadcastCommand() {
  return {
    command: 'broadcast [text..]',
    describe: "send to every member of the relay: words, '-' for stdin, or --lines",
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .positional('text', { type: 'string', array: true, describe: "the message, or '-' to read stdin" })
        .option('lines', { type: 'boolean', describe: 'send each line of stdin as its own broadcast' })
        .option('stdin', { type: 'boolean', hidden: true })
        .example('$0 broadcast the build is green', 'everyone in the relay gets it, once, in order'),
    handler: async (argv: GlobalArgs & { text?: string[]; lines?: boolean; stdin?: boolean }) => {
      const texts = await textsToSend(argv);
      const peer = await openPeer(argv, PROGRAM);
      try {
        const seqs = await peer.broadcast(texts);
        if (argv.json) printJson({ event: 'broadcast', count: seqs.length, first: seqs[0], last: seqs.at(-1) });
        else
          process.stderr.write(
            `dmp: ${seqs.length} broadcast${seqs.length === 1 ? '' : 's'} sent (#${seqs[0]}${seqs.length > 1 ? `-${seqs.at(-1)}` : ''})\n`,
          );
      } finally {
        peer.close();
      }
    },
  };
}

interface ListenArgs extends GlobalArgs {
  from?: string;
  count?: string;
  timeout?: string;
}

function printMessage(message: InboxMessage, json: boolean): void {
  if (json) printJson(messageJson(message));
  else process.stdout.write(formatMessage(speaker(message), message.text));
}

function listen() {
  return {
    command: 'listen',
    describe: 'print incoming messages as they arrive (and answer pings)',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .option('from', { type: 'string', requiresArg: true, describe: 'only messages from this peer' })
        .option('count', { type: 'string', requiresArg: true, alias: 'c', describe: 'exit 0 after N messages' })
        .option('timeout', {
          type: 'string',
          requiresArg: true,
          describe: 'listen for S seconds, then exit 0; with --count: exit 1 if fewer came by then',
        })
        .example('$0 listen', 'print messages until Ctrl-C')
        .example('$0 listen --timeout 30', 'print what comes in the next 30 seconds')
        .example('$0 listen --from alice --count 1 --timeout 60', "wait up to a minute for alice's next message")
        .example('$0 listen --json', 'one JSON object per message, for scripts'),
    handler: async (argv: ListenArgs) => {
      const count = parseCount(argv.count);
      const timeoutMs = secondsToMs(argv.timeout, 'timeout');
      const peer = await openPeer(argv, PROGRAM);
      const signal = interruptSignal();
      try {
        await peer.listen({
          from: argv.from,
          count,
          timeoutMs,
          signal,
          onMessage: (message) => printMessage(message, argv.json ?? false),
          onShared: () => {
            if (argv.verbose) process.stderr.write('dmp: another process receives for this peer; reading its inbox\n');
          },
        });
      } finally {
        peer.close();
      }
    },
  };
}

interface PingArgs extends GlobalArgs {
  peer: string;
  count?: string;
  interval?: string;
  timeout?: string;
}

function pingCommand() {
  return {
    command: 'ping <peer>',
    describe: 'measure the round trip to a peer through the relay, like ping(8)',
    missing: 'give the peer to ping',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .positional('peer', { type: 'string', describe: 'the peer to ping' })
        .option('count', { type: 'string', requiresArg: true, alias: 'c', describe: 'how many pings (default 4)' })
        .option('interval', {
          type: 'string',
          requiresArg: true,
          alias: 'i',
          describe: 'seconds between pings (default 1)',
        })
        .option('timeout', {
          type: 'string',
          requiresArg: true,
          alias: 'W',
          describe: 'seconds to wait for each reply (default 10)',
        })
        .example('$0 ping bob', 'four pings, one a second')
        .example('$0 ping bob -c 3 -i 0.2 -W 30', 'three pings, 0.2 s apart, waiting up to 30 s for each'),
    handler: async (argv: PingArgs) => {
      const peerId = argv.peer;
      const count = parseCount(argv.count) ?? 4;
      const intervalMs = secondsToMs(argv.interval, 'interval') ?? 1000;
      const timeoutMs = secondsToMs(argv.timeout, 'timeout') ?? 10_000;
      const peer = await openPeer(argv, PROGRAM);
      const signal = interruptSignal();
      const json = argv.json ?? false;
      try {
        if (!json) process.stdout.write(`PING ${peerId} through the relay\n`);
        let sent = 0;
        const replies = await peer.ping(peerId, {
          count,
          intervalMs,
          timeoutMs,
          signal,
          onReply: (reply) => {
            sent = reply.seq;
            if (json) printJson({ seq: reply.seq, rttMs: Number(reply.rttMs.toFixed(3)) });
            else process.stdout.write(`reply from ${peerId}: seq=${reply.seq} time=${reply.rttMs.toFixed(2)} ms\n`);
          },
          onTimeout: (seq) => {
            sent = seq;
            if (json) printJson({ seq, timeout: true });
            else process.stdout.write(`no reply from ${peerId}: seq=${seq} (waited ${timeoutMs / 1000} s)\n`);
          },
        });
        const rtts = replies.map((reply) => reply.rttMs);
        if (!json) {
          const loss = sent === 0 ? 100 : Math.round(((sent - replies.length) / sent) * 100);
          process.stdout.write(
            `--- ${peerId} ping statistics ---\n${sent} sent, ${replies.length} received, ${loss}% loss\n`,
          );
          if (rtts.length > 0) {
            const avg = rtts.reduce((a, b) => a + b, 0) / rtts.length;
            process.stdout.write(
              `rtt min/avg/max = ${Math.min(...rtts).toFixed(2)}/${avg.toFixed(2)}/${Math.max(...rtts).toFixed(2)} ms\n`,
            );
          }
        }
        if (replies.length === 0)
          throw new DmpError('TIMEOUT', `no reply from ${peerId} (is dmp listen or the daemon running there?)`);
      } finally {
        peer.close();
      }
    },
  };
}

interface DaemonArgs extends GlobalArgs {
  inbox?: string;
  quota?: string;
  serve?: string;
}

function daemonCommand() {
  return {
    command: 'daemon',
    describe: 'run unattended: answer pings, receive messages and files, send what lands in the outbox',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .option('inbox', {
          type: 'string',
          requiresArg: true,
          describe: 'where received files land (default DMP_HOME/inbox/<sender>/)',
        })
        .option('quota', {
          type: 'string',
          requiresArg: true,
          describe: 'most bytes this peer may hold in the relay (default 256m)',
        })
        .example('$0 daemon --verbose', 'run in the foreground until Ctrl-C, with debug lines')
        .example('$0 daemon --json', 'log JSON lines on a terminal too (as in DMP_HOME/daemon.log)')
        .option('serve', {
          type: 'string',
          requiresArg: true,
          describe:
            'serve this folder to the other peers, as dftp serve does (the rest of its settings: "serve" in the config)',
        })
        .example('$0 daemon --inbox ~/incoming &', 'in the background, files into ~/incoming')
        .example('$0 daemon --serve ~/public', 'and serve ~/public: others run dftp ls, dftp get'),
    handler: async (argv: DaemonArgs) => {
      const options = await peerOptions(argv, PROGRAM);
      // A daemon that could not put a received file anywhere would keep its senders waiting.
      if (argv.inbox !== undefined) await checkWritableFolder(resolve(argv.inbox));
      // People read a terminal; scripts and service managers get the JSON lines of daemon.log.
      const readable = process.stderr.isTTY === true && !argv.json;
      const style = styleFor(process.stderr);
      const logger = jsonLogger({
        path: new HomeLayout(options.home).daemonLog,
        verbose: argv.verbose ?? false,
        echo: readable
          ? (_line, entry) => writeStderr(`${describeLogLine(entry, style)}\n`)
          : (line) => process.stderr.write(line),
      });
      const serve = argv.serve === undefined ? options.serve : { ...options.serve, dir: resolve(argv.serve) };
      if (serve) await checkServedFolder(serve.dir);
      await runDaemon({ ...options, logger, signal: interruptSignal(), inbox: argv.inbox, serve });
    },
  };
}

interface StatusArgs extends GlobalArgs {
  watch?: boolean;
}

function statusCommand() {
  return {
    command: 'status',
    describe: 'show the daemon, peers, messages waiting, transfers, the outbox and the relay quota',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .option('watch', { type: 'boolean', alias: 'w', describe: 'show it again every second until Ctrl-C' })
        .example('$0 status', 'what this peer is doing')
        .example('$0 status --watch', 'the same, redrawn every second, with the speed of each transfer')
        .example('$0 status --json', 'the same as one JSON object'),
    handler: async (argv: StatusArgs) => {
      const options = await peerOptions(argv, PROGRAM);
      if (!argv.watch) {
        const { peer, relayError } = await openForStatus(options);
        try {
          const report = await collectStatus(peer, { relayError });
          if (argv.json) printJson(report);
          else {
            const lines = statusLines(report, styleFor(process.stdout), { now: peer.clock.now() });
            process.stdout.write(`${lines.join('\n')}\n`);
          }
        } finally {
          peer.close();
        }
        return;
      }
      await watchStatus(options, argv.json ?? false);
    },
  };
}

/**
 * `dmp status --watch`: on a terminal the screen is drawn again every second, like watch(1);
 * otherwise (or with --json) a new report follows every second. Ends with Ctrl-C.
 */
async function watchStatus(options: PeerOptions, json: boolean): Promise<void> {
  const signal = interruptSignal();
  const redraw = process.stdout.isTTY === true && !json;
  const style = styleFor(process.stdout);
  let previous: StatusReport | undefined;
  let opened = await openForStatus(options);
  try {
    while (!signal.aborted) {
      if (opened.relayError !== undefined) {
        // The relay was away when we looked last: see whether it is back.
        opened.peer.close();
        opened = await openForStatus(options);
      }
      const report = await collectStatus(opened.peer, { relayError: opened.relayError });
      if (json) printJson(report);
      else {
        const now = opened.peer.clock.now();
        const speeds = previous ? speedsBetween(previous, report) : undefined;
        const lines = statusLines(report, style, { now, speeds });
        if (redraw) {
          const width = Math.max(20, process.stdout.columns ?? 80) - 1;
          const rows = Math.max(1, (process.stdout.rows ?? 24) - 1);
          const header = style.dim(`every 1 s; Ctrl-C to stop`);
          const screen = [header, ...lines].slice(0, rows).map((line) => `${fitEnd(line, width)}\x1b[K`);
          process.stdout.write(`\x1b[H${screen.join('\n')}\n\x1b[J`);
        } else process.stdout.write(`${lines.join('\n')}\n\n`);
      }
      previous = report;
      await opened.peer.clock.sleep(1000, signal).catch(() => {});
    }
  } finally {
    opened.peer.close();
  }
}

/**
 * yargs drops a lone '-' from positionals: `dmp send bob -` becomes `dmp send bob --stdin`. Only
 * ever given the arguments before `--`: a '-' after it is text.
 */
function normalizeArgs(args: string[]): string[] {
  return joinOptionValues(args).map((arg) => (arg === '-' ? '--stdin' : arg));
}

runProgram(
  {
    name: PROGRAM,
    about: 'Messages and ping through a folder that something else keeps in sync.',
    examples: [
      ['$0 init --relay ~/Dropbox/relay --id alice', 'once per peer: the relay folder and this peer’s id'],
      ['$0 send bob hello there', 'a message to bob'],
      ['$0 listen', 'print messages as they arrive'],
    ],
    commands: [
      keygen(),
      init(),
      idCommand(),
      peersCommand(),
      verifyCommand(),
      trustCommand(),
      unquarantineCommand(),
      rotateCommand(),
      pairKeyCommand(),
      whoCommand(),
      logoutCommand(),
      ...blockCommands(),
      blockedCommand(),
      send(),
      broadcastCommand(),
      listen(),
      historyCommand(),
      chatCommand(),
      pingCommand(),
      daemonCommand(),
      statusCommand(),
    ],
    normalize: normalizeArgs,
  },
  hideBin(process.argv),
);
