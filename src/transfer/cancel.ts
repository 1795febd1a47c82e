/**
 * `dftp cancel`: ends one transfer for good, on both sides.
 *
 * - An outgoing transfer is withdrawn: its chunks and then its offer leave the relay and its
 *   state goes; the receiver deletes its partial when it sees the offer gone (docs/PROTOCOL.md:
 *   "while the offer exists, the receiver keeps the transfer").
 * - An incoming transfer is refused: the partial is deleted, the state keeps only that it was
 *   cancelled (so a receiver run later does not take the offer up again), and a `failed` status
 *   tells the sender, which then withdraws its offer; the receiver forgets the state when the
 *   offer is gone.
 *
 * Only while no process works on the transfer: the sender's per-transfer lock, or the role of
 * receiving files, is taken for the time of the cancel.
 */
import { unlink } from 'node:fs/promises';
import { DmpError, isDmpError } from '../errors.js';
import { readJsonFile, writeJsonFile } from '../local/files.js';
import { acquireLock, type Release } from '../local/lock.js';
import { PROTOCOL_VERSION } from '../node/envelope.js';
import type { NodeComponents } from '../node/node.js';
import { sealEnvelope } from '../node/open.js';
import type { PeerId } from '../util/peer-id.js';
import { STATUS, type Status } from './control.js';
import { type IncomingState, incomingStatePath } from './incoming-state.js';
import { statusName } from './names.js';
import { listOutgoing, withdraw } from './outgoing-state.js';

type CancelComponents = Pick<NodeComponents, 'self' | 'relay' | 'home' | 'clock' | 'sealer' | 'logger'>;

/** Takes a lock for the cancel, or says which process works on the transfer. */
async function lockFor(path: string, what: string): Promise<Release> {
  try {
    return await acquireLock(path, { waitMs: 0, purpose: what });
  } catch (error) {
    if (!isDmpError(error, 'LOCKED')) throw error;
    const pid = typeof error.data.pid === 'number' ? ` (pid ${error.data.pid})` : '';
    throw new DmpError('LOCKED', `${what} is running${pid}: stop it first, then cancel`, {
      data: error.data,
      cause: error,
    });
  }
}

/** Withdraws the outgoing transfer `tid`. */
export async function cancelOutgoing(ctx: CancelComponents, tid: string): Promise<void> {
  const state = (await listOutgoing(ctx)).find((candidate) => candidate.tid === tid);
  if (!state) throw new DmpError('UNKNOWN_TRANSFER', `no outgoing transfer ${tid}`, { data: { tid } });
  const release = await lockFor(ctx.home.lock(`send-${tid}`), `a dftp send of ${state.name} (or the daemon)`);
  try {
    await withdraw(ctx, state);
  } finally {
    await release();
  }
}

/** Refuses the incoming transfer `tid` from `peer` and deletes its partial file. */
export async function cancelIncoming(ctx: CancelComponents, peer: PeerId, tid: string): Promise<void> {
  const path = incomingStatePath(ctx.home, peer, tid);
  const release = await lockFor(ctx.home.lock('receive-files'), 'a dftp receive (or the daemon)');
  try {
    const state = await readJsonFile<IncomingState>(path);
    if (!state || state.state === 'complete' || state.state === 'failed') {
      throw new DmpError('UNKNOWN_TRANSFER', `no incoming transfer ${tid} from ${peer} in flight`, { data: { tid } });
    }
    const reason = `cancelled by ${ctx.self}`;
    // The refusal is sealed first (the sender's keys are read when first needed): a peer whose
    // keys cannot be read fails the cancel before anything local changed.
    await ctx.sealer.prepare?.(peer);
    const status: Status = { tid, state: 'failed', have: [], resend: [], reason };
    const data = sealEnvelope(ctx, {
      v: PROTOCOL_VERSION,
      type: STATUS.type,
      from: ctx.self,
      to: peer,
      seq: 0,
      sentAt: ctx.clock.now(),
      body: status,
    });
    await unlink(state.partial).catch(() => {});
    const cancelled: IncomingState = { ...state, state: 'failed', reason, have: [] };
    delete cancelled.sha256;
    await writeJsonFile(path, cancelled);
    await ctx.relay.publish(peer, [{ name: statusName(tid), data }]);
  } finally {
    await release();
  }
}
