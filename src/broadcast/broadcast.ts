/**
 * Broadcast: one stream per author, readable by every member of the relay.
 *
 * The author publishes `<relay>/<author>/bcast-<seq, 12 digits>.dmp`: sealed under the relay key
 * (every member opens it) and signed by the author's identity (no member can forge it). Each
 * reader delivers them once, in order, across restarts, exactly as a direct stream, and
 * acknowledges in its own folder for the author: `<relay>/<reader>/<author>/bcast-ack.dmp`,
 * under their pair key, `{through, resend}`. The author deletes a broadcast once every peer it
 * accepts has acknowledged it, or after the retention period (default 7 days), so the relay
 * stays bounded; a peer that joins later gets what is still retained.
 */
import { decryptText, encryptText, type FernetKey } from '../crypto/fernet.js';
import { DmpError, isDmpError } from '../errors.js';
import type { IdentityBook } from '../identity/book.js';
import { type KeyPair, publicKeyOf } from '../identity/keys.js';
import { signDocument, verifyDocument } from '../identity/signed.js';
import { readJsonFile, writeJsonFile } from '../local/files.js';
import type { HomeLayout } from '../local/home.js';
import { Journal } from '../local/journal.js';
import { withLock } from '../local/lock.js';
import { defineKind, MAX_CONTROL_FILE, PROTOCOL_VERSION } from '../node/envelope.js';
import type { IncomingHandler, NodeComponents } from '../node/node.js';
import { openEnvelope, sealEnvelope } from '../node/open.js';
import type { RelayRead } from '../relay/storage.js';
import { type AckBody, parseAckBody } from '../stream/kinds.js';
import type { InboxMessage } from '../stream/receiver.js';
import type { PeerId } from '../util/peer-id.js';

const LABEL = 'dmp broadcast v2';
const FILE = /^bcast-(\d{12})\.dmp$/;
export const DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000;
/** Broadcasts delivered per author per pass: memory stays bounded. */
const BATCH = 1000;

export const bcastName = (seq: number) => `bcast-${String(seq).padStart(12, '0')}.dmp`;
export const parseBcastName = (name: string) => {
  const match = FILE.exec(name);
  return match ? Number(match[1]) : undefined;
};

/** A reader's acknowledgement of an author's broadcasts: the same body as a stream's ack. */
export type BroadcastAck = AckBody;

export const BCAST_ACK = defineKind('bcast-ack', /^bcast-ack\.dmp$/, (body) => parseAckBody(body, 'broadcast ack'));

interface BroadcastRecord {
  v: 2;
  from: PeerId;
  seq: number;
  sentAt: number;
  body: string;
}

export type BroadcastComponents = Pick<
  NodeComponents,
  'self' | 'relay' | 'sealer' | 'guard' | 'home' | 'clock' | 'logger'
>;

export interface BroadcastInit {
  relayKey: FernetKey;
  book: IdentityBook;
  signKey: () => KeyPair;
  /** How long a broadcast stays for peers that have not acknowledged it, ms. @default 7 days */
  retentionMs?: number;
}

/** This peer's own broadcasts as history shows them (broadcast/sent.jsonl). */
export const sentBroadcastsOf = (home: HomeLayout) =>
  new Journal<{ seq: number; text: string; sentAt: number }>(home.broadcast('sent.jsonl'));

export class BroadcastService {
  private readonly out: Journal<BroadcastRecord>;
  private readonly delivered = new Map<PeerId, number>();
  private readonly bad = new Map<string, string>();
  private readonly lastAck = new Map<PeerId, string>();

  constructor(
    private readonly components: BroadcastComponents,
    private readonly init: BroadcastInit,
  ) {
    this.out = new Journal(components.home.broadcast('out.jsonl'));
  }

  private seal(record: BroadcastRecord): string {
    const signed = signDocument(LABEL, { ...record }, this.init.signKey());
    return encryptText(this.init.relayKey, Buffer.from(JSON.stringify(signed)));
  }

  /** Publishes each text as one broadcast; returns their sequence numbers. */
  async send(texts: readonly string[]): Promise<number[]> {
    const { home, relay, clock, self } = this.components;
    return withLock(home.lock('broadcast'), async () => {
      const state = (await readJsonFile<{ nextSeq: number }>(home.broadcast('out.json'))) ?? { nextSeq: 1 };
      const { records } = await this.out.read();
      state.nextSeq = Math.max(state.nextSeq, (records.at(-1)?.seq ?? 0) + 1);
      const batch: BroadcastRecord[] = texts.map((body, index) => ({
        v: 2,
        from: self,
        seq: state.nextSeq + index,
        sentAt: clock.now(),
        body,
      }));
      for (const record of batch) {
        if (Buffer.byteLength(record.body) > MAX_CONTROL_FILE / 2) {
          throw new DmpError('USAGE', `a broadcast is at most ${MAX_CONTROL_FILE / 2} bytes`);
        }
      }
      // The log first: it is what a damaged file is published again from.
      await this.out.append(batch);
      // History keeps what was said after retention removed it from the log above.
      await sentBroadcastsOf(home).append(batch.map(({ seq, body, sentAt }) => ({ seq, text: body, sentAt })));
      await relay.publishShared(batch.map((record) => ({ name: bcastName(record.seq), data: this.seal(record) })));
      state.nextSeq += batch.length;
      await writeJsonFile(home.broadcast('out.json'), state);
      // Retention is kept at every send too, not only when an ack arrives.
      await this.collect((await readJsonFile<Record<string, number>>(home.broadcast('acks.json'))) ?? {});
      return batch.map((record) => record.seq);
    });
  }

  /** The author's side: every reader's ack; what all have, or what is too old, is deleted. */
  readonly acks: IncomingHandler = {
    kinds: [BCAST_ACK],
    handle: async (peer, names) => {
      if (names.length === 0) return;
      const read = await this.components.relay.read(peer, this.components.self, 'bcast-ack.dmp', {
        maxBytes: MAX_CONTROL_FILE,
      });
      if (!read || this.lastAck.get(peer) === read.version) return;
      this.lastAck.set(peer, read.version);
      const ack = openEnvelope(this.components, peer, 'bcast-ack.dmp', read, { kind: BCAST_ACK }).envelope?.body;
      if (!ack) return;
      await withLock(this.components.home.lock('broadcast'), async () => {
        const acks = (await readJsonFile<Record<string, number>>(this.components.home.broadcast('acks.json'))) ?? {};
        acks[peer] = Math.max(acks[peer] ?? 0, ack.through);
        await writeJsonFile(this.components.home.broadcast('acks.json'), acks);
        await this.republish(ack);
        await this.collect(acks);
      });
    },
  };

  private async republish(ack: BroadcastAck): Promise<void> {
    const wanted = new Set(ack.resend.filter((seq) => seq > ack.through));
    if (wanted.size === 0) return;
    const { records } = await this.out.read();
    const again = records.filter((record) => wanted.has(record.seq));
    if (again.length > 0) {
      await this.components.relay.publishShared(
        again.map((record) => ({ name: bcastName(record.seq), data: this.seal(record) })),
      );
    }
  }

  /** Deletes broadcasts every accepted peer acknowledged, and those past the retention period. */
  private async collect(acks: Record<string, number>): Promise<void> {
    const { relay, self, clock } = this.components;
    const readers = (await relay.peers()).filter(
      (peer) => peer !== self && this.init.book.signKeyOf(peer) !== undefined,
    );
    const everyone = readers.length === 0 ? 0 : Math.min(...readers.map((peer) => acks[peer] ?? 0));
    const oldest = clock.now() - (this.init.retentionMs ?? DEFAULT_RETENTION_MS);
    const { records } = await this.out.read();
    const gone = records.filter((record) => record.seq <= everyone || record.sentAt < oldest);
    if (gone.length === 0) return;
    await relay.removeShared(gone.map((record) => bcastName(record.seq)));
    const kept = records.filter((record) => !gone.includes(record));
    await this.out.clear();
    await this.out.append(kept);
  }

  /** The broadcasts of `author` delivered here so far, kept like a direct inbox. */
  inbox(author: PeerId): Journal<InboxMessage> {
    return new Journal(this.components.home.stream(author, 'broadcast.jsonl'));
  }

  /**
   * The reader's side, for whoever holds the receive-messages role: delivers each author's
   * broadcasts once and in order, acknowledges, and tells `onDelivered`.
   */
  receiving(onDelivered: (author: PeerId, messages: InboxMessage[]) => void): IncomingHandler {
    return {
      kinds: [],
      handle: async (author, _names, { blocked }) => {
        const delivered = await this.poll(author, blocked);
        if (delivered.length > 0) onDelivered(author, delivered);
        return delivered.length >= BATCH;
      },
    };
  }

  private async poll(author: PeerId, drop: boolean): Promise<InboxMessage[]> {
    const { relay, clock, home, self } = this.components;
    const signer = this.init.book.signKeyOf(author);
    if (!signer) return [];
    const names = await relay.listShared(author);
    // Failures of broadcasts no longer there (collected by their author) no longer count.
    this.components.guard.listed(author, names, { shared: true });
    const present = new Set(names.map(parseBcastName).filter((seq) => seq !== undefined));
    if (!this.delivered.has(author)) {
      const stored = await readJsonFile<{ through: number }>(home.stream(author, 'broadcast.json'));
      this.delivered.set(author, stored?.through ?? 0);
    }
    let through = this.delivered.get(author) ?? 0;
    // A reader that joins late, or comes back after the author collected what everyone had,
    // starts at the oldest broadcast still there.
    if (!present.has(through + 1) && present.size > 0 && Math.min(...present) > through + 1) {
      through = Math.min(...present) - 1;
    }
    const out: InboxMessage[] = [];
    const resend: number[] = [];
    while (present.has(through + out.length + 1) && out.length < BATCH) {
      const seq = through + out.length + 1;
      const name = bcastName(seq);
      const read = await relay.readShared(author, name, { maxBytes: MAX_CONTROL_FILE }).catch((error: unknown) => {
        if (isDmpError(error, 'BAD_ENTRY')) return undefined;
        throw error;
      });
      if (!read) break;
      const record = this.open(author, seq, read, signer);
      if (!record) {
        if (this.bad.get(`${author}/${name}`) !== read.version) resend.push(seq);
        this.bad.set(`${author}/${name}`, read.version);
        break;
      }
      this.bad.delete(`${author}/${name}`);
      out.push({
        from: author,
        seq,
        text: record.body,
        sentAt: record.sentAt,
        receivedAt: clock.now(),
        broadcast: true,
      });
    }
    if (out.length > 0) {
      // A blocked author's broadcasts are acknowledged and dropped.
      if (!drop) await this.inbox(author).append(out);
      through += out.length;
    }
    if (through !== this.delivered.get(author) || resend.length > 0) {
      this.delivered.set(author, through);
      await writeJsonFile(home.stream(author, 'broadcast.json'), { through });
      const ack: BroadcastAck = { through, resend };
      await relay.publish(
        author,
        [
          {
            name: 'bcast-ack.dmp',
            data: sealEnvelope(this.components, {
              v: PROTOCOL_VERSION,
              type: BCAST_ACK.type,
              from: self,
              to: author,
              seq: through,
              sentAt: clock.now(),
              body: ack,
            }),
          },
        ],
        { durable: false },
      );
    }
    return drop ? [] : out;
  }

  /** Opens broadcast `seq` of `author`, telling the guard how it went (a forgery counts toward a quarantine). */
  private open(author: PeerId, seq: number, read: RelayRead, signer: string): BroadcastRecord | undefined {
    const name = bcastName(seq);
    try {
      const value = JSON.parse(decryptText(this.init.relayKey, read.data).toString('utf8')) as Record<string, unknown>;
      if (
        value.v !== 2 ||
        value.from !== author ||
        value.seq !== seq ||
        typeof value.body !== 'string' ||
        typeof value.sentAt !== 'number' ||
        !verifyDocument(LABEL, value, publicKeyOf('Ed25519', signer))
      ) {
        throw new DmpError(
          'PROTOCOL',
          `broadcast ${seq} of ${author} is not signed by ${author} or does not belong here`,
        );
      }
      this.components.guard.authenticated(author, name, { shared: true });
      return value as unknown as BroadcastRecord;
    } catch (error) {
      if (!(error instanceof SyntaxError) && !isDmpError(error)) throw error;
      const failure = isDmpError(error)
        ? error
        : new DmpError('PROTOCOL', `broadcast ${seq} of ${author} is not JSON`, { cause: error });
      this.components.guard.failed(author, name, read.version, failure, { shared: true });
      this.components.logger.log('warn', 'file-rejected', { peer: author, file: name, reason: failure.message });
      return undefined;
    }
  }
}
