/**
 * `dmp status`: what a peer is doing, read from DMP_HOME and the relay without writing to
 * either, so it never disturbs a running daemon.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { readJsonFile } from '../local/files.js';
import { Journal } from '../local/journal.js';
import type { Peer } from '../peer.js';
import { type AckBody, decodeEnvelope } from '../stream/envelope.js';
import { ACK_NAME, parseMessageName } from '../stream/names.js';
import type { InboxMessage } from '../stream/receiver.js';
import { chunkRange, fromRanges, planChunks } from '../transfer/chunk-codec.js';
import { decodeStatus } from '../transfer/control.js';
import { statusName } from '../transfer/names.js';
import type { IncomingState } from '../transfer/receiver.js';
import type { OutgoingState } from '../transfer/sender.js';
import type { PeerId } from '../util/peer-id.js';
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

export async function collectStatus(peer: Peer): Promise<StatusReport> {
  const { ctx } = peer;
  const { home, relay, key, self } = ctx;
  const now = ctx.clock.now();
  const daemonLock = home.lock('daemon');
  const running = await lockfile
    .check(daemonLock, { lockfilePath: `${daemonLock}.lock`, realpath: false, stale: 10_000 })
    .catch(() => false);
  const pidText = running ? await readJsonFile<number>(`${daemonLock}.pid`).catch(() => undefined) : undefined;
  const presence = (await readJsonFile<Presence>(home.presence).catch(() => undefined)) ?? {};

  const peers: PeerReport[] = [];
  for (const other of (await relay.peers()).filter((id) => id !== self)) {
    let acked = 0;
    const ack = await relay.read(other, self, ACK_NAME);
    if (ack) {
      try {
        acked = (decodeEnvelope(key, ack.data, { from: other, to: self, type: 'ack' }).body as AckBody).through;
      } catch {
        // An ack we cannot read counts as none.
      }
    }
    const outgoing = (await relay.list(self, other)).filter((name) => (parseMessageName(name) ?? 0) > acked).length;
    const inbox = new Journal<InboxMessage>(home.stream(other, 'inbox.jsonl'));
    const { records } = await inbox.read();
    const base = (await readJsonFile<{ deliveredThrough: number }>(home.stream(other, 'inbox.json')))?.deliveredThrough;
    const delivered = Math.max(base ?? 0, records.at(-1)?.seq ?? 0);
    const cursor = (await readJsonFile<{ offset: number }>(home.stream(other, 'inbox.read')))?.offset ?? 0;
    const unread = (await inbox.read(cursor)).records.length;
    const waiting = (await relay.list(other, self)).filter((name) => (parseMessageName(name) ?? 0) > delivered).length;
    const heard = presence[other]?.lastHeard;
    peers.push({
      peer: other,
      ...(heard ? { lastHeard: new Date(heard).toISOString() } : {}),
      outgoing,
      incoming: waiting + unread,
    });
  }

  const transfers: TransferReport[] = [];
  const outDir = home.transfers('out');
  for (const file of await readdir(outDir).catch(() => [] as string[])) {
    const state = await readJsonFile<OutgoingState>(join(outDir, file)).catch(() => undefined);
    if (!state?.tid) continue;
    let bytes = 0;
    let phase = 'waiting';
    const read = await relay.read(state.peer, self, statusName(state.tid));
    if (read) {
      try {
        const status = decodeStatus(key, read.data, state.peer, self, state.tid);
        const plan = planChunks(state.size, state.blockSize);
        for (const index of fromRanges(status.have)) bytes += chunkRange(plan, index).length;
        phase = status.state;
      } catch {
        phase = 'unreadable status';
      }
    }
    transfers.push({
      direction: 'send',
      peer: state.peer,
      file: state.name,
      bytes,
      total: state.size,
      rate: rateOf(bytes, state.createdAt, now),
      state: phase,
    });
  }
  const inDir = home.transfers('in');
  for (const file of await readdir(inDir).catch(() => [] as string[])) {
    const state = await readJsonFile<IncomingState>(join(inDir, file)).catch(() => undefined);
    if (!state?.tid || state.state === 'complete') continue;
    const plan = planChunks(state.offer.size, state.offer.blockSize);
    let bytes = 0;
    for (const index of fromRanges(state.have)) bytes += chunkRange(plan, index).length;
    transfers.push({
      direction: 'receive',
      peer: state.peer,
      file: state.parts.join('/'),
      bytes,
      total: state.offer.size,
      rate: rateOf(bytes, state.startedAt, now),
      state: state.state,
    });
  }

  const spool = (await new Spool(home.folder('outbox'), 0, () => now).list()).map((entry) => ({
    peer: entry.peer,
    file: entry.name,
    size: entry.size,
  }));
  return {
    self,
    daemon: { running, ...(typeof pidText === 'number' ? { pid: pidText } : {}) },
    peers,
    transfers,
    spool,
    relayBytes: await relay.usage().catch(() => 0),
    // The running daemon's quota (it may have been given --quota), else this command's.
    quota:
      (running ? (await readJsonFile<{ quota?: number }>(home.daemonInfo).catch(() => undefined))?.quota : undefined) ??
      ctx.quota,
  };
}

function rateOf(bytes: number, since: number | undefined, now: number): number {
  if (!since || now <= since) return 0;
  return Math.round(bytes / ((now - since) / 1000));
}
