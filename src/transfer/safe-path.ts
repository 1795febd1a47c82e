/**
 * The receiver decides every path. A name from the other side is a suggestion: each component
 * is cleaned of separators, control characters and terminal escapes, bidi controls and
 * invisible format characters, Windows-reserved names and trailing dots or spaces, and the
 * result must stay inside the output folder.
 */
import { resolve, sep } from 'node:path';
import { DmpError } from '../errors.js';

const RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;
const MAX_COMPONENT_BYTES = 200;
/** Terminal escape sequences: ESC [ parameters, intermediates, final letter. */
const ESCAPE_SEQUENCE = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;
/**
 * Characters a name must not keep: controls (Cc); format characters (Cf), among them the bidi
 * controls that make `invoice\u202efdp.exe` show as `invoiceexe.pdf` and the zero-width ones that
 * make two names look alike; line and paragraph separators; lone surrogates, which no file
 * system can store as they are.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/** Cleans one path component. Never returns '', '.', '..' or anything with a separator. */
export function safeComponent(raw: string): string {
  // Terminal escape sequences first, whole, then every other invisible character; then NFC, as
  // removing a character between two others can change how they compose.
  let name = raw.replace(ESCAPE_SEQUENCE, '').replace(INVISIBLE, '').normalize('NFC');
  name = name.replace(/[/\\:*?"<>|]/g, '_');
  name = name.replace(/[. ]+$/, '').replace(/^ +/, '');
  if (name === '' || name === '.' || name === '..' || /^\.+$/.test(name)) name = 'unnamed';
  if (RESERVED.test(name)) name = `_${name}`;
  if (Buffer.byteLength(name, 'utf8') > MAX_COMPONENT_BYTES) name = shorten(name);
  return name;
}

/**
 * Cuts a name to MAX_COMPONENT_BYTES of UTF-8, keeping a short extension, cutting whole code
 * points (never half a surrogate pair) and never leaving a trailing dot or space.
 */
function shorten(name: string): string {
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : '';
  const stem = Array.from(name.slice(0, name.length - ext.length));
  const budget = MAX_COMPONENT_BYTES - Buffer.byteLength(ext, 'utf8');
  let bytes = 0;
  let keep = 0;
  for (const char of stem) {
    const size = Buffer.byteLength(char, 'utf8');
    if (bytes + size > budget) break;
    bytes += size;
    keep += 1;
  }
  const cut = stem
    .slice(0, keep)
    .join('')
    .replace(/[. ]+$/, '');
  return `${cut === '' ? 'unnamed' : cut}${ext}`;
}

/** Splits a sender's relative path on / and \, cleans each component, drops empty and dot ones. */
export function safeRelativePath(raw: string): string[] {
  const parts = raw
    .split(/[/\\]+/)
    .filter((part) => part !== '' && part !== '.' && part !== '..')
    .map(safeComponent);
  return parts.length > 0 ? parts : ['unnamed'];
}

/** Joins a cleaned path under `out` and proves it stays there. */
export function resolveInside(out: string, parts: readonly string[]): string {
  const root = resolve(out);
  const target = resolve(root, ...parts);
  if (!target.startsWith(root + sep)) throw new DmpError('PROTOCOL', 'file name escapes the output folder');
  return target;
}
