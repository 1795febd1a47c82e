/**
 * What a receiver keeps of each transfer in DMP_HOME
 * (state/<self>/transfers/in/<peer>-<tid>.json): enough to resume after a crash and to answer
 * `dmp status` without the receiver running.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readJsonFile } from '../local/files.js';
import type { HomeLayout } from '../local/home.js';
import type { PeerId } from '../util/peer-id.js';
import type { Offer, TransferState } from './control.js';

export interface IncomingState {
  tid: string;
  peer: PeerId;
  offer: Offer;
  /** The output folder, fixed when the offer was accepted. */
  out: string;
  /** The cleaned relative path, components. */
  parts: string[];
  /** The partial file (hidden, beside the target). */
  partial: string;
  have: [number, number][];
  sha256?: string;
  state: TransferState;
  reason?: string;
  path?: string;
  startedAt: number;
}

export function incomingStatePath(home: HomeLayout, peer: PeerId, tid: string): string {
  return home.transfers('in', `${peer}-${tid}.json`);
}

/** Every incoming transfer this home remembers. */
export async function listIncoming(home: HomeLayout): Promise<IncomingState[]> {
  const dir = home.transfers('in');
  const states: IncomingState[] = [];
  for (const file of (await readdir(dir).catch(() => [] as string[])).sort()) {
    if (!file.endsWith('.json')) continue;
    const state = await readJsonFile<IncomingState>(join(dir, file)).catch(() => undefined);
    if (state?.tid) states.push(state);
  }
  return states;
}
