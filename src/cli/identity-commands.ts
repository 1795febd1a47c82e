/**
 * dmp id, peers, verify, trust, rotate, pair-key: this peer's identity and what it believes of
 * the others' (docs/PROTOCOL.md, "Identities").
 */
import type { Argv } from 'yargs';
import { DmpError } from '../index.js';
import { type GlobalArgs, printJson, sanitize, withGlobalOptions, withPeer } from './common.js';
import { quarantineJson, quarantineText } from './quarantine-view.js';

const PROGRAM = 'dmp';

export function idCommand() {
  return {
    command: 'id',
    describe: "print this peer's fingerprint, for others to compare before dmp verify",
    builder: (y: Argv) => withGlobalOptions(y).example('$0 id', 'read it out to bob; he runs dmp verify alice <it>'),
    handler: (argv: GlobalArgs) =>
      withPeer(argv, PROGRAM, async (peer) => {
        if (argv.json) printJson({ id: peer.self, fingerprint: peer.fingerprint() });
        else process.stdout.write(`${peer.self}  ${peer.fingerprint()}\n`);
      }),
  };
}

export function peersCommand() {
  return {
    command: 'peers',
    describe: 'list the peers of the relay with their fingerprints and trust',
    builder: (y: Argv) => withGlobalOptions(y).example('$0 peers', 'pinned, verified, changed, stranger, ...'),
    handler: (argv: GlobalArgs) =>
      withPeer(argv, PROGRAM, async (peer) => {
        for (const { quarantined, ...entry } of await peer.identities()) {
          if (argv.json) {
            printJson({ ...entry, ...(quarantined ? { quarantined: quarantineJson(quarantined) } : {}) });
            continue;
          }
          const print = entry.fingerprint ? `  ${entry.fingerprint}` : '';
          const why = entry.reason ? `\n    ${sanitize(entry.reason)}` : '';
          const held = quarantined ? `\n    ${quarantineText(quarantined, peer.clock.now())}` : '';
          process.stdout.write(`${entry.peer.padEnd(12)} ${entry.standing.padEnd(10)}${print}${why}${held}\n`);
        }
      }),
  };
}

interface VerifyArgs extends GlobalArgs {
  peer: string;
  fingerprint: string[];
}

export function verifyCommand() {
  return {
    command: 'verify <peer> <fingerprint..>',
    describe: "mark a peer's identity verified: give the fingerprint it read out to you (dmp id)",
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .positional('peer', { type: 'string', demandOption: true })
        .positional('fingerprint', { type: 'string', array: true, demandOption: true })
        .example('$0 verify bob 12345 67890 12345 67890 12345 67890', 'as bob read it out'),
    handler: (argv: VerifyArgs) =>
      withPeer(argv, PROGRAM, async (peer) => {
        const entry = await peer.verify(argv.peer, argv.fingerprint.join(' '));
        if (argv.json) printJson(entry);
        else process.stderr.write(`dmp: ${entry.peer} is verified (${entry.fingerprint})\n`);
      }),
  };
}

interface TrustArgs extends GlobalArgs {
  peer: string;
  'accept-new'?: boolean;
}

export function trustCommand() {
  return {
    command: 'trust <peer>',
    describe: 'accept the new identity of a peer whose identity changed',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .positional('peer', { type: 'string', demandOption: true })
        .option('accept-new', { type: 'boolean', describe: 'accept the identity that replaced the pinned one' })
        .example('$0 trust bob --accept-new', 'after checking with bob that he really made a new identity'),
    handler: (argv: TrustArgs) =>
      withPeer(argv, PROGRAM, async (peer) => {
        if (!argv['accept-new']) throw new DmpError('USAGE', 'dmp trust: say --accept-new to accept the new identity');
        const entry = await peer.acceptNewIdentity(argv.peer);
        if (argv.json) printJson(entry);
        else process.stderr.write(`dmp: ${entry.peer}'s new identity is pinned (${entry.fingerprint})\n`);
      }),
  };
}

interface UnquarantineArgs extends GlobalArgs {
  peer: string;
}

export function unquarantineCommand() {
  return {
    command: 'unquarantine <peer>',
    describe: 'read a quarantined peer again now, without waiting for its quarantine to end',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .positional('peer', { type: 'string', demandOption: true })
        .example('$0 unquarantine bob', 'after bob repaired what made his files fail (a running daemon follows)'),
    handler: (argv: UnquarantineArgs) =>
      withPeer(argv, PROGRAM, async (peer) => {
        const lifted = await peer.unquarantine(argv.peer);
        if (argv.json) printJson({ peer: argv.peer, lifted });
        else process.stderr.write(`dmp: ${argv.peer} ${lifted ? 'is no longer' : 'was not'} quarantined\n`);
      }),
  };
}

export function rotateCommand() {
  return {
    command: 'rotate',
    describe: 'make new identity keys, published signed by the old ones (peers follow silently)',
    builder: (y: Argv) => withGlobalOptions(y).example('$0 rotate', 'then dmp id shows the new fingerprint'),
    handler: (argv: GlobalArgs) =>
      withPeer(argv, PROGRAM, async (peer) => {
        const print = await peer.rotate();
        if (argv.json) printJson({ id: peer.self, fingerprint: print });
        else process.stderr.write(`dmp: new identity keys for ${peer.self} (${print})\n`);
      }),
  };
}

interface PairKeyArgs extends GlobalArgs {
  peer: string;
}

export function pairKeyCommand() {
  return {
    command: 'pair-key <peer>',
    describe: 'print the Fernet key that seals everything between this peer and another (for Python)',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .positional('peer', { type: 'string', demandOption: true })
        .example('$0 pair-key bob > bob.key', 'Fernet(open("bob.key").read().strip()) opens alice/bob/*.dmp'),
    handler: (argv: PairKeyArgs) =>
      withPeer(argv, PROGRAM, async (peer) => {
        process.stdout.write(`${await peer.pairKey(argv.peer)}\n`);
      }),
  };
}
