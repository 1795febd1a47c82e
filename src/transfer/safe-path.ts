/**
 * The receiver decides every path. A name from the other side is a suggestion: each component
 * is cleaned of separators, control characters and terminal escapes, bidi controls and
 * invisible format characters, Windows-reserved names and trailing dots or spaces, and the
 * result must stay inside the output folder.
 */
import { lstat, mkdir, realpath } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { DmpError, errnoCode } from '../errors.js';

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

/** Why the receiver refused to write where a received file was to go. */
export type PathRefusal = 'link' | 'not-a-folder' | 'not-a-file' | 'outside';

const REFUSALS: Record<PathRefusal, string> = {
  link: 'is a symbolic link: refusing to write through it',
  'not-a-folder': 'is in the way: it is not a folder',
  'not-a-file': 'is in the way: it is not a regular file',
  outside: 'leads outside the output folder',
};

/**
 * A refusal to write at `shown` (a path relative to the output folder: the reason travels to
 * the sender in the status, which has no business knowing this machine's folders). A transfer
 * refused this way fails for good.
 */
export function pathRefused(shown: string, reason: PathRefusal, path: string): DmpError {
  return new DmpError('TRANSFER_FAILED', `${shown} ${REFUSALS[reason]}`, { data: { path, reason } });
}

/**
 * The folder `<out>/<dirs...>`, made on the way down without ever following a link: the output
 * folder itself is the user's choice (a link there is fine, and is resolved once), but below it
 * every existing component is looked at with lstat, a missing one is created, and a link or
 * anything that is not a folder is refused (TRANSFER_FAILED, data `{ path, reason }`). Comparing
 * strings proves nothing about where a path leads: `out/sub` may be a link to anywhere. Returns
 * the real path of the folder.
 */
export async function outputFolder(out: string, dirs: readonly string[]): Promise<string>;
/** With `create: false`, nothing is made: undefined when a folder on the way is missing. */
export async function outputFolder(
  out: string,
  dirs: readonly string[],
  options: { create: false },
): Promise<string | undefined>;
export async function outputFolder(
  out: string,
  dirs: readonly string[],
  options: { create?: boolean } = {},
): Promise<string | undefined> {
  const create = options.create ?? true;
  if (create) await mkdir(out, { recursive: true });
  const root = await realpath(out).catch((error: unknown) => {
    if (!create && errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  });
  if (root === undefined) return undefined;
  let folder = root;
  for (const [index, part] of dirs.entries()) {
    const path = join(folder, part);
    const shown = dirs.slice(0, index + 1).join('/');
    for (;;) {
      const info = await lstat(path).catch((error: unknown) => {
        if (errnoCode(error) === 'ENOENT') return undefined;
        throw error;
      });
      if (info?.isSymbolicLink()) throw pathRefused(shown, 'link', path);
      if (info !== undefined && !info.isDirectory()) throw pathRefused(shown, 'not-a-folder', path);
      if (info !== undefined) break;
      if (!create) return undefined;
      try {
        await mkdir(path);
        break;
      } catch (error) {
        // Made at the same moment by something else: look at what it is.
        if (errnoCode(error) !== 'EEXIST') throw error;
      }
    }
    folder = path;
  }
  // Every component was a real folder when looked at; the real path says so once more.
  const real = await realpath(folder);
  if (real !== root && !real.startsWith(root + sep)) throw pathRefused(dirs.join('/'), 'outside', folder);
  return real;
}
