/**
 * The receivers of one process. The node has one consumer per kind of file, and offers and
 * chunks may be meant for several receivers at once: the role of receiving files (`dftp
 * receive`, the daemon), a `dftp get` waiting for the files it asked for, a served folder taking
 * the puts it accepted. Each receiver takes only the offers it accepts (ReceiveOptions.accept),
 * so this set hands every one of them the same names and lets each pick its own.
 */
import type { IncomingHandler } from '../node/node.js';
import type { PeerId } from '../util/peer-id.js';
import { OFFER } from './control.js';
import { CHUNK } from './names.js';

export interface HandlerRegistry {
  register(handler: IncomingHandler): () => void;
}

export class ReceiverSet {
  private readonly receivers = new Set<IncomingHandler>();
  private unregister: (() => void) | undefined;
  private readonly handler: IncomingHandler = {
    kinds: [OFFER, CHUNK],
    handle: async (peer: PeerId, names: readonly string[], context: { blocked: boolean }) => {
      let again = false;
      for (const receiver of [...this.receivers]) {
        if ((await receiver.handle(peer, names, context)) === true) again = true;
      }
      return again;
    },
  };

  constructor(private readonly node: HandlerRegistry) {}

  /** Hands `receiver` offers and chunks from the next pass on; returns the function that stops it. */
  add(receiver: IncomingHandler): () => void {
    this.receivers.add(receiver);
    this.unregister ??= this.node.register(this.handler);
    return () => {
      this.receivers.delete(receiver);
      if (this.receivers.size === 0) {
        this.unregister?.();
        this.unregister = undefined;
      }
    };
  }
}
