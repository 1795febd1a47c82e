/**
 * `dmp status` for people: direction words ("to bob", "from alice"), times relative to now
 * ("12 s ago"), one line per transfer, and what each count means in words. JSON output keeps ISO
 * times and raw numbers; this is only how they are shown.
 */
import { formatSize, type StatusReport, type TransferReport } from '../index.js';
import { sanitize } from './common.js';
import { quarantineText } from './quarantine-view.js';
import { ago, displayWidth, fitStart, padEnd, type Style } from './terminal.js';

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function messagesText(peer: StatusReport['peers'][number]): string {
  if (peer.outgoing === undefined || peer.incoming === undefined) return 'messages unknown while the relay is away';
  const parts: string[] = [];
  if (peer.outgoing > 0) parts.push(`${plural(peer.outgoing, 'message')} sent, not yet read by ${peer.peer}`);
  if (peer.incoming > 0) {
    parts.push(
      `${plural(peer.incoming, 'new message')} from ${peer.peer} (dmp listen shows ${peer.incoming === 1 ? 'it' : 'them'})`,
    );
  }
  return parts.length === 0 ? 'no messages waiting' : parts.join('; ');
}

function transferState(transfer: TransferReport): string {
  const reason = transfer.reason && transfer.state !== 'complete' ? `: ${sanitize(transfer.reason)}` : '';
  return `${transfer.state}${reason}`;
}

/**
 * The report as lines. `speeds`: bytes per second of transfers by id, measured between two
 * reports (dmp status --watch); a single report shows none, since an average since the start
 * would count the bytes of earlier runs.
 */
export function statusLines(
  report: StatusReport,
  style: Style,
  options: { now: number; speeds?: ReadonlyMap<string, number> },
): string[] {
  const { now } = options;
  const lines: string[] = [];
  const daemon = report.daemon.running
    ? `daemon running${report.daemon.pid ? ` (pid ${report.daemon.pid})` : ''}`
    : 'daemon not running';
  const relay = report.relay.reachable
    ? `relay: ${formatSize(report.relayBytes)} held of a ${formatSize(report.quota)} quota`
    : style.red(
        `relay unreachable (${sanitize(report.relay.error ?? 'unknown error')}); showing what this machine knows`,
      );
  lines.push(`${style.bold(report.self)}: ${daemon}; ${relay}`);

  if (report.peers.length > 0) {
    lines.push(style.bold('peers'));
    const width = Math.max(...report.peers.map((peer) => displayWidth(peer.peer)));
    for (const peer of report.peers) {
      const heard = peer.lastHeard ? `last heard ${ago(Date.parse(peer.lastHeard), now)}` : 'not heard from yet';
      lines.push(`  ${padEnd(peer.peer, width)}  ${heard}; ${messagesText(peer)}`);
      if (peer.quarantined) {
        const { reason, until } = peer.quarantined;
        lines.push(`  ${padEnd('', width)}  ${style.red(quarantineText({ reason, until: Date.parse(until) }, now))}`);
      }
    }
  }

  if (report.transfers.length > 0) {
    lines.push(style.bold('transfers'));
    const rows = report.transfers.map((transfer) => {
      const percent = transfer.total === 0 ? 100 : Math.floor((transfer.bytes / transfer.total) * 100);
      const speed = options.speeds?.get(transfer.id);
      const cancel = transfer.active ? '' : ` (dftp cancel ${transfer.id.slice(0, 8)} drops it)`;
      return [
        `${transfer.direction === 'send' ? 'to' : 'from'} ${transfer.peer}`,
        sanitize(transfer.file),
        `${formatSize(transfer.bytes)}/${formatSize(transfer.total)} ${percent}%`,
        `${transferState(transfer)}${speed === undefined ? '' : `, ${formatSize(Math.max(0, Math.round(speed)))}/s`}`,
        `last activity ${ago(Date.parse(transfer.lastActivity), now)}, id ${transfer.id.slice(0, 8)}${cancel}`,
      ];
    });
    const widths = [0, 1, 2, 3].map((column) =>
      Math.min(column === 1 ? 32 : 40, Math.max(...rows.map((row) => displayWidth(row[column] ?? '')))),
    );
    for (const row of rows) {
      lines.push(
        `  ${row
          .map((cell, column) => (column < 4 ? padEnd(fitStart(cell, widths[column] ?? 0), widths[column] ?? 0) : cell))
          .join('  ')}`,
      );
    }
  }

  if (report.spool.length > 0) {
    lines.push(style.bold('outbox'));
    for (const queued of report.spool) {
      lines.push(
        `  queued for ${queued.peer}: ${sanitize(queued.file)} (${formatSize(queued.size)}), since ${ago(Date.parse(queued.since), now)}`,
      );
    }
  }
  return lines;
}

/** Bytes per second of each transfer between two reports. */
export function speedsBetween(before: StatusReport, after: StatusReport): Map<string, number> {
  const seconds = (Date.parse(after.at) - Date.parse(before.at)) / 1000;
  const speeds = new Map<string, number>();
  if (!(seconds > 0)) return speeds;
  const earlier = new Map(before.transfers.map((transfer) => [transfer.id, transfer.bytes]));
  for (const transfer of after.transfers) {
    const bytes = earlier.get(transfer.id);
    if (bytes !== undefined && transfer.active) speeds.set(transfer.id, (transfer.bytes - bytes) / seconds);
  }
  return speeds;
}
