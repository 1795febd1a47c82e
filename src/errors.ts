/**
 * Every failure the library reports is a DmpError with a stable `code`, a one-line `message`
 * fit for a user, optional structured `data`, and the underlying `cause`. The CLI maps codes to
 * exit statuses; nothing here prints.
 */
export type ErrorCode =
  /** A command-line or API argument is malformed (CLI exit 2). */
  | 'USAGE'
  /** No key, relay or id could be found in flags, environment or config. */
  | 'CONFIG'
  /** The relay folder is missing, unreadable or not a directory. */
  | 'RELAY_MISSING'
  /** The relay (or this peer's folder in it) cannot be written. */
  | 'RELAY_READ_ONLY'
  /** The disk holding the relay or the output is full. */
  | 'DISK_FULL'
  /**
   * One entry of the relay is not what a relay file or folder may be: a link, a FIFO, a folder
   * where a file should be, an unreadable file, or a file larger than the reader allows. The
   * damage is local to that entry (and the peer folder it is in), never to the relay as a whole.
   * `data = { path, reason: BadEntryReason }`, plus `size` and `maxBytes` for 'too-large'.
   */
  | 'BAD_ENTRY'
  /** The peer has no folder in the relay. */
  | 'UNKNOWN_PEER'
  /** No transfer this peer knows of matches what was asked for (dftp cancel). */
  | 'UNKNOWN_TRANSFER'
  /** A token failed authentication: tampered, truncated, or made with another key. */
  | 'AUTH'
  /** A token or envelope is well authenticated but not what the protocol allows here. */
  | 'PROTOCOL'
  /** A key is not 32 bytes of url-safe base64. */
  | 'BAD_KEY'
  /** Another local process holds a lock this operation needs. */
  | 'LOCKED'
  /** The operation did not finish in the time it was given. */
  | 'TIMEOUT'
  /** The operation was cancelled through its AbortSignal. */
  | 'ABORTED'
  /** A file transfer failed for good (checksum mismatch, source changed, refused). */
  | 'TRANSFER_FAILED'
  /** A local file could not be read or written. */
  | 'IO'
  /** A served folder has no such file or folder (dftp get, rm, ls). */
  | 'NOT_FOUND'
  /**
   * A served folder refused a request: this peer is not allowed, the path is never served (a
   * link, a special file, a hidden name), a passcode is needed or was wrong, the peer is locked
   * out of that file for a while, or the name exists. `data = { reason, retryAfterMs? }`.
   */
  | 'DENIED';

/** Why a relay entry was refused (the `reason` of a BAD_ENTRY error). */
export type BadEntryReason =
  /** A symbolic link where a file or folder was expected: following it could leave the relay. */
  | 'link'
  /** Not a regular file: a FIFO, a socket, a device or a folder carrying a file's name. */
  | 'not-a-file'
  /** Not a folder where this peer's own folder or a peer's sub-folder should be. */
  | 'not-a-folder'
  /** The file system refused to open or list it (permissions). */
  | 'unreadable'
  /** Larger than the reader allows: refused unread. */
  | 'too-large';

export class DmpError extends Error {
  readonly code: ErrorCode;
  readonly data: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { data?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DmpError';
    this.code = code;
    this.data = options.data ?? {};
  }
}

export function isDmpError(error: unknown, code?: ErrorCode): error is DmpError {
  return error instanceof DmpError && (code === undefined || error.code === code);
}

/** The errno code of a Node.js system error, or undefined. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** An AbortSignal fired: throw the typed error the rest of the code expects. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new DmpError('ABORTED', 'cancelled', { cause: signal.reason });
}
