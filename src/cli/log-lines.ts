/**
 * The daemon's log as a person reads it on a terminal: the local time, the level, and what
 * happened in words ("12:03:04 info  received photo.jpg from alice (2.9 MiB, verified)"). The
 * log file and --json keep the JSON lines; this is only how they are shown.
 */
import { formatSize, type LogLevel } from '../index.js';
import { sanitize } from './common.js';
import type { Style } from './terminal.js';

type Fields = Record<string, unknown>;

const text = (value: unknown): string => sanitize(typeof value === 'string' ? value : JSON.stringify(value));
const size = (value: unknown): string => (typeof value === 'number' ? formatSize(value) : '?');
const seconds = (value: unknown): string =>
  typeof value === 'number' ? `${Math.round(value / 100) / 10} s` : 'a while';

/** Words for the events the daemon logs; any other event is shown with its fields. */
const DESCRIBE: Record<string, (fields: Fields) => string> = {
  'daemon-started': (f) => `daemon started for ${text(f.peer)} (relay ${text(f.relay)}, pid ${text(f.pid)})`,
  'daemon-stopped': (f) => `daemon stopped for ${text(f.peer)}`,
  'relay-unavailable': (f) => `relay unavailable: ${text(f.error)}; trying again in ${seconds(f.retryInMs)}`,
  'relay-back': (f) => `relay ${text(f.relay)} is back`,
  'role-busy': (f) => `not receiving ${text(f.what)} yet: ${text(f.reason)}`,
  receiving: (f) => `now receiving ${text(f.what)}`,
  'messages-received': (f) =>
    f.count === 1
      ? `1 message from ${text(f.peer)} (#${text(f.last)}); dmp listen shows it`
      : `${text(f.count)} messages from ${text(f.peer)} (up to #${text(f.last)}); dmp listen shows them`,
  'send-offer': (f) => `${f.resumed ? 'resuming' : 'sending'} ${text(f.file)} to ${text(f.peer)} (${size(f.total)})`,
  'send-progress': (f) => `${text(f.file)} to ${text(f.peer)}: ${size(f.bytes)} of ${size(f.total)}`,
  'send-waiting': (f) => `${text(f.file)} to ${text(f.peer)}: ${text(f.reason)}`,
  'send-done': (f) => `sent ${text(f.file)} to ${text(f.peer)} (${size(f.bytes)}, verified)`,
  'send-failed': (f) =>
    `could not send ${text(f.file)} to ${text(f.peer)}: ${text(f.reason)}${f.movedTo ? `; moved to ${text(f.movedTo)}` : ''}`,
  'send-retry': (f) => `${text(f.file)} to ${text(f.peer)}: ${text(f.error)}; trying again in ${seconds(f.retryInMs)}`,
  'spool-sent': (f) => `${text(f.file)} delivered to ${text(f.peer)}; moved to ${text(f.movedTo)}`,
  'spool-error': (f) => `cannot read the outbox: ${text(f.error)}`,
  'receive-offer': (f) =>
    `${f.resumed ? 'resuming' : 'receiving'} ${text(f.file)} from ${text(f.peer)} (${size(f.total)})`,
  'receive-progress': (f) => `${text(f.file)} from ${text(f.peer)}: ${size(f.bytes)} of ${size(f.total)}`,
  'receive-waiting': (f) => `${text(f.file)} from ${text(f.peer)}: ${text(f.reason)}`,
  'receive-done': (f) =>
    `received ${text(f.file)} from ${text(f.peer)} (${size(f.bytes)}, verified) in ${text(f.path)}`,
  'receive-failed': (f) => `could not receive ${text(f.file)} from ${text(f.peer)}: ${text(f.reason)}`,
  // The reason is a whole sentence: another key, a changed identity, a stranger.
  'peer-unauthenticated': (f) => (f.reason ? text(f.reason) : `cannot authenticate files from ${text(f.peer)}`),
  'identity-refused': (f) => `refused the identity of ${text(f.peer)} (${text(f.standing)}): ${text(f.reason)}`,
  'identity-rotated': (f) => `${text(f.peer)} has new identity keys, signed by its old ones`,
  'presence-error': (f) => `cannot publish presence: ${text(f.error)}`,
  'presence-stopped': (f) => `presence stopped: ${text(f.error)}`,
  'foreign-files-removed': (f) =>
    `removed files this peer did not write from its folder for ${text(f.peer)}: ${text(f.files)}`,
  'peer-authenticated': (f) => `files from ${text(f.peer)} authenticate again`,
  'peer-quarantined': (f) =>
    `${text(f.peer)} is quarantined for ${text(f.minutes)} min, its folder not read: ${text(f.reason)}`,
  'peer-quarantine-ended': (f) => `the quarantine of ${text(f.peer)} ended: its folder is read again`,
  'peer-quarantine-lifted': (f) => `the quarantine of ${text(f.peer)} was lifted`,
  'quarantine-not-saved': (f) => `cannot save quarantines: ${text(f.error)}`,
  'file-rejected': (f) => `rejected ${text(f.file)} from ${text(f.peer)}: ${text(f.reason)}`,
  error: (f) => `${f.peer ? `${text(f.peer)}: ` : ''}${text(f.error)}`,
  'service-stopped': (f) => `the service loop stopped: ${text(f.error)}`,
  'lock-recovered': (f) => `took over a lock left by process ${text(f.deadPid)}`,
  'lock-compromised': (f) => `lost a lock (${text(f.path)}): ${text(f.error)}`,
};

function fallback(event: string, fields: Fields): string {
  const details = Object.entries(fields)
    .map(([name, value]) => `${name}=${text(value)}`)
    .join(' ');
  return `${event}${details ? ` ${details}` : ''}`;
}

/** One readable line (no line break) for a log entry. */
export function describeLogLine(
  entry: { time: string; level: LogLevel; event: string; fields: Fields },
  style: Style,
): string {
  const date = new Date(entry.time);
  const time = Number.isNaN(date.getTime())
    ? entry.time
    : [date.getHours(), date.getMinutes(), date.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  const describe = DESCRIBE[entry.event];
  const what = describe ? describe(entry.fields) : fallback(entry.event, entry.fields);
  const label = entry.level.padEnd(5);
  const level =
    entry.level === 'error'
      ? style.red(label)
      : entry.level === 'warn'
        ? style.yellow(label)
        : entry.level === 'debug'
          ? style.dim(label)
          : label;
  return `${style.dim(time)} ${level} ${what}`;
}
