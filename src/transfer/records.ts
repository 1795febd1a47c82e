/**
 * Transfers in flight or interrupted, both ways, as `dmp status` shows them: read from the
 * states in DMP_HOME and the receivers' status files in the relay, writing nothing.
 */
import { MAX_CONTROL_FILE } from '../node/envelope.js';
import { isRefused } from '../node/inbound.js';
import type { NodeComponents } from '../node/node.js';
import { openEnvelope } from '../node/open.js';
import type { PeerId } from '../util/peer-id.js';
import { chunkRange, fromRanges, planChunks } from './chunk-codec.js';
import { STATUS } from './control.js';
import { listIncoming } from './incoming-state.js';
import { statusName } from './names.js';
import { listOutgoing } from './outgoing-state.js';

export interface TransferRecord {
  direction: 'send' | 'receive';
  peer: PeerId;
  tid: string;
  file: string;
  /** Bytes the receiver holds durably. */
  bytes: number;
  total: number;
  /** When the transfer started, ms since the epoch. */
  startedAt: number;
  /** receiving, paused, complete, failed; for a send also waiting (no status yet) or unreadable. */
  state: string;
}

function bytesOf(size: number, blockSize: number, have: readonly [number, number][]): number {
  const plan = planChunks(size, blockSize);
  let bytes = 0;
  for (const index of fromRanges(have)) if (index < plan.count) bytes += chunkRange(plan, index).length;
  return bytes;
}

export async function listTransfers(
  ctx: Pick<NodeComponents, 'self' | 'relay' | 'inbound' | 'home' | 'sealer' | 'guard' | 'logger'>,
): Promise<TransferRecord[]> {
  const records: TransferRecord[] = [];
  for (const state of await listOutgoing(ctx)) {
    let bytes = 0;
    let phase = 'waiting';
    const name = statusName(state.tid);
    const read = await ctx.inbound.read(state.peer, name, { maxBytes: MAX_CONTROL_FILE });
    if (isRefused(read)) phase = 'unreadable status';
    else if (read) {
      const status = openEnvelope(ctx, state.peer, name, read, { kind: STATUS }).envelope?.body;
      if (status) {
        bytes = bytesOf(state.size, state.blockSize, status.have);
        phase = status.state;
      } else phase = 'unreadable status';
    }
    records.push({
      direction: 'send',
      peer: state.peer,
      tid: state.tid,
      file: state.name,
      bytes,
      total: state.size,
      startedAt: state.createdAt,
      state: phase,
    });
  }
  for (const state of await listIncoming(ctx.home)) {
    if (state.state === 'complete') continue;
    records.push({
      direction: 'receive',
      peer: state.peer,
      tid: state.tid,
      file: state.parts.join('/'),
      bytes: bytesOf(state.offer.size, state.offer.blockSize, state.have),
      total: state.offer.size,
      startedAt: state.startedAt,
      state: state.state,
    });
  }
  return records;
}
