/** Progress events of file transfers, typed by name. The library emits; the CLI renders. */
export type TransferEvent =
  | {
      event: 'offer';
      peer: string;
      file: string;
      tid: string;
      total: number;
      resumed: boolean;
      /** Bytes the receiver already holds, when known (a resumed send knows it). */
      bytes?: number;
      /** Bytes per chunk of this transfer. */
      blockSize?: number;
      /**
       * A resumed send keeps the block size it started with; this is the one asked for this
       * time, when it differs.
       */
      askedBlockSize?: number;
    }
  | { event: 'progress'; peer: string; file: string; tid: string; bytes: number; total: number }
  | { event: 'waiting'; peer: string; file: string; tid: string; reason: string }
  | {
      event: 'done';
      peer: string;
      file: string;
      tid: string;
      /** Receiver: where the file landed. */
      path?: string;
      bytes: number;
      sha256: string;
      /** Sender: bytes it wrote into the relay for this file in this run. */
      relayBytes?: number;
    }
  | { event: 'failed'; peer: string; file: string; tid: string; reason: string }
  | { event: 'skipped'; peer: string; file: string; reason: string };

export type TransferEventListener = (event: TransferEvent) => void;
