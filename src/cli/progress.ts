/**
 * Renders transfer events: a bar per file on a terminal (cli-progress), a plain line every few
 * seconds when stderr is not a terminal, or every event as JSON on stdout with --json.
 */
import cliProgress from 'cli-progress';
import { formatSize, type TransferEvent } from '../index.js';
import { printJson, sanitize } from './common.js';

interface FileView {
  total: number;
  bytes: number;
  /** "to bob" or "from alice". */
  who: string;
  started: number;
  lastLine: number;
  bar?: cliProgress.SingleBar;
  status: string;
}

const PLAIN_EVERY_MS = 3000;

export class ProgressView {
  private readonly files = new Map<string, FileView>();
  private readonly multibar: cliProgress.MultiBar | undefined;

  constructor(
    private readonly program: string,
    private readonly direction: 'send' | 'receive',
    private readonly json: boolean,
    tty = process.stderr.isTTY === true,
  ) {
    if (!json && tty) {
      this.multibar = new cliProgress.MultiBar(
        {
          format: ' {file} {who} |{bar}| {percentage}% {done}/{size} {rate} ETA {eta_formatted} {status}',
          barCompleteChar: '█',
          barIncompleteChar: '░',
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          etaBuffer: 20,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  private say(line: string): void {
    if (this.multibar) this.multibar.log(`${line}\n`);
    else process.stderr.write(`${line}\n`);
  }

  handle(event: TransferEvent): void {
    if (this.json) {
      printJson(event);
      return;
    }
    const file = sanitize(event.file);
    const key = 'tid' in event ? event.tid : event.file;
    const now = Date.now();
    switch (event.event) {
      case 'offer': {
        const who = this.direction === 'send' ? `to ${event.peer}` : `from ${event.peer}`;
        const view: FileView = { total: event.total, bytes: 0, who, started: now, lastLine: now, status: '' };
        this.files.set(key, view);
        if (this.multibar) {
          view.bar = this.multibar.create(Math.max(1, event.total), 0, this.payload(file, view));
        } else {
          const verb = this.direction === 'send' ? 'sending' : 'receiving';
          this.say(
            `${this.program}: ${event.resumed ? `resuming (${verb})` : verb} ${file} ${who} (${formatSize(event.total)})`,
          );
        }
        break;
      }
      case 'progress': {
        const view = this.files.get(key);
        if (!view) break;
        view.bytes = event.bytes;
        if (view.bar) {
          // The bar shows a waiting state only while it lasts.
          view.status = '';
          view.bar.update(event.bytes, this.payload(file, view));
        } else if (now - view.lastLine >= PLAIN_EVERY_MS) {
          view.lastLine = now;
          const percent = view.total === 0 ? 100 : Math.floor((event.bytes / view.total) * 100);
          this.say(
            `${this.program}: ${file} ${formatSize(event.bytes)}/${formatSize(view.total)} ${percent}% ${this.rate(view)}`,
          );
        }
        break;
      }
      case 'waiting': {
        const view = this.files.get(key);
        if (view?.bar) {
          view.status = event.reason;
          view.bar.update(view.bytes, this.payload(file, view));
        } else if (view === undefined || view.status !== event.reason || now - view.lastLine >= PLAIN_EVERY_MS) {
          // Plain output says a waiting reason once, and again only every few seconds.
          if (view) {
            view.status = event.reason;
            view.lastLine = now;
          }
          this.say(`${this.program}: ${file}: ${sanitize(event.reason)}`);
        }
        break;
      }
      case 'done': {
        const view = this.files.get(key);
        if (view?.bar) {
          view.status = 'verified';
          view.bar.update(Math.max(1, event.bytes), this.payload(file, view));
        }
        const where = event.path ? ` -> ${sanitize(event.path)}` : '';
        this.say(
          `${this.program}: ${file}${where}: ${formatSize(event.bytes)} verified (sha256 ${event.sha256.slice(0, 16)}…)`,
        );
        break;
      }
      case 'failed':
        this.say(`${this.program}: ${file}: ${sanitize(event.reason)}`);
        break;
      case 'skipped':
        this.say(`${this.program}: skipped ${file}: ${event.reason}`);
        break;
    }
  }

  private rate(view: FileView): string {
    const seconds = (Date.now() - view.started) / 1000;
    return seconds > 0 ? `${formatSize(Math.round(view.bytes / seconds))}/s` : '';
  }

  private payload(file: string, view: FileView): Record<string, string> {
    return {
      file: file.length > 30 ? `…${file.slice(-29)}` : file.padEnd(30),
      who: view.who.padEnd(12),
      done: formatSize(view.bytes),
      size: formatSize(view.total),
      rate: this.rate(view),
      status: view.status,
    };
  }

  stop(): void {
    this.multibar?.stop();
  }
}
