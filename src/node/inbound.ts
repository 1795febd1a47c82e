/**
 * Reading what other peers wrote for this one (`<relay>/<peer>/<self>/<name>`), one entry at a
 * time. Every read is bounded by the size its kind allows (docs/PROTOCOL.md, "Limits"), so a
 * sparse gigabyte named like a message costs one stat. An entry the relay refuses (a link, a
 * FIFO or a folder with a file's name, an unreadable file, one over the limit: BAD_ENTRY) is
 * that entry's problem alone: the caller gets a `Refused` in place of the content, never an
 * exception that would end the pass for this peer or back its whole folder off.
 *
 * A refused entry is logged once (a warning when the peer is known to authenticate, at debug
 * level before), and not opened again until a change event names it or the next periodic
 * rescan: a bad `ack.dmp` or `status-*.dmp`, looked at on every pass, costs nothing meanwhile.
 */
import { type DmpError, isDmpError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RelayRead, RelayStorage } from '../relay/storage.js';
import type { PeerId } from '../util/peer-id.js';
import type { AuthGuard } from './auth-guard.js';
import type { ChangeFeed } from './feed.js';

/** An entry the relay refused to read, in place of its content. */
export interface Refused {
  /** The BAD_ENTRY error: `data.reason` says why ('link', 'not-a-file', 'too-large', ...). */
  readonly refused: DmpError;
  /**
   * Stands in for the entry's version: the same refusal always reads the same, so a caller's
   * "failed in this version" records treat it as one bad version until it is replaced.
   */
  readonly version: string;
}

export type Fetched = RelayRead | Refused | undefined;

export function isRefused(fetched: Fetched): fetched is Refused {
  return fetched !== undefined && 'refused' in fetched;
}

export interface InboundReadOptions {
  /** The largest file this kind of entry may be; larger ones are refused unread. */
  maxBytes: number;
  /** Read into this buffer when the content fits. */
  buffer?: Buffer;
}

export interface InboundComponents {
  self: PeerId;
  relay: RelayStorage;
  feed: ChangeFeed;
  guard: AuthGuard;
  logger: Logger;
}

/** Refusals logged, remembered so each is said once (bounded: forgotten wholesale when full). */
const MAX_REMEMBERED = 10_000;

export class InboundReader {
  /** Refused entries not to open again until named by a change or a rescan. */
  private readonly resting = new Map<string, Refused>();
  /** What was logged per entry: `reason@version`. */
  private readonly said = new Map<string, string>();

  constructor(
    private readonly components: InboundComponents,
    signal: AbortSignal,
  ) {
    const stop = components.feed.listen((change) => {
      if (change === null) {
        this.resting.clear();
        return;
      }
      if (change.dir !== components.self) return;
      if (change.name !== undefined) {
        this.resting.delete(key(change.owner, change.name));
        return;
      }
      // A change somewhere in the peer's folder: any of its entries may have been replaced.
      for (const entry of this.resting.keys()) {
        if (entry.startsWith(`${change.owner}/`)) this.resting.delete(entry);
      }
    });
    signal.addEventListener('abort', stop, { once: true });
  }

  /**
   * `<peer>/<self>/<name>`: its content, undefined when it does not exist, or a Refused. Errors
   * that are not about this entry alone (the relay gone, an I/O error) are thrown as they are.
   */
  async read(peer: PeerId, name: string, options: InboundReadOptions): Promise<Fetched> {
    const entry = key(peer, name);
    const resting = this.resting.get(entry);
    if (resting) return resting;
    try {
      return await this.components.relay.read(peer, this.components.self, name, options);
    } catch (error) {
      if (!isDmpError(error, 'BAD_ENTRY')) throw error;
      const reason = String(error.data.reason ?? 'bad entry');
      const refused: Refused = { refused: error, version: `refused:${reason}:${String(error.data.size ?? '')}` };
      if (this.resting.size >= MAX_REMEMBERED) this.resting.clear();
      this.resting.set(entry, refused);
      this.say(peer, name, entry, refused, reason);
      return refused;
    }
  }

  private say(peer: PeerId, name: string, entry: string, refused: Refused, reason: string): void {
    const what = `${reason}@${refused.version}`;
    if (this.said.get(entry) === what) return;
    if (this.said.size >= MAX_REMEMBERED) this.said.clear();
    this.said.set(entry, what);
    const { guard, logger } = this.components;
    logger.log(guard.hasAuthenticated(peer) ? 'warn' : 'debug', 'file-refused', {
      peer,
      file: name,
      reason: refused.refused.message,
    });
  }
}

function key(peer: PeerId, name: string): string {
  return `${peer}/${name}`;
}
