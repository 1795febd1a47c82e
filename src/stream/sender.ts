/**
 * The sending half of a message stream (self -> peer).
 *
 * MUST rules enforced here (docs/PROTOCOL.md):
 * - A sequence number is never used twice: numbers are allocated under a lock in DMP_HOME, and
 *   the next number is the highest of the state, the log, the relay and the peer's ack, plus one.
 * - The local log is written (fsynced) before the relay file: the log is the truth, the relay
 *   a copy, so a relay file that is lost or damaged can be published again.
 * - Files are deleted from the relay only once the peer's ack covers them.
 */
import { tokenLength } from '../crypto/fernet.js';
import { DmpError, isDmpError } from '../errors.js';
import { readJsonFile, writeJsonFile } from '../local/files.js';
import type { HomeLayout } from '../local/home.js';
import { Journal } from '../local/journal.js';
import { withLock } from '../local/lock.js';
import { decodeEnvelope, type Envelope, MAX_CONTROL_FILE, PROTOCOL_VERSION } from '../node/envelope.js';
import { isRefused } from '../node/inbound.js';
import type { NodeComponents } from '../node/node.js';
import { openEnvelope, sealEnvelope } from '../node/open.js';
import { publishWithinQuota, type WaitForRoom } from '../node/quota.js';
import type { PeerId } from '../util/peer-id.js';
import { formatSize } from '../util/size.js';
import { ACK, type AckBody, MAX_MESSAGE_BYTES, MSG } from './kinds.js';
import { ACK_NAME, MAX_SEQ, messageName, parseMessageName } from './names.js';

export type MessageSenderComponents = Pick<
  NodeComponents,
  'self' | 'relay' | 'inbound' | 'sealer' | 'guard' | 'home' | 'clock' | 'logger' | 'quota'
>;

interface SenderState {
  nextSeq: number;
  ackedThrough: number;
}

export interface AckSeen {
  through: number;
  resend: number[];
}

/** At most this many messages go into one batch: one log fsync and one directory fsync each. */
const BATCH_MESSAGES = 5000;

/** What a sender keeps of each message it sent, for history (streams/<peer>/sent.jsonl). */
export interface SentRecord {
  seq: number;
  text: string;
  sentAt: number;
}

export const sentLogOf = (home: HomeLayout, peer: PeerId) => new Journal<SentRecord>(home.stream(peer, 'sent.jsonl'));

export class MessageSender {
  private readonly log: Journal<Envelope>;
  private readonly statePath: string;
  private readonly lockPath: string;
  /** The version of the ack file last acted upon, so a resend request is served once. */
  private lastAckVersion: string | undefined;
  private lastAckBody: AckBody | undefined;
  /** This process has compared the log with the relay once (repair after a crash). */
  private repaired = false;

  constructor(
    private readonly ctx: MessageSenderComponents,
    readonly peer: PeerId,
  ) {
    this.log = new Journal(ctx.home.stream(peer, 'out.jsonl'));
    this.statePath = ctx.home.stream(peer, 'out.json');
    this.lockPath = ctx.home.lock(`send-${peer}`);
  }

  /**
   * Sends texts as consecutive messages. Resolves once every one is in the local log and in the
   * relay, with the sequence numbers given.
   */
  async send(texts: readonly string[], options: WaitForRoom = {}): Promise<number[]> {
    // Every text is checked before any is sent: a refusal never leaves half of them sent.
    for (const [index, text] of texts.entries()) this.checkSize(text, texts.length > 1 ? index + 1 : undefined);
    const seqs: number[] = [];
    return withLock(this.lockPath, async () => {
      const state = await this.currentState();
      // Repair first: files a crash kept from the relay are published again from the log.
      await this.applyAck({ through: state.ackedThrough, resend: [] }, { repair: true, settle: true });
      let index = 0;
      while (index < texts.length) {
        const envelopes: Envelope[] = [];
        const files: { name: string; data: string }[] = [];
        let bytes = 0;
        // A batch must fit the quota on its own, or it would wait forever.
        while (index < texts.length && envelopes.length < BATCH_MESSAGES) {
          const envelope: Envelope = {
            v: PROTOCOL_VERSION,
            type: 'msg',
            from: this.ctx.self,
            to: this.peer,
            seq: state.nextSeq + envelopes.length,
            sentAt: this.ctx.clock.now(),
            body: texts[index],
            acked: state.ackedThrough,
          };
          const data = sealEnvelope(this.ctx, envelope);
          if (envelopes.length > 0 && bytes + data.length > this.ctx.quota / 2) break;
          if (data.length > this.ctx.quota) {
            throw new DmpError('USAGE', `message of ${data.length} bytes does not fit the relay quota`);
          }
          envelopes.push(envelope);
          files.push({ name: messageName(envelope.seq), data });
          bytes += data.length;
          index += 1;
        }
        if (state.nextSeq + envelopes.length > MAX_SEQ) throw new DmpError('PROTOCOL', 'message stream exhausted');
        await this.log.append(envelopes);
        // History keeps what was sent after the log above is cleared on acknowledgement.
        await sentLogOf(this.ctx.home, this.peer).append(
          envelopes.map((envelope) => ({ seq: envelope.seq, text: String(envelope.body), sentAt: envelope.sentAt })),
        );
        await publishWithinQuota(this.ctx, bytes, () => this.ctx.relay.publish(this.peer, files, { durable: false }), {
          ...options,
          pause: async () => {
            // We hold the stream lock already: act on the ack without taking it again.
            const ack = await this.readAck();
            if (ack?.fresh) await this.applyAck(ack.body, { repair: false, settle: false });
            await (options.pause ? options.pause() : this.ctx.clock.sleep(100, options.signal));
          },
        });
        state.nextSeq += envelopes.length;
        await writeJsonFile(this.statePath, state);
        seqs.push(...envelopes.map((envelope) => envelope.seq));
      }
      return seqs;
    });
  }

  /**
   * A message must fit the protocol's limits (docs/PROTOCOL.md, "Limits"): its text at most
   * MAX_MESSAGE_BYTES, and its sealed file at most MAX_CONTROL_FILE, which a text full of
   * characters that JSON escapes (six bytes for one) can pass. A receiver refuses larger files
   * unread, so sending one could only jam the stream.
   */
  private checkSize(text: string, number: number | undefined): void {
    const what = number === undefined ? 'the message' : `message ${number}`;
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > MAX_MESSAGE_BYTES) {
      throw new DmpError(
        'USAGE',
        `${what} is ${formatSize(bytes)}: a message holds at most ${formatSize(MAX_MESSAGE_BYTES)} (send larger texts as a file, with dftp send)`,
      );
    }
    // The longest envelope this text can travel in: the largest numbers in every field.
    const plaintext = Buffer.byteLength(
      JSON.stringify({
        v: PROTOCOL_VERSION,
        type: 'msg',
        from: this.ctx.self,
        to: this.peer,
        seq: MAX_SEQ,
        sentAt: this.ctx.clock.now(),
        body: text,
        acked: MAX_SEQ,
      }),
    );
    const sealed = Math.ceil(tokenLength(plaintext) / 3) * 4;
    if (sealed > MAX_CONTROL_FILE) {
      throw new DmpError(
        'USAGE',
        `${what} would take ${formatSize(sealed)} sealed (its text has many characters JSON escapes): a message file holds at most ${formatSize(MAX_CONTROL_FILE)}`,
      );
    }
  }

  /**
   * Reads the peer's ack: deletes acknowledged files, publishes again what the peer asks for.
   * Returns what the ack says, or undefined when there is none yet.
   */
  async processAck(): Promise<AckSeen | undefined> {
    const ack = await this.readAck();
    if (ack?.fresh) {
      const repair = !this.repaired;
      try {
        await withLock(this.lockPath, () => this.applyAck(ack.body, { repair, settle: true }));
      } catch (error) {
        // Not acted upon: let the next look treat this ack as new again.
        this.lastAckVersion = undefined;
        throw error;
      }
      this.repaired = true;
    }
    return ack && { through: ack.body.through, resend: ack.body.resend };
  }

  /** What the peer's ack says it has delivered (0 when there is none or it does not open). Reads only. */
  async peerAcked(): Promise<number> {
    const read = await this.ctx.inbound.read(this.peer, ACK_NAME, { maxBytes: MAX_CONTROL_FILE });
    return read && !isRefused(read)
      ? (openEnvelope(this.ctx, this.peer, ACK_NAME, read, { kind: ACK }).envelope?.body.through ?? 0)
      : 0;
  }

  /** The peer's ack, and whether it changed since this sender last acted on it. */
  private async readAck(): Promise<{ body: AckBody; fresh: boolean } | undefined> {
    const read = await this.ctx.inbound.read(this.peer, ACK_NAME, { maxBytes: MAX_CONTROL_FILE });
    // An ack we cannot read is no ack: the receiver publishes it again, replacing this one.
    if (read === undefined || isRefused(read)) return undefined;
    const fresh = read.version !== this.lastAckVersion;
    this.lastAckVersion = read.version;
    // A damaged ack is replaced by the receiver's next one: only a new version is reported.
    if (!fresh && this.lastAckBody === undefined) return undefined;
    if (!fresh) return { body: this.lastAckBody!, fresh };
    const opened = openEnvelope(this.ctx, this.peer, ACK_NAME, read, { kind: ACK });
    this.lastAckBody = opened.envelope?.body;
    return opened.envelope && { body: opened.envelope.body, fresh };
  }

  /**
   * Acts on an ack; the caller holds the stream lock. Deletes what is acknowledged and publishes
   * again what the peer asked for. With `repair`, also what a crash kept from reaching the relay
   * (this reads the whole log, so it is done once per process and at every send); with `settle`,
   * clears the log once everything in it is acknowledged. Neither may run while a send is half
   * way, between appending a batch to the log and publishing it.
   */
  private async applyAck(ack: AckBody, mode: { repair: boolean; settle: boolean }): Promise<void> {
    const state = (await readJsonFile<SenderState>(this.statePath)) ?? { nextSeq: 1, ackedThrough: 0 };
    const names = await this.ctx.relay.list(this.ctx.self, this.peer);
    const present = new Set(names.map(parseMessageName).filter((seq) => seq !== undefined));
    await this.ctx.relay.remove(this.peer, [...present].filter((seq) => seq <= ack.through).map(messageName));
    if (ack.through > state.ackedThrough) {
      state.ackedThrough = ack.through;
      await writeJsonFile(this.statePath, state);
    }
    const wanted = new Set(ack.resend.filter((seq) => seq > ack.through));
    if (!mode.repair && wanted.size === 0) {
      // The cheap path of a stream in full flow: no log read.
      if (mode.settle && ack.through >= state.nextSeq - 1 && (await this.log.size()) > 0)
        await this.settle(ack.through);
      return;
    }
    const last = (await this.log.last())?.seq ?? 0;
    if (last <= ack.through) {
      if (mode.settle && (await this.log.size()) > 0) await this.log.clear();
      return;
    }
    // The log is gone through in batches: it may hold every message of a long absence.
    let count = 0;
    const first: number[] = [];
    for await (const records of this.log.batches()) {
      const again = records.filter(
        (record) => record.seq > ack.through && (wanted.has(record.seq) || (mode.repair && !present.has(record.seq))),
      );
      if (again.length === 0) continue;
      count += again.length;
      if (first.length < 20) first.push(...again.slice(0, 20 - first.length).map((record) => record.seq));
      // A fresh token (new IV) so that sync tools see new content even at the same size.
      await this.ctx.relay.publish(
        this.peer,
        again.map((record) => ({ name: messageName(record.seq), data: sealEnvelope(this.ctx, record) })),
      );
    }
    if (count > 0) this.ctx.logger.log('info', 'republish', { peer: this.peer, count, seqs: first });
  }

  /** Clears the log when its last record is acknowledged (a crash may have left later ones). */
  private async settle(through: number): Promise<void> {
    if (((await this.log.last())?.seq ?? 0) <= through) await this.log.clear();
  }

  /** The highest sequence number sent so far (0 when none). */
  async lastSent(): Promise<number> {
    return (await this.currentState()).nextSeq - 1;
  }

  /** True when our own file `name` opens with the pair key and says it is message `seq` to the peer. */
  private async isOurs(name: string, seq: number): Promise<boolean> {
    const read = await this.ctx.relay.read(this.ctx.self, this.peer, name, { maxBytes: MAX_CONTROL_FILE });
    if (!read) return false;
    try {
      const envelope = decodeEnvelope(this.ctx.sealer.open(this.peer, read.data), {
        kind: MSG,
        from: this.ctx.self,
        to: this.peer,
        seq,
      });
      return envelope.seq === seq;
    } catch (error) {
      if (isDmpError(error, 'AUTH') || isDmpError(error, 'PROTOCOL')) return false;
      throw error;
    }
  }

  /** Derives the next number from every fact available, so a lost state file cannot reuse one. */
  private async currentState(): Promise<SenderState> {
    const state = (await readJsonFile<SenderState>(this.statePath)) ?? { nextSeq: 1, ackedThrough: 0 };
    const lastLogged = (await this.log.last())?.seq ?? 0;
    // Our folder may hold files we did not write (a member's forgery, synced in from its copy):
    // a number counts only when its file opens as ours; one that does not is removed.
    let lastPublished = 0;
    const forged: string[] = [];
    for (const name of await this.ctx.relay.list(this.ctx.self, this.peer)) {
      const seq = parseMessageName(name) ?? 0;
      if (seq <= Math.max(lastPublished, lastLogged)) continue;
      if (await this.isOurs(name, seq)) lastPublished = seq;
      else forged.push(name);
    }
    if (forged.length > 0) {
      this.ctx.logger.log('warn', 'foreign-files-removed', { peer: this.peer, files: forged });
      await this.ctx.relay.remove(this.peer, forged);
    }
    const acked = await this.peerAcked();
    state.ackedThrough = Math.max(state.ackedThrough, acked);
    state.nextSeq = Math.max(state.nextSeq, lastLogged + 1, lastPublished + 1, acked + 1);
    return state;
  }
}
