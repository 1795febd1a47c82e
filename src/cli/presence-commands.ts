/**
 * dmp who [--since], logout: presence as this machine judges it (src/presence/presence.ts); and
 * block, unblock, blocked: whom this peer hears from at all.
 */
import type { Argv } from 'yargs';
import { DmpError, type WhoEntry } from '../index.js';
import { type GlobalArgs, printJson, withGlobalOptions, withPeer } from './common.js';
import { quarantineJson, quarantineText } from './quarantine-view.js';
import { ago } from './terminal.js';

const PROGRAM = 'dmp';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `10m`, `1h`, `2d`, `90s`, or an ISO time: the moment it names, ms since the epoch. */
export function parseSince(text: string, now: number): number {
  const relative = /^(\d+(?:\.\d+)?)([smhd])$/i.exec(text.trim());
  if (relative) return now - Number(relative[1]) * (UNITS[(relative[2] ?? 's').toLowerCase()] ?? 1000);
  const absolute = Date.parse(text);
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && Number.isFinite(absolute)) return absolute;
  throw new DmpError('USAGE', `invalid --since '${text}': give 10m, 1h, 2d or an ISO time`);
}

/** One peer as `dmp who` and the chat's /who show it. */
export function whoLine(entry: WhoEntry, now: number): string {
  const seen = entry.lastSeen ? `last seen ${ago(entry.lastSeen, now)}` : 'not seen yet';
  const quarantined = entry.quarantined ? `; ${quarantineText(entry.quarantined, now)}` : '';
  return `${entry.peer.padEnd(12)} ${entry.online ? 'online ' : 'offline'}  ${seen}${quarantined}`;
}

interface WhoArgs extends GlobalArgs {
  since?: string;
}

export function whoCommand() {
  return {
    command: 'who',
    describe: 'peers online now (seen by this machine), or seen since a time with --since',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .option('since', {
          type: 'string',
          requiresArg: true,
          describe: 'seen within 10m, 1h, 2d, or since an ISO time',
        })
        .example('$0 who', 'who is online now')
        .example('$0 who --since 1h', 'who was online, or sent anything, in the last hour'),
    handler: (argv: WhoArgs) =>
      withPeer(argv, PROGRAM, async (peer) => {
        const now = peer.clock.now();
        const since = argv.since === undefined ? undefined : parseSince(argv.since, now);
        // A quarantined peer is always listed: the user should know why nothing of it arrives.
        const entries =
          since === undefined
            ? (await peer.who()).filter((entry) => entry.online || entry.quarantined)
            : await peer.whoSince(since);
        for (const entry of entries) {
          if (argv.json) {
            printJson({
              peer: entry.peer,
              online: entry.online,
              ...(entry.lastSeen ? { lastSeen: new Date(entry.lastSeen).toISOString() } : {}),
              ...(entry.quarantined ? { quarantined: quarantineJson(entry.quarantined) } : {}),
            });
            continue;
          }
          process.stdout.write(`${whoLine(entry, now)}\n`);
        }
        if (entries.length === 0 && !argv.json) {
          process.stderr.write(since === undefined ? 'dmp: nobody is online\n' : 'dmp: nobody was seen in that time\n');
        }
      }),
  };
}

export function logoutCommand() {
  return {
    command: 'logout',
    describe: 'tell the others this peer is offline now',
    builder: (y: Argv) => withGlobalOptions(y).example('$0 logout', 'before leaving for the day'),
    handler: (argv: GlobalArgs) =>
      withPeer(argv, PROGRAM, async (peer) => {
        await peer.logout();
        if (!argv.json) process.stderr.write(`dmp: ${peer.self} is offline\n`);
      }),
  };
}

interface BlockArgs extends GlobalArgs {
  peer: string;
}

function blockCommand(on: boolean) {
  return {
    command: `${on ? 'block' : 'unblock'} <peer>`,
    describe: on
      ? 'nothing from this peer reaches you on any path (it is not told)'
      : 'accept this peer again (what was dropped meanwhile is not replayed)',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .positional('peer', { type: 'string', demandOption: true })
        .example(`$0 ${on ? 'block' : 'unblock'} mallory`, on ? 'messages, broadcasts, pings, files: all dropped' : ''),
    handler: (argv: BlockArgs) =>
      withPeer(argv, PROGRAM, async (peer) => {
        const changed = await peer.block(argv.peer, on);
        if (argv.json) printJson({ peer: argv.peer, blocked: on, changed });
        else
          process.stderr.write(
            `dmp: ${argv.peer} ${changed ? 'is now' : 'was already'} ${on ? 'blocked' : 'not blocked'}\n`,
          );
      }),
  };
}

export const blockCommands = () => [blockCommand(true), blockCommand(false)];

export function blockedCommand() {
  return {
    command: 'blocked',
    describe: 'list the peers you block',
    builder: (y: Argv) => withGlobalOptions(y).example('$0 blocked', 'one id per line'),
    handler: (argv: GlobalArgs) =>
      withPeer(argv, PROGRAM, async (peer) => {
        for (const id of await peer.blocked()) {
          if (argv.json) printJson({ peer: id });
          else process.stdout.write(`${id}\n`);
        }
      }),
  };
}
