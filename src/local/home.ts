/**
 * Where a peer keeps its local files. DMP_HOME isolates a peer completely, so two peers can run
 * on one machine.
 *
 *   <home>/config.json                   written by `dmp init`
 *   <home>/state/<self>/streams/<peer>/  message stream state, logs and inbox per peer
 *   <home>/state/<self>/transfers/...    DFTP sender and receiver state
 *   <home>/state/<self>/serve/<folder>/  a served folder's checksums, passcode hashes, lockouts
 *   <home>/state/<self>/identity.json    this peer's identity keys (mode 600)
 *   <home>/state/<self>/trust.json       the identities it pinned or verified
 *   <home>/state/<self>/quarantine.json  peers whose files fail authentication, and until when
 *   <home>/locks/...                     proper-lockfile locks between local processes
 *   <home>/tmp/                          staging for relay files when on the relay's file system
 *   <home>/inbox/<peer>/                 files the daemon received from that peer
 *   <home>/outbox/<peer>/                the daemon's spool: files dropped here are sent
 *   <home>/sent/<peer>/, failed/<peer>/  spool files after confirmation, or a permanent failure
 *   <home>/daemon.log                    the daemon's JSON log (rotated)
 */
import { join } from 'node:path';
import type { PeerId } from '../util/peer-id.js';

export class HomeLayout {
  /**
   * Stream and transfer state is kept under this peer's own id, so a home used once with
   * another --id can never mix two peers' sequence numbers.
   */
  constructor(
    readonly root: string,
    readonly self: PeerId | '' = '',
  ) {}

  get config(): string {
    return join(this.root, 'config.json');
  }

  get temp(): string {
    return join(this.root, 'tmp');
  }

  stream(peer: PeerId, file: string): string {
    return join(this.root, 'state', this.self, 'streams', peer, file);
  }

  transfers(...parts: string[]): string {
    return join(this.root, 'state', this.self, 'transfers', ...parts);
  }

  /** What a server keeps of one served folder (`folder`: a key derived from its real path). */
  serve(folder: string, file: string): string {
    return join(this.root, 'state', this.self, 'serve', folder, file);
  }

  folder(kind: 'inbox' | 'outbox' | 'sent' | 'failed', peer?: PeerId): string {
    return peer === undefined ? join(this.root, kind) : join(this.root, kind, peer);
  }

  get daemonLog(): string {
    return join(this.root, 'daemon.log');
  }

  /** What the running daemon wants `dmp status` to know (its pid and quota). */
  get daemonInfo(): string {
    return join(this.root, 'state', 'daemon.json');
  }

  get presence(): string {
    return join(this.root, 'state', 'peers.json');
  }

  /** This peer's identity keys (private: mode 600). */
  get identityKeys(): string {
    return join(this.root, 'state', this.self, 'identity.json');
  }

  /** What this peer pinned of the others' identities. */
  get trust(): string {
    return join(this.root, 'state', this.self, 'trust.json');
  }

  /** This peer's broadcast stream: its log, counter and the readers' acks. */
  broadcast(file: string): string {
    return join(this.root, 'state', this.self, 'broadcast', file);
  }

  /** The peers this peer blocks. */
  get blocked(): string {
    return join(this.root, 'state', this.self, 'blocked.json');
  }

  /** Peers quarantined because their files fail authentication (src/node/auth-guard.ts). */
  get quarantine(): string {
    return join(this.root, 'state', this.self, 'quarantine.json');
  }

  /** When this peer last saw each other peer (presence, messages, files): dmp who --since. */
  get seen(): string {
    return join(this.root, 'state', this.self, 'seen.json');
  }

  lock(name: string): string {
    return join(this.root, 'locks', name);
  }
}
