/**
 * Renders transfer events. On a terminal: one line per file in flight and, for several files, a
 * total line, redrawn in place at the bottom of the terminal and always fitted to its width;
 * log lines (a file verified, a warning) are printed above them, never into them. When stderr
 * is not a terminal: a plain line every few seconds. With --json: every event on stdout.
 */
import { formatSize, type TransferEvent } from '../index.js';
import { printJson, sanitize } from './common.js';
import {
  displayWidth,
  fitEnd,
  fitStart,
  padEnd,
  padStart,
  type Style,
  setStderrSink,
  styleFor,
  writeStderr,
} from './terminal.js';

/** Speed is measured over this much recent time, so it follows changes and ignores old bytes. */
const RATE_WINDOW_MS = 10_000;
const PLAIN_EVERY_MS = 3000;
const REDRAW_EVERY_MS = 100;

interface Sample {
  at: number;
  bytes: number;
}

interface FileView {
  name: string;
  /** "to bob" or "from alice". */
  who: string;
  total: number;
  bytes: number;
  /** Bytes held when this run first heard of the file: what it did not move itself. */
  base: number | undefined;
  samples: Sample[];
  /** A waiting reason, shown instead of speed and ETA until progress resumes. */
  status: string;
  /** A resumed file whose starting point is not known yet: say it at the first progress. */
  resumeUntold: boolean;
  /** When the last plain progress line was printed. */
  lastLine: number;
  /** The waiting reason plain output last printed, and when. */
  said: string;
  saidAt: number;
}

export interface ProgressOptions {
  program: string;
  direction: 'send' | 'receive';
  json: boolean;
  /** Where lines go and what the terminal is (default: process.stderr). */
  stream?: NodeJS.WriteStream;
  /** Draw bars (default: whether the stream is a terminal). */
  tty?: boolean;
  now?: () => number;
}

export class ProgressView {
  private readonly files = new Map<string, FileView>();
  private readonly stream: NodeJS.WriteStream;
  private readonly area: LiveArea | undefined;
  private readonly now: () => number;
  private readonly style: Style;
  /** Files and bytes this run is expected to move (a sender knows them in advance). */
  private expected: { files: number; bytes: number } | undefined;
  /** Files seen, and finished, in this run. */
  private seen = 0;
  private finished = 0;
  /** Bytes of files finished in this run, and what they held before it. */
  private finishedBytes = 0;
  private finishedBase = 0;
  private readonly totalSamples: Sample[] = [];
  private stopped = false;

  constructor(private readonly options: ProgressOptions) {
    this.stream = options.stream ?? process.stderr;
    this.now = options.now ?? Date.now;
    this.style = styleFor(this.stream);
    const tty = options.tty ?? this.stream.isTTY === true;
    if (!options.json && tty) this.area = new LiveArea(this.stream, () => this.frame());
  }

  /** A sender's whole job in advance, for the total line: `files` files of `bytes` bytes. */
  expect(files: number, bytes: number): void {
    this.expected = { files, bytes };
  }

  /** A line above the bars (or plain on stderr). */
  say(line: string): void {
    if (this.area) this.area.log(`${line}\n`);
    else if (this.options.stream) this.options.stream.write(`${line}\n`);
    else writeStderr(`${line}\n`);
  }

  handle(event: TransferEvent): void {
    if (this.options.json) {
      printJson(event);
      return;
    }
    const { program } = this.options;
    const style = this.style;
    const file = sanitize(event.file);
    const key = 'tid' in event ? event.tid : event.file;
    const now = this.now();
    switch (event.event) {
      case 'offer': {
        const who = this.options.direction === 'send' ? `to ${event.peer}` : `from ${event.peer}`;
        const known = event.resumed ? event.bytes : 0;
        const view: FileView = {
          name: file,
          who,
          total: event.total,
          bytes: known ?? 0,
          base: known,
          samples: known === undefined ? [] : [{ at: now, bytes: known }],
          status: '',
          resumeUntold: event.resumed && known === undefined,
          lastLine: now,
          said: '',
          saidAt: 0,
        };
        if (!this.files.has(key)) this.seen += 1;
        this.files.set(key, view);
        if (event.resumed && event.askedBlockSize !== undefined && event.blockSize !== undefined) {
          this.say(
            `${program}: ${file}: resuming with the block size of the interrupted send, ${formatSize(event.blockSize)}; use ${program} cancel ${event.tid} to start over`,
          );
        }
        if (event.resumed && known !== undefined) this.say(`${program}: ${resumingLine(view, known)}`);
        else if (!this.area && !event.resumed) {
          const verb = this.options.direction === 'send' ? 'sending' : 'receiving';
          this.say(`${program}: ${verb} ${file} ${who} (${formatSize(event.total)})`);
        }
        this.area?.changed();
        break;
      }
      case 'progress': {
        const view = this.files.get(key);
        if (!view) break;
        if (view.resumeUntold) {
          view.resumeUntold = false;
          this.say(`${program}: ${resumingLine(view, event.bytes)}`);
        }
        view.base ??= event.bytes;
        view.bytes = event.bytes;
        view.status = '';
        addSample(view.samples, { at: now, bytes: event.bytes }, now);
        addSample(this.totalSamples, { at: now, bytes: this.movedBytes() }, now);
        if (this.area) this.area.changed();
        else if (now - view.lastLine >= PLAIN_EVERY_MS) {
          view.lastLine = now;
          const rate = rateOf(view.samples, now);
          this.say(
            `${program}: ${file} ${formatSize(event.bytes)}/${formatSize(view.total)} ${percentOf(view.bytes, view.total)}%${rate === undefined ? '' : ` ${formatSize(Math.round(rate))}/s`}`,
          );
        }
        break;
      }
      case 'waiting': {
        const view = this.files.get(key);
        if (this.area && view) {
          view.status = event.reason;
          this.area.changed();
        } else if (view === undefined || view.said !== event.reason || now - view.saidAt >= PLAIN_EVERY_MS) {
          // Plain output says a waiting reason once, and again only every few seconds, however
          // often the wait comes back between two chunks.
          if (view) {
            view.said = event.reason;
            view.saidAt = now;
          }
          this.say(`${program}: ${file}: ${sanitize(event.reason)}`);
        }
        break;
      }
      case 'done': {
        const view = this.files.get(key);
        this.forget(key, view, event.bytes);
        const where = event.path ? ` -> ${sanitize(event.path)}` : '';
        this.say(
          `${program}: ${file}${where}: ${formatSize(event.bytes)} ${style.green('verified')} (sha256 ${event.sha256.slice(0, 16)}…)`,
        );
        break;
      }
      case 'failed': {
        this.forget(key, this.files.get(key));
        this.say(`${program}: ${file}: ${style.red(sanitize(event.reason))}`);
        break;
      }
      case 'skipped':
        this.say(`${program}: ${style.yellow('skipped')} ${file}: ${event.reason}`);
        break;
    }
  }

  /** A file leaves the bars: done (with its size) or failed. */
  private forget(key: string, view: FileView | undefined, bytes?: number): void {
    if (!view) return;
    this.files.delete(key);
    this.finished += 1;
    this.finishedBytes += bytes ?? view.bytes;
    this.finishedBase += view.base ?? 0;
    this.area?.changed();
  }

  /** Bytes moved by this run: what the files hold now, less what they held when it began. */
  private movedBytes(): number {
    let moved = this.finishedBytes - this.finishedBase;
    for (const view of this.files.values()) moved += view.bytes - (view.base ?? view.bytes);
    return moved;
  }

  /** The lines of the live area, fitted to `width` columns. */
  private frame(width = this.area?.width() ?? 80): string[] {
    const now = this.now();
    const rows: Row[] = [];
    for (const view of this.files.values()) {
      const rate = rateOf(view.samples, now);
      rows.push({
        name: view.name,
        who: view.who,
        bytes: view.bytes,
        total: view.total,
        rate,
        status: view.status,
      });
    }
    const expected = this.expected;
    const files = expected?.files ?? this.seen;
    if (files > 1 && (rows.length > 0 || this.finished < files)) {
      let bytes = this.finishedBytes;
      let total = this.finishedBytes;
      for (const view of this.files.values()) {
        bytes += view.bytes;
        total += view.total;
      }
      rows.push({
        name: 'total',
        who: `${this.finished}/${files} files`,
        bytes,
        total: expected?.bytes ?? total,
        rate: rateOf(this.totalSamples, now),
        status: '',
        isTotal: true,
      });
    }
    return layoutRows(rows, width, this.style);
  }

  /**
   * Removes the bars (the log lines stay) and gives stderr back; a file still in flight (the
   * command was interrupted or failed) is left as one line saying how far it got.
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.area?.stop();
    if (this.options.json) return;
    for (const view of this.files.values()) {
      this.say(
        `${this.options.program}: ${view.name} ${view.who}: stopped at ${percentOf(view.bytes, view.total)}% (${formatSize(view.bytes)} of ${formatSize(view.total)})`,
      );
    }
  }
}

function resumingLine(view: FileView, bytes: number): string {
  return `resuming ${view.name} ${view.who} at ${percentOf(bytes, view.total)}% (${formatSize(bytes)} of ${formatSize(view.total)})`;
}

function percentOf(bytes: number, total: number): number {
  return total === 0 ? 100 : Math.floor((bytes / total) * 100);
}

/** Keeps the samples of the last RATE_WINDOW_MS, plus the one just before it. */
function addSample(samples: Sample[], sample: Sample, now: number): void {
  samples.push(sample);
  while (samples.length > 2 && (samples[1]?.at ?? now) <= now - RATE_WINDOW_MS) samples.shift();
}

/**
 * Bytes per second over the recent window, counted up to `now` so that a stalled transfer slows
 * down; undefined until there is something to measure.
 */
function rateOf(samples: readonly Sample[], now: number): number | undefined {
  const first = samples[0];
  const last = samples.at(-1);
  if (!first || !last || last === first) return undefined;
  const seconds = (now - first.at) / 1000;
  if (seconds < 0.5) return undefined;
  return (last.bytes - first.bytes) / seconds;
}

export interface Row {
  name: string;
  who: string;
  bytes: number;
  total: number;
  rate: number | undefined;
  /** A waiting reason; speed and ETA are left out while it lasts. */
  status: string;
  isTotal?: boolean;
}

function eta(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

/** The fixed-width columns after the bar, in the order shown. */
const COLUMNS = ['percent', 'sizes', 'rate', 'eta', 'who'] as const;
type Column = (typeof COLUMNS)[number];
/** Left out first when space runs short; name, bar and percentage always show. */
const DROP_ORDER: readonly Column[] = ['who', 'eta', 'rate', 'sizes'];

function cellsOf(row: Row): Record<Column, string> {
  const waiting = row.status !== '';
  const left = row.total - row.bytes;
  const rate = row.rate;
  return {
    percent: `${percentOf(row.bytes, row.total)}%`,
    sizes: `${formatSize(row.bytes)}/${formatSize(row.total)}`,
    rate: waiting || rate === undefined ? '' : `${formatSize(Math.round(rate))}/s`,
    eta:
      waiting || rate === undefined || rate <= 0 || left <= 0 || !Number.isFinite(left / rate)
        ? ''
        : `ETA ${eta(left / rate)}`,
    who: row.who,
  };
}

const NAME_MIN = 8;
const NAME_MAX = 120;
const BAR_MIN = 10;
const BAR_MAX = 30;
const STATUS_MIN = 12;

/**
 * Lays rows out in aligned columns that fit `width` (the last column is left free: a line that
 * fills it makes some terminals wrap). When space runs short the name is shortened first, then
 * the bar, and only then are columns left out: who, ETA, speed, sizes. Name, bar and percentage
 * always show. A waiting reason takes what is left at the end of the line.
 */
export function layoutRows(rows: readonly Row[], width: number, style: Style): string[] {
  if (rows.length === 0) return [];
  const cells = rows.map(cellsOf);
  const widthOf = (column: Column) => Math.max(0, ...cells.map((cell) => displayWidth(cell[column])));
  const nameNatural = Math.min(NAME_MAX, Math.max(...rows.map((row) => displayWidth(row.name))));
  const statusNatural = Math.max(0, ...rows.map((row) => displayWidth(sanitize(row.status))));
  const room = Math.max(NAME_MIN + BAR_MIN + 8, width - 1);
  const shown = new Set<Column>(COLUMNS.filter((column) => widthOf(column) > 0));
  // A leading space, the bar's two edges and the space after the name; one space before each column.
  const fixed = () => 4 + [...shown].reduce((sum, column) => sum + widthOf(column) + 1, 0);
  const statusMin = Math.min(statusNatural, STATUS_MIN);
  const minimum = () => fixed() + Math.min(nameNatural, NAME_MIN) + BAR_MIN + (statusMin > 0 ? statusMin + 1 : 0);
  for (const column of DROP_ORDER) if (minimum() > room && shown.has(column)) shown.delete(column);
  let spare = room - fixed();
  const take = (current: number, limit: number) => {
    const add = Math.max(0, Math.min(spare, limit - current));
    spare -= add;
    return current + add;
  };
  // What is left over goes to the name (up to 24 columns), a waiting reason, the bar, then the
  // rest of the name and of the reason.
  let nameWidth = take(0, Math.min(nameNatural, NAME_MIN));
  let barWidth = take(0, BAR_MIN);
  let statusWidth = statusNatural > 0 && spare > statusMin ? take(0, statusMin + 1) : 0;
  nameWidth = take(nameWidth, Math.min(nameNatural, 24));
  statusWidth = statusWidth > 0 ? take(statusWidth, Math.min(statusNatural + 1, 21)) : 0;
  barWidth = take(barWidth, BAR_MAX);
  nameWidth = take(nameWidth, nameNatural);
  statusWidth = statusWidth > 0 ? take(statusWidth, statusNatural + 1) : 0;
  return rows.map((row, index) => {
    const cell = cells[index]!;
    const fraction = row.total === 0 ? 1 : Math.min(1, row.bytes / row.total);
    const full = Math.round(fraction * barWidth);
    const bar = `${style.green('█'.repeat(full))}${style.dim('░'.repeat(barWidth - full))}`;
    const name = padEnd(fitStart(row.name, nameWidth), nameWidth);
    let line = ` ${row.isTotal ? style.bold(name) : name} |${bar}|`;
    for (const column of COLUMNS) {
      if (!shown.has(column)) continue;
      const text = cell[column];
      const size = widthOf(column);
      if (column === 'percent') line += ` ${style.bold(padStart(text, size))}`;
      else if (column === 'sizes') line += ` ${padStart(text, size)}`;
      else line += ` ${padEnd(text, size)}`;
    }
    if (statusWidth > 1 && row.status !== '') line += ` ${style.yellow(fitEnd(sanitize(row.status), statusWidth - 1))}`;
    return fitEnd(line.trimEnd(), room);
  });
}

/**
 * The bottom lines of a terminal, drawn again in place: the cursor goes back up over what was
 * drawn, clears to the end of the screen and draws the new lines. Lines never wrap (they are
 * fitted to the width), so the count of lines to go back is known; after the terminal got
 * narrower, the old lines are counted as the terminal wrapped them.
 */
class LiveArea {
  /** Widths of the lines now on screen. */
  private drawn: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly onResize = () => this.changed();

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly frame: () => string[],
  ) {
    setStderrSink((text) => this.log(text));
    stream.on('resize', this.onResize);
    stream.write('\x1b[?25l');
  }

  width(): number {
    return Math.max(20, this.stream.columns ?? 80);
  }

  /** Something changed: draw again soon (at most every REDRAW_EVERY_MS). */
  changed(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.draw();
    }, REDRAW_EVERY_MS);
    this.timer.unref();
  }

  /** Text (whole lines) above the area. */
  log(text: string): void {
    if (this.stopped) {
      this.stream.write(text);
      return;
    }
    this.stream.write(`${this.clear()}${text}${this.render()}`);
  }

  private draw(): void {
    if (this.stopped) return;
    this.stream.write(`${this.clear()}${this.render()}`);
  }

  private render(): string {
    const lines = this.frame();
    this.drawn = lines.map(displayWidth);
    return lines.map((line) => `${line}\n`).join('');
  }

  private clear(): string {
    const columns = this.width();
    const rows = this.drawn.reduce((sum, width) => sum + Math.max(1, Math.ceil(width / columns)), 0);
    this.drawn = [];
    return rows === 0 ? '' : `\x1b[${rows}A\r\x1b[J`;
  }

  /** Removes the area and shows the cursor again. */
  stop(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.stream.write(`${this.clear()}\x1b[?25h`);
    this.stopped = true;
    this.stream.off('resize', this.onResize);
    setStderrSink(undefined);
  }
}
