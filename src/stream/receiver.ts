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
import { isDmpError } from '../errors.js';
import { readJsonFile } from '../local/files.js';
import { Journal } from '../local/journal.js';
import type { PeerId } from '../util/peer-id.js';
import type { PeerContext } from './context.js';
import { type AckBody, decodeEnvelope, type Envelope, encodeEnvelope, PROTOCOL_VERSION } from './envelope.js';
import { ACK_NAME, messageName, parseMessageName } from './names.js';
import { RepeatSchedule } from './repeat.js';

/** One delivered message, as kept in the inbox (DMP_HOME/state/streams/<peer>/inbox.jsonl). */
export interface InboxMessage {
  from: PeerId;
  seq: number;
  text: string;
  sentAt: number;
  receivedAt: number;
}

const BATCH_MESSAGES = 1000;

export class MessageReceiver {
  readonly inbox: Journal<InboxMessage>;
  private deliveredThrough: number | undefined;
  /** Files that failed, by name, with the version that failed: retried once it changes. */
  private readonly bad = new Map<string, string>();
  private lastAck: string | undefined;
  private readonly repeat: RepeatSchedule;
  private authOk = 0;
  /** The last poll stopped at the batch limit with the next message already there. */
  hasMore = false;
  private authFailed = 0;

  constructor(
    private readonly ctx: PeerContext,
    readonly peer: PeerId,
  ) {
    this.inbox = new Journal(ctx.home.stream(peer, 'inbox.jsonl'));
    this.repeat = new RepeatSchedule(ctx.clock);
  }

  /** Every file from this peer so far failed authentication: most likely the keys differ. */
  get suspectWrongKey(): boolean {
    return this.authFailed > 0 && this.authOk === 0;
  }

  /** The highest sequence number delivered: the inbox's last record, or the compacted base. */
  private async loadDelivered(): Promise<number> {
    if (this.deliveredThrough === undefined) {
      const base = (await readJsonFile<{ deliveredThrough: number }>(this.ctx.home.stream(this.peer, 'inbox.json')))
        ?.deliveredThrough;
      const { records } = await this.inbox.read();
      this.deliveredThrough = Math.max(base ?? 0, records.at(-1)?.seq ?? 0);
    }
    return this.deliveredThrough;
  }

  /**
   * Delivers what can be delivered now into the inbox and publishes the ack. `names` is a fresh
   * listing of `<relay>/<peer>/<self>/`. Returns the messages delivered, in order.
   */
  async poll(names: readonly string[]): Promise<InboxMessage[]> {
    let through = await this.loadDelivered();
    const present = new Set<number>();
    for (const name of names) {
      const seq = parseMessageName(name);
      if (seq !== undefined) present.add(seq);
    }
    const delivered: InboxMessage[] = [];
    this.hasMore = false;
    for (;;) {
      const next = through + delivered.length + 1;
      if (!present.has(next)) {
        if (delivered.length > 0) break;
        const skipTo = await this.lostStateSkip(present, next);
        if (skipTo === undefined) break;
        this.ctx.logger.log('warn', 'receiver-skip', { peer: this.peer, from: through, to: skipTo });
        through = skipTo;
        this.deliveredThrough = skipTo;
        continue;
      }
      if (delivered.length >= BATCH_MESSAGES) {
        this.hasMore = true;
        break;
      }
      const envelope = await this.readMessage(next);
      if (envelope === undefined) break;
      delivered.push({
        from: this.peer,
        seq: envelope.seq,
        text: envelope.body as string,
        sentAt: envelope.sentAt,
        receivedAt: this.ctx.clock.now(),
      });
    }
    if (delivered.length > 0) {
      await this.inbox.append(delivered);
      this.deliveredThrough = through + delivered.length;
    }
    // The sender has not reacted to our ack (files we acknowledged are still there, or a resend
    // we asked for has not come): the ack may have reached it damaged. Publish it again.
    const ignored = this.bad.size > 0 || [...present].some((seq) => seq <= (this.deliveredThrough ?? 0));
    await this.publishAck(ignored && this.repeat.due);
    return delivered;
  }

  /** Reads and checks message `seq`; undefined when it is gone or bad (then a resend is asked). */
  private async readMessage(seq: number): Promise<Envelope | undefined> {
    const name = messageName(seq);
    const read = await this.ctx.relay.read(this.peer, this.ctx.self, name);
    if (read === undefined) return undefined;
    if (this.bad.get(name) === read.version) return undefined;
    try {
      const envelope = decodeEnvelope(this.ctx.key, read.data, {
        from: this.peer,
        to: this.ctx.self,
        type: 'msg',
        seq,
      });
      this.bad.delete(name);
      this.authOk += 1;
      return envelope;
    } catch (error) {
      if (!isDmpError(error, 'AUTH') && !isDmpError(error, 'PROTOCOL')) throw error;
      this.bad.set(name, read.version);
      if (isDmpError(error, 'AUTH')) this.authFailed += 1;
      // Until one file of this peer authenticates, a failure is more likely a wrong key, which
      // the caller reports in one line; the details are for --verbose.
      this.ctx.logger.log(this.authOk > 0 ? 'warn' : 'debug', 'message-rejected', {
        peer: this.peer,
        file: name,
        reason: error.message,
      });
      return undefined;
    }
  }

  /**
   * When the next message is missing but later ones say the sender already saw it acknowledged,
   * this receiver has lost its state (a wiped DMP_HOME): skip to what the sender knows.
   */
  private async lostStateSkip(present: Set<number>, next: number): Promise<number | undefined> {
    if (present.size === 0) return undefined;
    const lowest = Math.min(...present);
    if (lowest <= next) return undefined;
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
    await this.ctx.relay.publish(this.peer, [{ name: ACK_NAME, data: encodeEnvelope(this.ctx.key, envelope) }], {
      durable: false,
    });
    this.repeat.published(summary !== this.lastAck);
    this.lastAck = summary;
  }
}
