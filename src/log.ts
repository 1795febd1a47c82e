/**
 * Structured logging is injected; the library never prints. The CLI and daemon decide where log
 * lines go (stderr, a JSON log file, nowhere).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { log: () => {} };
