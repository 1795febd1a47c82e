/**
 * `dmp status`: what a peer is doing, read from DMP_HOME and the relay without writing to
 * either, so it never disturbs a running daemon. With the relay folder gone it still shows what
 * DMP_HOME knows, and says the relay is unreachable.
 */
import { isDmpError } from '../errors.js';
import { readJsonFile } from '../local/files.js';
import { HomeLayout } from '../local/home.js';
import { lockHolder } from '../local/lock.js';
import { Peer, type PeerOptions } from '../peer.js';
import type { RelayStorage } from '../relay/storage.js';
import { isPeerId, type PeerId, parsePeerId } from '../util/peer-id.js';
import type { Presence } from './daemon.js';
import { Spool } from './spool.js';

export interface PeerReport {
  peer: PeerId;
  /** ISO time the daemon last saw files of this peer change, if ever. */
  lastHeard?: string;
  /** Messages sent to this peer that it has not acknowledged (absent: the relay is unreachable). */
  outgoing?: number;
  /** Messages from this peer in the relay not yet delivered, plus delivered ones not yet shown. */
  incoming?: number;
  /** Its files failed authentication: its folder is not read until `until` (ISO time). */
  quarantined?: { reason: string; until: string };
}

export interface TransferReport {
  /** The transfer id: what `dftp cancel` takes. */
  id: string;
  direction: 'send' | 'receive';
  peer: PeerId;
  file: string;
  /** Bytes the receiver holds durably (both sides count the same). */
  bytes: number;
  total: number;
  /** Average bytes per second since it started, while a process works on it; else 0. */
  rate: number;
  state: string;
  reason?: string;
  /** Whether a process works on it now. */
  active: boolean;
  /** ISO times: when it started, and when this side last recorded progress. */
  startedAt: string;
  lastActivity: string;
}

export interface SpoolReport {
  peer: PeerId;
  file: string;
  size: number;
  /** ISO time the file was last changed (dropped into the outbox). */
  since: string;
}

export interface StatusReport {
  self: PeerId;
  /** ISO time of this report. */
  at: string;
  daemon: { running: boolean; pid?: number };
  relay: { reachable: boolean; error?: string };
  peers: PeerReport[];
  transfers: TransferReport[];
  /** Files waiting in the outbox; one being sent is under transfers, not here. */
  spool: SpoolReport[];
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
    readShared: fail,
    listShared: fail,
    publishShared: fail,
    removeShared: fail,
    usage: fail,
    watch: () => {},
  };
}

export async function collectStatus(peer: Peer, options: { relayError?: string } = {}): Promise<StatusReport> {
  const { home } = peer;
  const now = peer.clock.now();
  const daemon = await lockHolder(home.lock('daemon'));
  const presence = (await readJsonFile<Presence>(home.presence).catch(() => undefined)) ?? {};
  let relayError = options.relayError;
  const fromRelay = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
    if (relayError !== undefined) return undefined;
    try {
      return await read();
    } catch (error) {
      if (!isDmpError(error, 'RELAY_MISSING')) throw error;
      relayError = error.message;
      return undefined;
    }
  };

  const others = (await fromRelay(() => peer.peers())) ?? [];
  // With the relay gone, the peers this one has heard from are all there is to show.
  const known = relayError === undefined ? others : Object.keys(presence).filter(isPeerId).sort();
  const quarantines = new Map(peer.quarantined().map((quarantine) => [quarantine.peer, quarantine]));
  const peers: PeerReport[] = [];
  for (const other of known as PeerId[]) {
    const heard = presence[other]?.lastHeard;
    const quarantine = quarantines.get(other);
    peers.push({
      peer: other,
      ...(heard ? { lastHeard: new Date(heard).toISOString() } : {}),
      ...(await fromRelay(() => peer.messageCounts(other))),
      ...(quarantine
        ? { quarantined: { reason: quarantine.reason, until: new Date(quarantine.until).toISOString() } }
        : {}),
    });
  }
  const records = await peer.transfers();
  const transfers: TransferReport[] = records.map((record) => ({
    id: record.tid,
    direction: record.direction,
    peer: record.peer,
    file: record.file,
    bytes: record.bytes,
    total: record.total,
    rate: record.active ? rateOf(record.bytes, record.startedAt, now) : 0,
    state: record.active || !isInFlight(record.state) ? record.state : 'interrupted',
    ...(record.reason === undefined ? {} : { reason: record.reason }),
    active: record.active,
    startedAt: new Date(record.startedAt).toISOString(),
    lastActivity: new Date(record.updatedAt).toISOString(),
  }));
  // A file the daemon is sending is a transfer now, not also a queued file.
  const sending = new Set(records.filter((record) => record.direction === 'send').map((record) => record.path));
  const spool = (await new Spool(home.folder('outbox'), 0, () => now).list())
    .filter((entry) => !sending.has(entry.path))
    .map((entry) => ({
      peer: entry.peer,
      file: entry.name,
      size: entry.size,
      since: new Date(entry.mtimeMs).toISOString(),
    }));
  const relayBytes = (await fromRelay(() => peer.relayUsage())) ?? 0;
  return {
    self: peer.self,
    at: new Date(now).toISOString(),
    daemon: { running: daemon.held, ...(daemon.pid === undefined ? {} : { pid: daemon.pid }) },
    relay: relayError === undefined ? { reachable: true } : { reachable: false, error: relayError },
    peers,
    transfers,
    spool,
    relayBytes,
    // The running daemon's quota (it may have been given --quota), else this command's.
    quota:
      (daemon.held
        ? (await readJsonFile<{ quota?: number }>(home.daemonInfo).catch(() => undefined))?.quota
        : undefined) ?? peer.quota,
  };
}

/** States in which a transfer moves only while a process works on it. */
function isInFlight(state: string): boolean {
  return state === 'receiving' || state === 'waiting' || state === 'paused';
}

function rateOf(bytes: number, since: number | undefined, now: number): number {
  if (!since || now <= since) return 0;
  return Math.round(bytes / ((now - since) / 1000));
}
