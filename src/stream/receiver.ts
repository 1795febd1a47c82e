/**
 * The receiving half of a message stream (peer -> self).
 *
 * MUST rules enforced here (docs/PROTOCOL.md):
 * - Messages are delivered in sequence order, each exactly once: the next one delivered is
 *   always `deliveredThrough + 1`; anything lower is a duplicate and is ignored, anything higher
 *   waits in the relay (the reorder buffer is the folder itself, bounded by the sender's quota).
 * - A message is acknowledged only after it is durably in the local inbox.
 * - A file that fails authentication is never delivered: it is logged with peer and file, and
 *   the ack asks the sender to publish it again.
 */
import { readJsonFile, writeJsonFile } from '../local/files.js';
import type { HomeLayout } from '../local/home.js';
import { Journal } from '../local/journal.js';
import { type Envelope, MAX_CONTROL_FILE, PROTOCOL_VERSION } from '../node/envelope.js';
import { isRefused } from '../node/inbound.js';
import type { NodeComponents } from '../node/node.js';
import { openEnvelope, sealEnvelope } from '../node/open.js';
import { RepeatSchedule } from '../node/repeat.js';
import type { PeerId } from '../util/peer-id.js';
import { type AckBody, MSG } from './kinds.js';
import { ACK_NAME, messageName, parseMessageName } from './names.js';

export type MessageReceiverComponents = Pick<
  NodeComponents,
  'self' | 'relay' | 'inbound' | 'sealer' | 'guard' | 'home' | 'clock' | 'logger'
>;

/** One delivered message, as kept in the inbox (DMP_HOME/state/streams/<peer>/inbox.jsonl). */
export interface InboxMessage {
  from: PeerId;
  seq: number;
  text: string;
  sentAt: number;
  receivedAt: number;
  /** A broadcast to every member, not a message to this peer alone. */
  broadcast?: true;
}

/** At most this many messages, and about this much text, are delivered in one batch. */
const BATCH_MESSAGES = 1000;
const BATCH_BYTES = 4 * 1024 * 1024;

export class MessageReceiver {
  readonly inbox: Journal<InboxMessage>;
  private deliveredThrough: number | undefined;
  /** Files that failed, by name, with the version that failed: retried once it changes. */
  private readonly bad = new Map<string, string>();
  private lastAck: string | undefined;
  private readonly repeat: RepeatSchedule;
  /** The last poll stopped at the batch limit with the next message already there. */
  hasMore = false;

  constructor(
    private readonly ctx: MessageReceiverComponents,
    readonly peer: PeerId,
  ) {
    this.inbox = inboxOf(ctx.home, peer);
    this.repeat = new RepeatSchedule(ctx.clock);
  }

  /** The highest sequence number delivered: the inbox's last record, or the compacted base. */
  private async loadDelivered(): Promise<number> {
    this.deliveredThrough ??= await deliveredThrough(this.ctx.home, this.peer);
    return this.deliveredThrough;
  }

  /**
   * Delivers what can be delivered now into the inbox and publishes the ack. `names` is a fresh
   * listing of `<relay>/<peer>/<self>/`. Returns the messages delivered, in order: at most one
   * batch (BATCH_MESSAGES, or BATCH_BYTES of text), so that memory stays bounded however many
   * wait; `hasMore` then asks for another pass.
   */
  async poll(names: readonly string[], options: { drop?: boolean } = {}): Promise<InboxMessage[]> {
    let through = await this.loadDelivered();
    // Only the bounds of what is listed are kept, not a set of every number: a backlog of
    // 100,000 messages is then a few numbers here.
    let lowest = Number.POSITIVE_INFINITY;
    let highest = 0;
    for (const name of names) {
      const seq = parseMessageName(name);
      if (seq === undefined) continue;
      if (seq < lowest) lowest = seq;
      if (seq > highest) highest = seq;
    }
    const delivered: InboxMessage[] = [];
    let bytes = 0;
    this.hasMore = false;
    for (;;) {
      const next = through + delivered.length + 1;
      if (next <= highest && (delivered.length >= BATCH_MESSAGES || bytes >= BATCH_BYTES)) {
        this.hasMore = true;
        break;
      }
      // Listed messages follow each other; one that is not there is looked for no further.
      const message = next <= highest && next >= lowest ? await this.fetchMessage(next) : 'missing';
      if (message === 'missing') {
        if (delivered.length > 0) break;
        const skipTo = await this.lostStateSkip(lowest, next);
        if (skipTo === undefined) break;
        this.ctx.logger.log('warn', 'receiver-skip', { peer: this.peer, from: through, to: skipTo });
        through = skipTo;
        this.deliveredThrough = skipTo;
        continue;
      }
      if (message === 'bad') {
        await this.probeAnother(highest, next);
        break;
      }
      delivered.push({
        from: this.peer,
        seq: message.seq,
        text: message.body,
        sentAt: message.sentAt,
        receivedAt: this.ctx.clock.now(),
      });
      bytes += message.body.length;
    }
    if (delivered.length > 0 && options.drop) {
      // A blocked peer's messages are acknowledged and dropped: only how far is recorded.
      await writeJsonFile(this.ctx.home.stream(this.peer, 'inbox.json'), {
        deliveredThrough: through + delivered.length,
      });
      this.deliveredThrough = through + delivered.length;
      delivered.length = 0;
    } else if (delivered.length > 0) {
      await this.inbox.append(delivered);
      this.deliveredThrough = through + delivered.length;
    }
    // The sender has not reacted to our ack (files we acknowledged are still there, or a resend
    // we asked for has not come): the ack may have reached it damaged. Publish it again.
    const ignored = this.bad.size > 0 || lowest <= (this.deliveredThrough ?? 0);
    await this.publishAck(ignored && this.repeat.due);
    return delivered;
  }

  /** Reads and checks message `seq`; undefined when it is gone or bad (then a resend is asked). */
  private async readMessage(seq: number): Promise<Envelope<string> | undefined> {
    const message = await this.fetchMessage(seq);
    return typeof message === 'string' ? undefined : message;
  }

  /** Message `seq`, checked; 'missing' when it is not there, 'bad' when it fails (a resend is asked). */
  private async fetchMessage(seq: number): Promise<Envelope<string> | 'missing' | 'bad'> {
    const name = messageName(seq);
    const read = await this.ctx.inbound.read(this.peer, name, { maxBytes: MAX_CONTROL_FILE });
    if (read === undefined) return 'missing';
    if (this.bad.get(name) === read.version) return 'bad';
    if (isRefused(read)) {
      // Not a file we can read (too large, a link, unreadable): ask for it again, like a damaged one.
      this.bad.set(name, read.version);
      return 'bad';
    }
    const opened = openEnvelope(this.ctx, this.peer, name, read, { kind: MSG, seq });
    if (opened.envelope) this.bad.delete(name);
    else this.bad.set(name, read.version);
    return opened.envelope ?? 'bad';
  }

  /**
   * The next message failed and nothing of this peer has authenticated yet: one damaged file or
   * another key? Another message of the peer, if there is one, is a second witness for the
   * guard (it is only opened, never delivered out of order).
   */
  private async probeAnother(highest: number, failed: number): Promise<void> {
    if (this.ctx.guard.hasAuthenticated(this.peer) || this.ctx.guard.isUnauthenticated(this.peer)) return;
    if (highest !== failed && highest > 0) await this.readMessage(highest);
  }

  /**
   * When the next message is missing but later ones say the sender already saw it acknowledged,
   * this receiver has lost its state (a wiped DMP_HOME): skip to what the sender knows.
   */
  private async lostStateSkip(lowest: number, next: number): Promise<number | undefined> {
    if (!Number.isFinite(lowest) || lowest <= next) return undefined;
    const envelope = await this.readMessage(lowest);
    if (envelope?.acked !== undefined && envelope.acked >= next) return envelope.acked;
    return undefined;
  }

  /** Publishes the cumulative ack when it says something new. Not fsynced: it is derived. */
  private async publishAck(force: boolean): Promise<void> {
    const body: AckBody = {
      through: this.deliveredThrough ?? 0,
      resend: [...this.bad.keys()].map((name) => parseMessageName(name) ?? 0).filter((seq) => seq > 0),
    };
    // A file that fails again in a new version is a new request, even if the body reads the same.
    const summary = JSON.stringify([body, [...this.bad.values()]]);
    if (summary === this.lastAck && !force) return;
    const envelope: Envelope = {
      v: PROTOCOL_VERSION,
      type: 'ack',
      from: this.ctx.self,
      to: this.peer,
      seq: body.through,
      sentAt: this.ctx.clock.now(),
      body,
    };
    await this.ctx.relay.publish(this.peer, [{ name: ACK_NAME, data: sealEnvelope(this.ctx, envelope) }], {
      durable: false,
    });
    this.repeat.published(summary !== this.lastAck);
    this.lastAck = summary;
  }
}

/** The inbox of messages from `peer`. */
export function inboxOf(home: HomeLayout, peer: PeerId): Journal<InboxMessage> {
  return new Journal(home.stream(peer, 'inbox.jsonl'));
}

/** The highest sequence number from `peer` delivered into the inbox: its last record, or the compacted base. */
export async function deliveredThrough(home: HomeLayout, peer: PeerId): Promise<number> {
  const base = (await readJsonFile<{ deliveredThrough: number }>(home.stream(peer, 'inbox.json')))?.deliveredThrough;
  // Its last record only: the inbox may hold every message ever received.
  const last = await inboxOf(home, peer).last();
  return Math.max(base ?? 0, last?.seq ?? 0);
}
