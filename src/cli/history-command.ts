/** dmp history [PEER] [--since] [--last N]: what was received and sent, shown again. */
import type { Argv } from 'yargs';
import { DmpError } from '../index.js';
import { type GlobalArgs, printJson, withGlobalOptions, withPeer } from './common.js';
import { formatHistoryEntry, historyJson } from './message-lines.js';
import { parseSince } from './presence-commands.js';

interface HistoryArgs extends GlobalArgs {
  peer?: string;
  since?: string;
  last?: string;
}

export function historyCommand() {
  return {
    command: 'history [peer]',
    describe: 'messages received and sent (direct and broadcast), oldest first',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .positional('peer', { type: 'string', describe: 'only the conversation with this peer' })
        .option('since', { type: 'string', requiresArg: true, describe: 'only since 10m, 1h, 2d, or an ISO time' })
        .option('last', { type: 'string', requiresArg: true, describe: 'only the last N messages' })
        .example('$0 history bob --since 1d', 'the conversation with bob over the last day')
        .example('$0 history --last 20 --json', 'the last 20 messages, one JSON object each'),
    handler: (argv: HistoryArgs) =>
      withPeer(argv, 'dmp', async (peer) => {
        const now = peer.clock.now();
        const since = argv.since === undefined ? undefined : parseSince(argv.since, now);
        const limit = argv.last === undefined ? undefined : Number(argv.last);
        if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
          throw new DmpError('USAGE', `invalid --last '${argv.last}': give a whole number above 0`);
        }
        const entries = await peer.history({ peer: argv.peer, since, limit });
        for (const entry of entries) {
          if (argv.json) printJson(historyJson(entry));
          else process.stdout.write(formatHistoryEntry(entry, now));
        }
        if (entries.length === 0 && !argv.json) process.stderr.write('dmp: no messages\n');
      }),
  };
}
