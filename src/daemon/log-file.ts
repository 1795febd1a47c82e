/**
 * The daemon's log: one JSON object per line, to a file in DMP_HOME that is rotated (one
 * previous generation kept) so it never grows without bound, and echoed to stderr (the CLI
 * shows it in words on a terminal, see src/cli/log-lines.ts).
 */
import { appendFileSync, renameSync, statSync } from 'node:fs';
import type { Logger, LogLevel } from '../log.js';

export interface JsonLogOptions {
  path: string;
  /** Rotate when the file passes this many bytes (default 1 MiB). */
  maxBytes?: number;
  verbose?: boolean;
  /** Where else lines go (default: stderr), with the entry they were made from. */
  echo?: (line: string, entry: LogEntry) => void;
}

/** One log line before it is written as JSON. */
export interface LogEntry {
  /** ISO time. */
  time: string;
  level: LogLevel;
  event: string;
  fields: Record<string, unknown>;
}

export function jsonLogger(options: JsonLogOptions): Logger {
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  const echo = options.echo ?? ((line: string) => process.stderr.write(line));
  let size = (() => {
    try {
      return statSync(options.path).size;
    } catch {
      return 0;
    }
  })();
  return {
    log(level: LogLevel, event: string, fields: Record<string, unknown> = {}) {
      if (level === 'debug' && !options.verbose) return;
      const time = new Date().toISOString();
      const line = `${JSON.stringify({ time, level, event, ...fields })}\n`;
      echo(line, { time, level, event, fields });
      try {
        const bytes = Buffer.byteLength(line);
        if (size + bytes > maxBytes) {
          renameSync(options.path, `${options.path}.1`);
          size = 0;
        }
        // Synchronous on purpose: log lines must not reorder or be lost when the process dies.
        appendFileSync(options.path, line);
        size += bytes;
      } catch {
        // A log that cannot be written must not stop the daemon; stderr still has the line.
      }
    },
  };
}
