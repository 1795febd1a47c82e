/**
 * `dmp status`: what a peer is doing, read from DMP_HOME and the relay without writing to
 * either, so it never disturbs a running daemon.
 */
import { isDmpError } from '../errors.js';
import { readJsonFile } from '../local/files.js';
import { HomeLayout } from '../local/home.js';
import { lockHolder } from '../local/lock.js';
import { Peer, type PeerOptions } from '../peer.js';
import type { RelayStorage } from '../relay/storage.js';
import { type PeerId, parsePeerId } from '../util/peer-id.js';
import type { Presence } from './daemon.js';
import { Spool } from './spool.js';

export interface PeerReport {
  peer: PeerId;
  /** ISO time the daemon last saw files of this peer change, if ever. */
  lastHeard?: string;
  /** Messages sent to this peer that it has not acknowledged. */
  outgoing: number;
  /** Messages from this peer in the relay not yet delivered, plus delivered ones not yet shown. */
  incoming: number;
}

export interface TransferReport {
  direction: 'send' | 'receive';
  peer: PeerId;
  file: string;
  bytes: number;
  total: number;
  /** Average bytes per second since the transfer started. */
  rate: number;
  state: string;
}

export interface StatusReport {
  self: PeerId;
  daemon: { running: boolean; pid?: number };
  peers: PeerReport[];
  transfers: TransferReport[];
  spool: { peer: PeerId; file: string; size: number }[];
  relayBytes: number;
  quota: number;
}

/** Whether a daemon runs for the peer living in `home` (DMP_HOME), and its pid. */
export async function daemonStatus(home: string): Promise<{ running: boolean; pid?: number }> {
  const holder = await lockHolder(new HomeLayout(home).lock('daemon'));
  return { running: holder.held, ...(holder.pid === undefined ? {} : { pid: holder.pid }) };
}

/**
 * Opens a peer only to look at it. With the relay folder gone (RELAY_MISSING) the peer is
 * opened over a relay that has nothing in it, and `relayError` says why: everything local can
 * still be shown.
 */
export async function openForStatus(options: PeerOptions): Promise<{ peer: Peer; relayError?: string }> {
  try {
    return { peer: await Peer.open({ ...options, inspectOnly: true }) };
  } catch (error) {
    if (!isDmpError(error, 'RELAY_MISSING')) throw error;
    const peer = await Peer.open({
      ...options,
      relay: unreachableRelay(parsePeerId(options.id, 'id'), error),
      inspectOnly: true,
    });
    return { peer, relayError: error.message };
  }
}

/** A relay that lists no peer and fails every other call with `error`. */
function unreachableRelay(self: PeerId, error: Error): RelayStorage {
  const fail = async (): Promise<never> => {
    throw error;
  };
  return {
    self,
    open: fail,
    peers: async () => [],
    list: fail,
    read: fail,
    publish: fail,
    remove: fail,
    usage: fail,
    watch: () => {},
  };
}

export async function collectStatus(peer: Peer): Promise<StatusReport> {
  const { home } = peer;
  const now = peer.clock.now();
  const daemon = await lockHolder(home.lock('daemon'));
  const presence = (await readJsonFile<Presence>(home.presence).catch(() => undefined)) ?? {};

  const peers: PeerReport[] = [];
  for (const other of await peer.peers()) {
    const heard = presence[other]?.lastHeard;
    peers.push({
      peer: other,
      ...(heard ? { lastHeard: new Date(heard).toISOString() } : {}),
      ...(await peer.messageCounts(other)),
    });
  }
  const transfers: TransferReport[] = (await peer.transfers()).map((record) => ({
    direction: record.direction,
    peer: record.peer,
    file: record.file,
    bytes: record.bytes,
    total: record.total,
    rate: rateOf(record.bytes, record.startedAt, now),
    state: record.state,
  }));
  const spool = (await new Spool(home.folder('outbox'), 0, () => now).list()).map((entry) => ({
    peer: entry.peer,
    file: entry.name,
    size: entry.size,
  }));
  return {
    self: peer.self,
    daemon: { running: daemon.held, ...(daemon.pid === undefined ? {} : { pid: daemon.pid }) },
    peers,
    transfers,
    spool,
    relayBytes: await peer.relayUsage().catch(() => 0),
    // The running daemon's quota (it may have been given --quota), else this command's.
    quota:
      (daemon.held
        ? (await readJsonFile<{ quota?: number }>(home.daemonInfo).catch(() => undefined))?.quota
        : undefined) ?? peer.quota,
  };
}

function rateOf(bytes: number, since: number | undefined, now: number): number {
  if (!since || now <= since) return 0;
  return Math.round(bytes / ((now - since) / 1000));
}
