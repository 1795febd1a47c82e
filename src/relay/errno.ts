import { type BadEntryReason, DmpError, errnoCode } from '../errors.js';

/** Translates a file-system error met in the relay into the typed error the user sees. */
export function relayError(error: unknown, what: string, path: string): DmpError {
  if (error instanceof DmpError) return error;
  const code = errnoCode(error);
  const data = { path, errno: code };
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new DmpError('DISK_FULL', `no space left to ${what} ${path}`, { data, cause: error });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new DmpError('RELAY_READ_ONLY', `relay is not writable: cannot ${what} ${path}`, { data, cause: error });
    case 'ENOENT':
    case 'ENOTDIR':
      return new DmpError('RELAY_MISSING', `relay folder is missing: cannot ${what} ${path}`, { data, cause: error });
    default:
      return new DmpError('IO', `cannot ${what} ${path}: ${(error as Error).message}`, { data, cause: error });
  }
}

const BAD_ENTRY_MESSAGES: Record<BadEntryReason, string> = {
  link: 'is a symbolic link',
  'not-a-file': 'is not a regular file',
  'not-a-folder': 'is not a folder',
  unreadable: 'cannot be read',
  'too-large': 'is too large',
};

/** A relay entry refused for `reason`: one line naming the path, with the reason as data. */
export function badEntry(
  path: string,
  reason: BadEntryReason,
  options: { what?: string; data?: Record<string, unknown>; cause?: unknown } = {},
): DmpError {
  const what = options.what ?? 'read';
  const detail =
    reason === 'too-large' && options.data?.size !== undefined
      ? `${BAD_ENTRY_MESSAGES[reason]} (${options.data.size} bytes, at most ${options.data.maxBytes} allowed)`
      : BAD_ENTRY_MESSAGES[reason];
  return new DmpError('BAD_ENTRY', `refusing to ${what} ${path}: it ${detail}`, {
    data: { path, reason, ...options.data },
    cause: options.cause,
  });
}

/**
 * Like relayError, for an error met on one entry while reading: what concerns only that entry
 * (a link, a FIFO or socket, a folder with a file's name, no permission) becomes BAD_ENTRY, so
 * the caller skips the entry instead of taking the whole relay for unwritable or gone.
 */
export function entryError(error: unknown, what: string, path: string): DmpError {
  if (error instanceof DmpError) return error;
  switch (errnoCode(error)) {
    // O_NOFOLLOW on a link fails with ELOOP (EMLINK on FreeBSD).
    case 'ELOOP':
    case 'EMLINK':
      return badEntry(path, 'link', { what, cause: error });
    // EISDIR: a folder, where opening one for reading is refused (Windows); ENXIO: a socket.
    case 'EISDIR':
    case 'ENXIO':
    case 'EOPNOTSUPP':
      return badEntry(path, 'not-a-file', { what, cause: error });
    case 'EACCES':
    case 'EPERM':
      return badEntry(path, 'unreadable', { what, cause: error });
    default:
      return relayError(error, what, path);
  }
}
