/**
 * Transfers in flight or interrupted, both ways, as `dmp status` and `dftp list` show them: read
 * from the states in DMP_HOME and the receivers' status files in the relay, writing nothing.
 *
 * Both sides count the same thing: the bytes the receiver has durably written (the sender learns
 * them from the receiver's status, the receiver keeps them in its state), so the two figures of
 * one transfer differ only by what the sync tool has not carried yet.
 */
import { stat } from 'node:fs/promises';
import { isDmpError } from '../errors.js';
import { lockHolder } from '../local/lock.js';
import { decodeEnvelope, MAX_CONTROL_FILE } from '../node/envelope.js';
import { isRefused } from '../node/inbound.js';
import type { NodeComponents } from '../node/node.js';
import { openEnvelope } from '../node/open.js';
import type { PeerId } from '../util/peer-id.js';
import { chunkRange, fromRanges, planChunks } from './chunk-codec.js';
import { STATUS } from './control.js';
import { incomingStatePath, listIncoming } from './incoming-state.js';
import { offerName, statusName } from './names.js';
import { listOutgoing, outgoingStatePath } from './outgoing-state.js';
import { resolveInside } from './safe-path.js';

export interface TransferRecord {
  direction: 'send' | 'receive';
  peer: PeerId;
  tid: string;
  file: string;
  /** Sender: the source file. Receiver: where the file lands (its partial sits beside it). */
  path: string;
  /** Bytes the receiver holds durably. */
  bytes: number;
  total: number;
  blockSize: number;
  /** When the transfer started, ms since the epoch. */
  startedAt: number;
  /** When this side last recorded progress (or started), ms since the epoch. */
  updatedAt: number;
  /** Whether a process works on it now (the sender's or the receiver's lock is held). */
  active: boolean;
  /**
   * receiving, paused, complete, failed; for a send also waiting (no status yet), unreadable
   * status, source changed (it can never finish: cancel it), relay unreachable; for a receive
   * also withdrawn (the sender took its offer back; the partial goes when a receiver runs).
   */
  state: string;
  /** Why it is paused or failed, when the receiver said. */
  reason?: string;
}

function bytesOf(size: number, blockSize: number, have: readonly [number, number][]): number {
  const plan = planChunks(size, blockSize);
  let bytes = 0;
  for (const index of fromRanges(have)) if (index < plan.count) bytes += chunkRange(plan, index).length;
  return bytes;
}

/** The mtime of a state file: the last time its owner recorded anything. */
async function modifiedAt(path: string, fallback: number): Promise<number> {
  return Math.max(fallback, (await stat(path).catch(() => undefined))?.mtimeMs ?? fallback);
}

/**
 * What the receiver last published in its status for `peer`: the very figure the sender reads,
 * so that the two sides of a transfer never disagree (its state file may be one pass ahead of
 * the status when the receiver stopped between the two). Both members of a pair hold the key
 * the status is sealed with. Undefined when there is none, or it cannot be opened.
 */
async function ownStatus(
  ctx: Pick<NodeComponents, 'self' | 'relay' | 'sealer'>,
  peer: PeerId,
  tid: string,
  probe: RelayProbe,
): Promise<[number, number][] | undefined> {
  const read = await probe(() => ctx.relay.read(ctx.self, peer, statusName(tid), { maxBytes: MAX_CONTROL_FILE }));
  if (!read) return undefined;
  try {
    await ctx.sealer.prepare?.(peer);
    const status = decodeEnvelope(ctx.sealer.open(peer, read.data), { kind: STATUS, from: ctx.self, to: peer }).body;
    return status.tid === tid ? status.have : undefined;
  } catch {
    return undefined;
  }
}

/** A relay read that fails when the relay is gone: undefined, and the failure remembered. */
type RelayProbe = <T>(read: () => Promise<T>) => Promise<T | undefined>;

export async function listTransfers(
  ctx: Pick<NodeComponents, 'self' | 'relay' | 'inbound' | 'home' | 'sealer' | 'guard' | 'logger'>,
): Promise<TransferRecord[]> {
  let relayDown = false;
  const probe: RelayProbe = async (read) => {
    if (relayDown) return undefined;
    try {
      return await read();
    } catch (error) {
      if (!isDmpError(error, 'RELAY_MISSING') && !isDmpError(error, 'BAD_ENTRY') && !isDmpError(error, 'IO')) {
        throw error;
      }
      relayDown = isDmpError(error, 'RELAY_MISSING');
      return undefined;
    }
  };
  const records: TransferRecord[] = [];
  for (const state of await listOutgoing(ctx)) {
    let bytes = 0;
    let phase = 'waiting';
    let reason: string | undefined;
    const name = statusName(state.tid);
    const read = await probe(() => ctx.inbound.read(state.peer, name, { maxBytes: MAX_CONTROL_FILE }));
    if (isRefused(read)) phase = 'unreadable status';
    else if (read) {
      // Outside the node's loop the peer's keys are read here; a peer whose keys cannot be read
      // now shows as an unreadable status.
      await ctx.sealer.prepare?.(state.peer).catch(() => false);
      const status = openEnvelope(ctx, state.peer, name, read, { kind: STATUS }).envelope?.body;
      if (status) {
        bytes = bytesOf(state.size, state.blockSize, status.have);
        phase = status.state;
        reason = status.reason;
      } else phase = 'unreadable status';
    } else if (relayDown) phase = 'relay unreachable';
    const source = await stat(state.path).catch(() => undefined);
    if (!source || source.size !== state.size || source.mtimeMs !== state.mtimeMs) phase = 'source changed';
    const lock = await lockHolder(ctx.home.lock(`send-${state.tid}`));
    records.push({
      direction: 'send',
      peer: state.peer,
      tid: state.tid,
      file: state.name,
      path: state.path,
      bytes,
      total: state.size,
      blockSize: state.blockSize,
      startedAt: state.createdAt,
      updatedAt: await modifiedAt(outgoingStatePath(ctx, state.tid), state.createdAt),
      active: lock.held,
      state: phase,
      ...(reason === undefined ? {} : { reason }),
    });
  }
  const receiving = (await lockHolder(ctx.home.lock('receive-files'))).held;
  const offered = new Map<PeerId, Set<string> | undefined>();
  for (const state of await listIncoming(ctx.home)) {
    if (state.state === 'complete') continue;
    if (!offered.has(state.peer)) {
      const names = await probe(() => ctx.relay.list(state.peer, ctx.self));
      offered.set(state.peer, names === undefined ? undefined : new Set(names));
    }
    const names = offered.get(state.peer);
    const withdrawn = names !== undefined && !names.has(offerName(state.tid));
    // A refused (or cancelled) transfer whose sender has taken its offer back is over.
    if (withdrawn && state.state === 'failed') continue;
    let path = state.partial;
    try {
      path = resolveInside(state.out, state.parts);
    } catch {
      // A state from another version: the partial's path is the best there is.
    }
    records.push({
      direction: 'receive',
      peer: state.peer,
      tid: state.tid,
      file: state.parts.join('/'),
      path: state.path ?? path,
      bytes: bytesOf(
        state.offer.size,
        state.offer.blockSize,
        (await ownStatus(ctx, state.peer, state.tid, probe)) ?? state.have,
      ),
      total: state.offer.size,
      blockSize: state.offer.blockSize,
      startedAt: state.startedAt,
      updatedAt: await modifiedAt(incomingStatePath(ctx.home, state.peer, state.tid), state.startedAt),
      active: receiving,
      state: withdrawn && state.state !== 'failed' ? 'withdrawn' : state.state,
      ...(state.reason === undefined ? {} : { reason: state.reason }),
    });
  }
  return records;
}
