/**
 * What a sender keeps of each transfer in DMP_HOME (state/<self>/transfers/out/<tid>.json), so
 * that running the same command again resumes it; and the withdrawal that ends one on both
 * sides.
 */
import { randomBytes } from 'node:crypto';
import { readdir, unlink, utimes } from 'node:fs/promises';
import { readJsonFile, writeJsonFile } from '../local/files.js';
import type { NodeComponents } from '../node/node.js';
import type { PeerId } from '../util/peer-id.js';
import { MIN_BLOCK_SIZE } from './control.js';
import { offerName, parseChunkName } from './names.js';

type OutgoingComponents = Pick<NodeComponents, 'self' | 'relay' | 'home' | 'clock'>;

export interface OutgoingState {
  tid: string;
  peer: PeerId;
  path: string;
  name: string;
  size: number;
  mtimeMs: number;
  blockSize: number;
  createdAt: number;
  /** The request this transfer answers (a served get, a put), carried in its offer. */
  request?: string;
}

function stateDir(ctx: Pick<NodeComponents, 'home'>): string {
  return ctx.home.transfers('out');
}

/** The state file of one outgoing transfer. */
export function outgoingStatePath(ctx: Pick<NodeComponents, 'home'>, tid: string): string {
  return `${stateDir(ctx)}/${tid}.json`;
}

/**
 * Records that the transfer moved on, as the state file's mtime (what `dftp list` shows as its
 * last activity): the state itself does not change while it runs.
 */
export async function touchOutgoing(ctx: Pick<NodeComponents, 'home' | 'clock'>, tid: string): Promise<void> {
  const seconds = ctx.clock.now() / 1000;
  await utimes(outgoingStatePath(ctx, tid), seconds, seconds).catch(() => {});
}

/**
 * Finds the interrupted transfer of this file to this peer, or starts a new one. A transfer
 * that answers a request (`request`) and a plain send are never taken for one another: their
 * offers go to different receivers. A resumed transfer keeps the request it started with.
 */
export async function resumeOrStart(
  ctx: OutgoingComponents,
  peer: PeerId,
  path: string,
  name: string,
  info: { size: number; mtimeMs: number },
  blockSize: number,
  request?: string,
): Promise<OutgoingState & { resumed?: boolean }> {
  const dir = stateDir(ctx);
  const files = await readdir(dir).catch(() => [] as string[]);
  for (const file of files) {
    if (!file.endsWith('.json')) continue;
    const state = await readJsonFile<OutgoingState>(`${dir}/${file}`).catch(() => undefined);
    if (!state || state.peer !== peer || state.path !== path || state.name !== name) continue;
    if ((state.request === undefined) !== (request === undefined)) continue;
    // Receivers refuse blocks under MIN_BLOCK_SIZE (older versions allowed them): start over.
    const usable = state.blockSize >= MIN_BLOCK_SIZE;
    if (usable && state.size === info.size && state.mtimeMs === info.mtimeMs) return { ...state, resumed: true };
    // The file changed since the interrupted send: that transfer can never verify. Withdraw it.
    await withdraw(ctx, state);
  }
  const state: OutgoingState = {
    tid: randomBytes(8).toString('hex'),
    peer,
    path,
    name,
    size: info.size,
    mtimeMs: info.mtimeMs,
    blockSize,
    createdAt: ctx.clock.now(),
    ...(request === undefined ? {} : { request }),
  };
  await writeJsonFile(outgoingStatePath(ctx, state.tid), state);
  return state;
}

/** Removes a transfer's files from the relay and its local state; the receiver then drops it. */
export async function withdraw(ctx: OutgoingComponents, state: OutgoingState): Promise<void> {
  const names = (await ctx.relay.list(ctx.self, state.peer)).filter(
    (name) => name === offerName(state.tid) || parseChunkName(name)?.tid === state.tid,
  );
  // The offer goes last: while it exists, the receiver keeps the transfer.
  await ctx.relay.remove(
    state.peer,
    names.filter((name) => name !== offerName(state.tid)),
  );
  await ctx.relay.remove(state.peer, [offerName(state.tid)]);
  await unlink(outgoingStatePath(ctx, state.tid)).catch(() => {});
}

/** Every outgoing transfer this home remembers. */
export async function listOutgoing(ctx: Pick<NodeComponents, 'home'>): Promise<OutgoingState[]> {
  const dir = stateDir(ctx);
  const states: OutgoingState[] = [];
  for (const file of (await readdir(dir).catch(() => [] as string[])).sort()) {
    if (!file.endsWith('.json')) continue;
    const state = await readJsonFile<OutgoingState>(`${dir}/${file}`).catch(() => undefined);
    if (state?.tid) states.push(state);
  }
  return states;
}
