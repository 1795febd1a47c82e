/**
 * What was said, both ways: `dmp history` and the chat's opening lines. `listen` shows each
 * message once; history shows them again from the journals this peer keeps anyway:
 *
 *   streams/<peer>/inbox.jsonl      direct messages received from <peer> (kept)
 *   streams/<peer>/broadcast.jsonl  broadcasts received from <peer> (kept)
 *   streams/<peer>/sent.jsonl       direct messages sent to <peer> (written here, kept)
 *   broadcast/sent.jsonl            this peer's own broadcasts (written here, kept)
 *
 * The outgoing logs the streams send from (out.jsonl) are cleared once acknowledged, so the sent
 * side needs journals of its own; they are written with the outgoing log, before the relay file.
 */
import { sentBroadcastsOf } from '../broadcast/broadcast.js';
import type { HomeLayout } from '../local/home.js';
import { Journal } from '../local/journal.js';
import { type SentRecord, sentLogOf } from '../stream/sender.js';
import type { PeerId } from '../util/peer-id.js';

/** One message as history shows it. */
export interface HistoryEntry {
  from: PeerId;
  /** The receiving peer, or 'all' for a broadcast. */
  to: PeerId | 'all';
  seq: number;
  text: string;
  /** When it was sent (outgoing) or received (incoming), by this machine's clock, ms. */
  at: number;
  broadcast: boolean;
  direction: 'in' | 'out';
}

interface ReceivedRecord {
  from: PeerId;
  seq: number;
  text: string;
  receivedAt: number;
}

export interface HistoryQuery {
  /** Only the conversation with this peer (its messages and broadcasts, and what went to it). */
  peer?: PeerId;
  /** Only entries at or after this time, ms since the epoch. */
  since?: number;
  /** Only the last `limit` entries. @default all */
  limit?: number;
}

/**
 * Every entry that matches, oldest first. Journals are read in bounded batches and only the last
 * `limit` entries of each are kept, so a long history costs the entries shown, not the journal.
 */
export async function readHistory(
  home: HomeLayout,
  self: PeerId,
  peers: readonly PeerId[],
  query: HistoryQuery = {},
): Promise<HistoryEntry[]> {
  const since = query.since ?? Number.NEGATIVE_INFINITY;
  const limit = query.limit ?? Number.POSITIVE_INFINITY;
  const sources: { journal: Journal<ReceivedRecord | SentRecord>; entry: (record: never) => HistoryEntry }[] = [];
  for (const peer of query.peer ? [query.peer] : peers) {
    sources.push(
      {
        journal: new Journal(home.stream(peer, 'inbox.jsonl')),
        entry: (r: ReceivedRecord) => received(r, self, false),
      },
      {
        journal: new Journal(home.stream(peer, 'broadcast.jsonl')),
        entry: (r: ReceivedRecord) => received(r, 'all', true),
      },
      {
        journal: sentLogOf(home, peer),
        entry: (r: SentRecord) => sent(r, self, peer, false),
      },
    );
  }
  sources.push({ journal: sentBroadcastsOf(home), entry: (r: SentRecord) => sent(r, self, 'all', true) });
  const all: HistoryEntry[] = [];
  for (const { journal, entry } of sources) {
    let kept: HistoryEntry[] = [];
    for await (const records of journal.batches()) {
      for (const record of records) {
        const item = entry(record as never);
        if (item.at >= since) kept.push(item);
      }
      if (kept.length > 2 * limit) kept = kept.slice(-limit);
    }
    all.push(...(Number.isFinite(limit) ? kept.slice(-limit) : kept));
  }
  // Stable: entries of one journal keep their order when two carry the same time.
  all.sort((a, b) => a.at - b.at);
  return Number.isFinite(limit) ? all.slice(-limit) : all;
}

function received(record: ReceivedRecord, to: PeerId | 'all', broadcast: boolean): HistoryEntry {
  return {
    from: record.from,
    to,
    seq: record.seq,
    text: record.text,
    at: record.receivedAt,
    broadcast,
    direction: 'in',
  };
}

function sent(record: SentRecord, self: PeerId, to: PeerId | 'all', broadcast: boolean): HistoryEntry {
  return { from: self, to, seq: record.seq, text: record.text, at: record.sentAt, broadcast, direction: 'out' };
}
