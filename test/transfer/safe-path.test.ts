/**
 * The receiver decides every path (docs/PROTOCOL.md 4.5): names from the other side are cleaned
 * component by component and must resolve inside the output folder; an existing file is never
 * replaced, the new one gets the first free `name (n).ext`.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DmpError } from '../../src/errors.js';
import { freeName } from '../../src/local/free-name.js';
import { resolveInside, safeComponent, safeRelativePath } from '../../src/transfer/safe-path.js';
import { seededRandom } from '../../src/util/random.js';

const MAX_COMPONENT_BYTES = 200;
const RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f/\\:*?"<>|]/;
const INVISIBLE = /[\p{Cf}\p{Zl}\p{Zp}]/u;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const HOSTILE = [
  '../../etc/passwd',
  '/abs/path',
  'a\\b',
  '..\\..\\windows\\system32',
  'C:\\Windows\\win.ini',
  '\\\\server\\share\\file',
  'nul.txt',
  'NUL',
  'CON',
  'con.',
  'com1.log',
  'LPT9.tar.gz',
  'aux.',
  'x\u0000y',
  '\u001b[31mred\u001b[0m.txt',
  '\u001b]0;window title\u0007.txt',
  '\u009b31mc1-csi.txt',
  'new\nline.txt',
  'tab\there',
  'del\u007f.txt',
  'trailing. ',
  'trailing...',
  '   ',
  ' . . ',
  '..',
  '.',
  '...',
  '',
  '/',
  '//',
  'a/../../b',
  './.././x',
  'q?u*o"t<e>s|:.txt',
  'ünïcødé 文件.txt',
  'e\u0301.txt',
  'é'.repeat(300) + '.txt',
  '文'.repeat(120),
  '😀'.repeat(80) + '.jpg',
  `${'a'.repeat(400)}.${'b'.repeat(40)}`,
  'invoice\u202efdp.exe',
  '\u202e',
  '\u200b',
  '\ufeffreport.txt',
  'a\u2066b\u2069.txt',
  '\u061cx',
  'line\u2028sep',
  'lone\ud800.txt',
  'tag\u{e0041}\u{e007f}.txt',
  'soft\u00adhyphen',
];

/** Every property a cleaned component must have. */
function assertClean(raw: string, name: string): void {
  const show = `${JSON.stringify(raw).slice(0, 80)} -> ${JSON.stringify(name)}`;
  assert.equal(typeof name, 'string');
  assert.notEqual(name, '', show);
  assert.notEqual(name, '.', show);
  assert.notEqual(name, '..', show);
  assert.doesNotMatch(name, FORBIDDEN, `separator or control character left: ${show}`);
  assert.ok(!name.includes('\u001b'), `escape left: ${show}`);
  assert.doesNotMatch(name, INVISIBLE, `bidi control or invisible character left: ${show}`);
  assert.doesNotMatch(name, /[. ]$/, `trailing dot or space: ${show}`);
  assert.doesNotMatch(name, RESERVED, `Windows-reserved name: ${show}`);
  assert.ok(Buffer.byteLength(name, 'utf8') <= MAX_COMPONENT_BYTES, `longer than 200 bytes: ${show}`);
  assert.doesNotMatch(name, LONE_SURROGATE, `not well-formed Unicode (a split surrogate pair): ${show}`);
  // What is written to disk is exactly this name (no replacement characters appear on the way).
  assert.equal(Buffer.from(name, 'utf8').toString('utf8'), name, `does not survive UTF-8: ${show}`);
}

describe('safeComponent', () => {
  test('separators become _, so no component can climb or be absolute', () => {
    assert.equal(safeComponent('../../etc/passwd'), '.._.._etc_passwd');
    assert.equal(safeComponent('/abs/path'), '_abs_path');
    assert.equal(safeComponent('a\\b'), 'a_b');
    assert.equal(safeComponent('C:\\x'), 'C__x');
    assert.equal(safeComponent('q?u*o"t<e>s|:.txt'), 'q_u_o_t_e_s__.txt');
  });

  test('Windows-reserved names get a _ prefix, with or without extension, in any case', () => {
    assert.equal(safeComponent('nul.txt'), '_nul.txt');
    assert.equal(safeComponent('CON'), '_CON');
    assert.equal(safeComponent('com1.log'), '_com1.log');
    assert.equal(safeComponent('Lpt3'), '_Lpt3');
    assert.equal(safeComponent('aux.tar.gz'), '_aux.tar.gz');
    assert.equal(safeComponent('prn.'), '_prn');
    assert.equal(safeComponent('COM¹'), '_COM¹');
    // Not reserved: only the exact device names are.
    assert.equal(safeComponent('console.txt'), 'console.txt');
    assert.equal(safeComponent('com10'), 'com10');
    assert.equal(safeComponent('nullable'), 'nullable');
  });

  test('NUL and other control characters are removed', () => {
    assert.equal(safeComponent('x\u0000y'), 'xy');
    assert.equal(safeComponent('new\nline'), 'newline');
    assert.equal(safeComponent('a\u007fb\u0085c'), 'abc');
  });

  test('bidi controls and invisible format characters are removed', () => {
    // Shown as is, this name reads `invoiceexe.pdf`.
    assert.equal(safeComponent('invoice\u202efdp.exe'), 'invoicefdp.exe');
    assert.equal(safeComponent('\u2067doc\u2069.txt'), 'doc.txt');
    assert.equal(safeComponent('\ufeffreport.txt'), 'report.txt');
    assert.equal(safeComponent('pay\u200bpal.txt'), 'paypal.txt');
    assert.equal(safeComponent('a\u061cb\u200ec\u200fd'), 'abcd');
    assert.equal(safeComponent('x\u{e0041}\u{e007f}'), 'x');
    assert.equal(safeComponent('line\u2028sep\u2029'), 'linesep');
    assert.equal(safeComponent('\u202e\u200b'), 'unnamed');
    // Removed before NFC: what was around an invisible character composes as if it was never there.
    assert.equal(safeComponent('e\u200b\u0301.txt'), '\u00e9.txt');
    // A lone surrogate cannot be stored; a pair is a character and stays.
    assert.equal(safeComponent('lone\ud800.txt'), 'lone.txt');
    assert.equal(safeComponent('\ud83d\ude00.txt'), '😀.txt');
  });

  test('terminal escape sequences are removed whole, not just their ESC', () => {
    assert.equal(safeComponent('\u001b[31mred\u001b[0m.txt'), 'red.txt');
    assert.equal(safeComponent('\u001b[2J\u001b[1;1Hclear.txt'), 'clear.txt');
    assert.ok(!safeComponent('\u001b]0;title\u0007x').includes('\u001b'));
    assert.ok(!safeComponent('\u009b31mx').includes('\u009b'));
  });

  test('trailing dots and spaces go, leading spaces go', () => {
    assert.equal(safeComponent('trailing. '), 'trailing');
    assert.equal(safeComponent('trailing...'), 'trailing');
    assert.equal(safeComponent('  lead.txt'), 'lead.txt');
  });

  test('empty, dot and dot-dot names become a harmless placeholder', () => {
    for (const raw of ['', '.', '..', '...', ' ', ' . ', '\u0000', '\u001b[0m']) {
      const name = safeComponent(raw);
      assertClean(raw, name);
    }
    assert.equal(safeComponent('..'), 'unnamed');
    assert.equal(safeComponent('.'), 'unnamed');
    assert.equal(safeComponent(''), 'unnamed');
  });

  test('hidden files keep their leading dot', () => {
    assert.equal(safeComponent('.bashrc'), '.bashrc');
  });

  test('names are NFC-normalised: composed and decomposed é give the same name', () => {
    const composed = safeComponent('caf\u00e9.txt');
    const decomposed = safeComponent('cafe\u0301.txt');
    assert.equal(composed, 'caf\u00e9.txt');
    assert.equal(decomposed, composed);
    assert.equal(safeComponent('\u1100\u1161'), '\uac00'); // Hangul jamo -> syllable
  });

  test('Unicode names are kept as they are', () => {
    assert.equal(safeComponent('ünïcødé 文件.txt'), 'ünïcødé 文件.txt');
    assert.equal(safeComponent('😀 smile.png'), '😀 smile.png');
  });

  test('very long names are cut to at most 200 bytes, keeping the extension', () => {
    const accents = safeComponent('é'.repeat(300) + '.txt'); // 604 bytes
    assertClean('é * 300 .txt', accents);
    assert.ok(accents.endsWith('.txt'));
    assert.ok(accents.startsWith('éé'));
    const cjk = safeComponent('文'.repeat(120)); // 360 bytes, no extension
    assertClean('文 * 120', cjk);
    assert.ok(cjk.startsWith('文'));
    const ascii = safeComponent('a'.repeat(300) + '.log');
    assertClean('a * 300 .log', ascii);
    assert.ok(ascii.endsWith('.log'));
    const emoji = safeComponent('😀'.repeat(80) + '.jpg'); // 324 bytes
    assertClean('😀 * 80 .jpg', emoji);
    assert.ok(emoji.endsWith('.jpg'));
  });

  test('cutting a long name never splits a surrogate pair', () => {
    // 1 + 200 + 3 UTF-16 units: cutting 8 units off the end lands inside a pair.
    const raw = `x${'😀'.repeat(100)}yyy`;
    assertClean(raw, safeComponent(raw));
    const rawExt = `${'a'.repeat(300)}.${'😀'.repeat(20)}`;
    assertClean(rawExt, safeComponent(rawExt));
  });

  test('cutting a long name never leaves a trailing space or dot', () => {
    const raw = `${'a'.repeat(199)} ${'b'.repeat(8)}`; // 208 bytes, cut at 200 right after the space
    assertClean(raw, safeComponent(raw));
  });

  test('every hostile name comes out clean', () => {
    for (const raw of HOSTILE) assertClean(raw, safeComponent(raw));
  });

  test('random hostile names always come out clean (seed 4242)', () => {
    const random = seededRandom(4242);
    const alphabet = [
      'a',
      'Z',
      '0',
      ' ',
      '.',
      '..',
      '/',
      '\\',
      ':',
      '*',
      '?',
      '"',
      '<',
      '>',
      '|',
      '\u0000',
      '\n',
      '\u001b',
      '\u001b[31m',
      '\u009b',
      '\u007f',
      'é',
      'e\u0301',
      '文',
      '😀',
      'CON',
      'nul',
      'com1',
      '.txt',
      '\u202e',
      '\u2066',
      '\u200b',
      '\u200d',
      '\ufeff',
      '\u2028',
      '\ud800',
      '\u0301',
    ];
    for (let round = 0; round < 2000; round += 1) {
      const length = Math.floor(random() * (round % 10 === 0 ? 200 : 20));
      let raw = '';
      for (let i = 0; i < length; i += 1) raw += alphabet[Math.floor(random() * alphabet.length)];
      assertClean(raw, safeComponent(raw));
    }
  });
});

describe('safeRelativePath', () => {
  test('keeps a relative layout', () => {
    assert.deepEqual(safeRelativePath('photos/2024/cat.jpg'), ['photos', '2024', 'cat.jpg']);
    assert.deepEqual(safeRelativePath('dir\\sub\\f.txt'), ['dir', 'sub', 'f.txt']);
  });

  test('drops dot, dot-dot and empty components, and the leading slash', () => {
    assert.deepEqual(safeRelativePath('../../etc/passwd'), ['etc', 'passwd']);
    assert.deepEqual(safeRelativePath('/abs/path'), ['abs', 'path']);
    assert.deepEqual(safeRelativePath('a\\b'), ['a', 'b']);
    assert.deepEqual(safeRelativePath('a/../../b'), ['a', 'b']);
    assert.deepEqual(safeRelativePath('./.././x'), ['x']);
    assert.deepEqual(safeRelativePath('a//b///c'), ['a', 'b', 'c']);
  });

  test('a name that is nothing but separators and dots still yields a name', () => {
    for (const raw of ['', '/', '//', '.', '..', '../..', '\\\\', './']) {
      const parts = safeRelativePath(raw);
      assert.ok(parts.length >= 1, JSON.stringify(raw));
      for (const part of parts) assertClean(raw, part);
    }
  });

  test('every component of a hostile path is clean', () => {
    for (const raw of HOSTILE) for (const part of safeRelativePath(raw)) assertClean(raw, part);
  });
});

describe('resolveInside', () => {
  let out = '';
  before(async () => {
    out = await mkdtemp(join(tmpdir(), 'dftp-safe-'));
  });
  after(async () => {
    await rm(out, { recursive: true, force: true });
  });

  const inside = (target: string) => {
    const rel = relative(resolve(out), target);
    return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
  };

  test('cleaned hostile names always resolve strictly inside the output folder', () => {
    for (const raw of HOSTILE) {
      const target = resolveInside(out, safeRelativePath(raw));
      assert.ok(target.startsWith(resolve(out) + sep), `${JSON.stringify(raw)} -> ${target}`);
      assert.ok(inside(target), `${JSON.stringify(raw)} -> ${target}`);
    }
  });

  test('random hostile paths never escape (seed 777)', () => {
    const random = seededRandom(777);
    const pieces = ['..', '.', '/', '\\', 'a', 'b', '\u0000', ' ', 'CON', '~', '$HOME', '%2e%2e', '\u001b[0m'];
    for (let round = 0; round < 2000; round += 1) {
      let raw = '';
      const length = 1 + Math.floor(random() * 12);
      for (let i = 0; i < length; i += 1) raw += pieces[Math.floor(random() * pieces.length)];
      const target = resolveInside(out, safeRelativePath(raw));
      assert.ok(inside(target), `${JSON.stringify(raw)} -> ${target}`);
    }
  });

  test('raw parts that would escape are refused', () => {
    const refused = (error: unknown) => error instanceof DmpError && error.code === 'PROTOCOL';
    assert.throws(() => resolveInside(out, ['..']), refused);
    assert.throws(() => resolveInside(out, ['..', 'x']), refused);
    assert.throws(() => resolveInside(out, ['a', '..', '..', 'b']), refused);
    assert.throws(() => resolveInside(out, ['/etc/passwd']), refused);
    // The folder itself is not a file inside it.
    assert.throws(() => resolveInside(out, []), refused);
    assert.throws(() => resolveInside(out, ['.']), refused);
    // A sibling whose name starts with the folder's name is outside.
    assert.throws(() => resolveInside(out, [`../${out.split(sep).at(-1)}-evil/f`]), refused);
  });

  test('a relative or slash-terminated output folder works the same', () => {
    assert.equal(resolveInside(`${out}/`, ['a', 'b.txt']), join(resolve(out), 'a', 'b.txt'));
    const rel = relative(process.cwd(), out);
    assert.equal(resolveInside(rel, ['x']), join(resolve(out), 'x'));
  });
});

describe('freeName', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dftp-free-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a free name is returned as is', async () => {
    assert.equal(await freeName(join(dir, 'fresh.txt')), join(dir, 'fresh.txt'));
  });

  test('picks "a (1).txt", then "a (2).txt"', async () => {
    await writeFile(join(dir, 'a.txt'), 'first');
    assert.equal(await freeName(join(dir, 'a.txt')), join(dir, 'a (1).txt'));
    await writeFile(join(dir, 'a (1).txt'), 'second');
    assert.equal(await freeName(join(dir, 'a.txt')), join(dir, 'a (2).txt'));
  });

  test('a name without extension gets the number at the end', async () => {
    await writeFile(join(dir, 'README'), 'x');
    assert.equal(await freeName(join(dir, 'README')), join(dir, 'README (1)'));
  });

  test('a hidden file keeps its dot', async () => {
    await writeFile(join(dir, '.profile'), 'x');
    const free = await freeName(join(dir, '.profile'));
    assert.ok(free.startsWith(join(dir, '.profile')), free);
    assert.notEqual(free, join(dir, '.profile'));
  });

  test('directories and dangling symbolic links count as taken', async () => {
    await mkdir(join(dir, 'd.txt'));
    assert.equal(await freeName(join(dir, 'd.txt')), join(dir, 'd (1).txt'));
    await symlink(join(dir, 'nowhere'), join(dir, 'link.txt'));
    assert.equal(await freeName(join(dir, 'link.txt')), join(dir, 'link (1).txt'));
  });

  test('names claimed in this process (taken) are skipped too', async () => {
    const claimed = new Set([join(dir, 'b.txt'), join(dir, 'b (1).txt')]);
    assert.equal(await freeName(join(dir, 'b.txt'), (candidate) => claimed.has(candidate)), join(dir, 'b (2).txt'));
  });

  test('Unicode names get numbered the same way', async () => {
    await writeFile(join(dir, 'ünïcødé 文件.txt'), 'x');
    assert.equal(await freeName(join(dir, 'ünïcødé 文件.txt')), join(dir, 'ünïcødé 文件 (1).txt'));
  });
});
