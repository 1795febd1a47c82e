/**
 * The message service: one sender per peer (it acts on the peer's acks, which the node hands it
 * as `ack` files), and, while this process holds the receive-messages role, one receiver per
 * peer (it is handed the `msg` files).
 */
import type { IncomingHandler } from '../node/node.js';
import type { PeerId } from '../util/peer-id.js';
import { ACK, MSG } from './kinds.js';
import { type InboxMessage, MessageReceiver, type MessageReceiverComponents } from './receiver.js';
import { MessageSender, type MessageSenderComponents } from './sender.js';

export type MessageServiceComponents = MessageSenderComponents & MessageReceiverComponents;

export class MessageService {
  private readonly senders = new Map<PeerId, MessageSender>();
  private readonly receivers = new Map<PeerId, MessageReceiver>();

  constructor(private readonly components: MessageServiceComponents) {}

  sender(peer: PeerId): MessageSender {
    let sender = this.senders.get(peer);
    if (!sender) {
      sender = new MessageSender(this.components, peer);
      this.senders.set(peer, sender);
    }
    return sender;
  }

  receiver(peer: PeerId): MessageReceiver {
    let receiver = this.receivers.get(peer);
    if (!receiver) {
      receiver = new MessageReceiver(this.components, peer);
      this.receivers.set(peer, receiver);
    }
    return receiver;
  }

  /** Acts on every peer's ack of our streams: deletes what was delivered, republishes what is asked. */
  readonly acks: IncomingHandler = {
    kinds: [ACK],
    handle: async (peer, names) => {
      if (names.length > 0) await this.sender(peer).processAck();
    },
  };

  /**
   * Delivers incoming messages into the inbox and acknowledges them; `onDelivered` hears of
   * each batch. Only the holder of the receive-messages role may register it.
   */
  receiving(onDelivered: (peer: PeerId, messages: InboxMessage[]) => void): IncomingHandler {
    return {
      kinds: [MSG],
      handle: async (peer, names, { blocked }) => {
        const receiver = this.receiver(peer);
        const delivered = await receiver.poll(names, { drop: blocked });
        if (delivered.length > 0) onDelivered(peer, delivered);
        return receiver.hasMore;
      },
    };
  }
}
