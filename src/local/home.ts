/**
 * Where a peer keeps its local files. DMP_HOME isolates a peer completely, so two peers can run
 * on one machine.
 *
 *   <home>/config.json                   written by `dmp init`
 *   <home>/state/streams/<peer>/...      message stream state, logs and inbox per peer
 *   <home>/state/transfers/...           DFTP sender and receiver state
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
  constructor(readonly root: string) {}

  get config(): string {
    return join(this.root, 'config.json');
  }

  get temp(): string {
    return join(this.root, 'tmp');
  }

  stream(peer: PeerId, file: string): string {
    return join(this.root, 'state', 'streams', peer, file);
  }

  transfers(...parts: string[]): string {
    return join(this.root, 'state', 'transfers', ...parts);
  }

  folder(kind: 'inbox' | 'outbox' | 'sent' | 'failed', peer?: PeerId): string {
    return peer === undefined ? join(this.root, kind) : join(this.root, kind, peer);
  }

  get daemonLog(): string {
    return join(this.root, 'daemon.log');
  }

  get presence(): string {
    return join(this.root, 'state', 'peers.json');
  }

  lock(name: string): string {
    return join(this.root, 'locks', name);
  }
}
