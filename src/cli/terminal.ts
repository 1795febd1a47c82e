/**
 * What the commands need to know about the terminal they write to: whether colour and bold are
 * wanted, how wide text is on screen, and one way to write lines to stderr that a live area
 * (progress bars, `dmp status --watch`) can take over, so that a log line never lands in the
 * middle of a bar.
 */

/** Set from --no-color (false) by the program before its command runs. */
let colorFlag: boolean | undefined;

export function setColorFlag(value: boolean | undefined): void {
  colorFlag = value;
}

/**
 * Colour and bold only on a terminal, and never with --no-color or a non-empty NO_COLOR
 * (https://no-color.org), nor on a terminal that says it cannot (TERM=dumb).
 */
export function colorEnabled(stream: { isTTY?: boolean } = process.stderr): boolean {
  if (colorFlag === false) return false;
  const noColor = process.env.NO_COLOR;
  if (noColor !== undefined && noColor !== '') return false;
  if (process.env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

const plain = (text: string) => text;
const sgr = (on: string, off: string) => (text: string) => (text === '' ? text : `\x1b[${on}m${text}\x1b[${off}m`);

/** Styles for `stream`: the identity when colour is off. */
export function styleFor(stream: { isTTY?: boolean } = process.stderr): Style {
  if (!colorEnabled(stream)) return { bold: plain, dim: plain, red: plain, green: plain, yellow: plain, cyan: plain };
  return {
    bold: sgr('1', '22'),
    dim: sgr('2', '22'),
    red: sgr('31', '39'),
    green: sgr('32', '39'),
    yellow: sgr('33', '39'),
    cyan: sgr('36', '39'),
  };
}

/** Terminal escapes (SGR and cursor moves) have no width. */
const ESCAPE = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Columns one code point takes: 0 for combining marks, 2 for wide East Asian and emoji. */
function charWidth(code: number): number {
  if (code === 0x200d || (code >= 0x300 && code <= 0x36f) || (code >= 0xfe00 && code <= 0xfe0f)) return 0;
  if (
    (code >= 0x1100 && code <= 0x115f) ||
    (code >= 0x2e80 && code <= 0xa4cf && code !== 0x303f) ||
    (code >= 0xac00 && code <= 0xd7a3) ||
    (code >= 0xf900 && code <= 0xfaff) ||
    (code >= 0xfe30 && code <= 0xfe4f) ||
    (code >= 0xff00 && code <= 0xff60) ||
    (code >= 0xffe0 && code <= 0xffe6) ||
    (code >= 0x1f300 && code <= 0x1f64f) ||
    (code >= 0x1f900 && code <= 0x1f9ff) ||
    (code >= 0x20000 && code <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

/** Columns `text` takes on a terminal (escapes excluded). */
export function displayWidth(text: string): number {
  let width = 0;
  for (const char of text.replace(ESCAPE, '')) width += charWidth(char.codePointAt(0) ?? 0);
  return width;
}

/** `text` cut to at most `width` columns; cut text keeps its end, after a leading '…'. */
export function fitStart(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  if (width <= 0) return '';
  const chars = [...text];
  let kept = '';
  let used = 1;
  for (let index = chars.length - 1; index >= 0; index -= 1) {
    const char = chars[index] ?? '';
    const next = charWidth(char.codePointAt(0) ?? 0);
    if (used + next > width) break;
    kept = char + kept;
    used += next;
  }
  return `…${kept}`;
}

/** `text` cut to at most `width` columns, keeping its start (escapes kept, never cut). */
export function fitEnd(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  let out = '';
  let used = 0;
  let styled = false;
  for (const part of text.split(/(\x1b\[[0-9;?]*[A-Za-z])/)) {
    if (part.startsWith('\x1b[')) {
      out += part;
      styled = true;
      continue;
    }
    for (const char of part) {
      const next = charWidth(char.codePointAt(0) ?? 0);
      if (used + next > width - 1) return `${out}…${styled ? '\x1b[0m' : ''}`;
      out += char;
      used += next;
    }
  }
  return out;
}

/** `text` padded with spaces to `width` columns. */
export function padEnd(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - displayWidth(text)));
}

/** `text` padded on the left to `width` columns. */
export function padStart(text: string, width: number): string {
  return ' '.repeat(Math.max(0, width - displayWidth(text))) + text;
}

type Sink = (text: string) => void;
let sink: Sink | undefined;

/**
 * Writes text (whole lines) to stderr; while a live area owns the bottom of the terminal, it
 * clears itself, prints the text and draws itself again below it.
 */
export function writeStderr(text: string): void {
  if (sink) sink(text);
  else process.stderr.write(text);
}

/** A live area takes over stderr lines (`undefined`: give them back). */
export function setStderrSink(next: Sink | undefined): void {
  sink = next;
}

/** "12 s ago", "3 min ago", "2 h ago", "4 d ago": how long before `now` `then` was. */
export function ago(then: number, now: number): string {
  return `${duration(Math.max(0, now - then))} ago`;
}

/** A span of time for people: "12 s", "3 min", "2 h 5 min", "4 d". */
export function duration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d`;
}
