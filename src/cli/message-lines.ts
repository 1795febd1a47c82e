/**
 * Messages as lines for a person, one way for `dmp listen`, `dmp history` and `dmp chat`: the
 * sender on the first line and every further line indented by two spaces, so that no line of a
 * message can pass for one from another sender. One final line break is not shown as an empty
 * line; control characters other than line breaks are escaped.
 */
import type { HistoryEntry, InboxMessage } from '../index.js';
import { sanitize } from './common.js';

export function formatMessage(from: string, text: string): string {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  const [first, ...rest] = body.split(/\r?\n/).map(sanitize);
  return `${[`${from}: ${first ?? ''}`, ...rest.map((line) => `  ${line}`)].join('\n')}\n`;
}

/** Who said it, as listen and chat show an incoming message: "alice" or "alice (to all)". */
export function speaker(message: Pick<InboxMessage, 'from' | 'broadcast'>): string {
  return message.broadcast ? `${message.from} (to all)` : message.from;
}

/** An incoming message as one JSON object (listen --json). */
export function messageJson(message: InboxMessage): Record<string, unknown> {
  return {
    from: message.from,
    seq: message.seq,
    text: message.text,
    sentAt: new Date(message.sentAt).toISOString(),
    receivedAt: new Date(message.receivedAt).toISOString(),
    broadcast: message.broadcast === true,
  };
}

/** "14:03" today, "2026-11-21 14:03" on another day, in local time. */
export function clockTime(at: number, now: number): string {
  const date = new Date(at);
  const pad = (n: number) => String(n).padStart(2, '0');
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  if (date.toDateString() === new Date(now).toDateString()) return time;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`;
}

/** A history entry: "[14:03] alice: hi", "[14:04] bob → alice: hello", "[14:05] bob (to all): hi all". */
export function formatHistoryEntry(entry: HistoryEntry, now: number): string {
  const who = entry.broadcast
    ? `${entry.from} (to all)`
    : entry.direction === 'out'
      ? `${entry.from} → ${entry.to}`
      : entry.from;
  return formatMessage(`[${clockTime(entry.at, now)}] ${who}`, entry.text);
}

export function historyJson(entry: HistoryEntry): Record<string, unknown> {
  return {
    from: entry.from,
    to: entry.to,
    seq: entry.seq,
    text: entry.text,
    at: new Date(entry.at).toISOString(),
    direction: entry.direction,
    broadcast: entry.broadcast,
  };
}
