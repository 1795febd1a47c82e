import { DmpError, errnoCode } from '../errors.js';

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
