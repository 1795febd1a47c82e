import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { printable } from '../../src/util/printable.js';
import { seededRandom } from '../../src/util/random.js';

/** What must never reach a terminal unescaped. */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

describe('printable', () => {
  test('a bidi override cannot turn .exe into .pdf on screen', () => {
    assert.equal(printable('invoice\u202efdp.exe'), 'invoice\\u{202e}fdp.exe');
  });

  test('every bidi control and invisible format character is escaped', () => {
    const invisible = [
      0x061c, // Arabic letter mark
      0x00ad, // soft hyphen
      0x180e, // Mongolian vowel separator
      ...range(0x200b, 0x200f), // zero-width space, joiners, LRM, RLM
      ...range(0x202a, 0x202e), // LRE, RLE, PDF, LRO, RLO
      ...range(0x2060, 0x2064), // word joiner, invisible operators
      ...range(0x2066, 0x2069), // LRI, RLI, FSI, PDI
      0xfeff, // zero-width no-break space (BOM)
      0xfff9, // interlinear annotation anchor
      0xe0001, // language tag
      0xe0041, // tag latin capital A: invisible text smuggled after an emoji
    ];
    for (const code of invisible) {
      const char = String.fromCodePoint(code);
      const escaped = code < 0x100 ? `\\x${code.toString(16)}` : `\\u{${code.toString(16)}}`;
      assert.equal(printable(`a${char}b`), `a${escaped}b`, `U+${code.toString(16)}`);
    }
  });

  test('control characters are escaped as \\xNN, as the CLI did', () => {
    assert.equal(printable('\u001b[2Jcleared'), '\\x1b[2Jcleared');
    assert.equal(printable('bell\u0007'), 'bell\\x07');
    assert.equal(printable('nul\u0000'), 'nul\\x00');
    assert.equal(printable('del\u007f c1\u009b'), 'del\\x7f c1\\x9b');
    assert.equal(printable('over\rwrite'), 'over\\x0dwrite');
    assert.equal(printable('tab\t'), 'tab\\x09');
  });

  test('line feeds are escaped unless kept, and the Unicode line separators always are', () => {
    assert.equal(printable('one\ntwo'), 'one\\x0atwo');
    assert.equal(printable('one\ntwo', { keepNewlines: true }), 'one\ntwo');
    assert.equal(printable('one\r\ntwo', { keepNewlines: true }), 'one\\x0d\ntwo');
    assert.equal(printable('one\u2028two\u2029', { keepNewlines: true }), 'one\\u{2028}two\\u{2029}');
  });

  test('a lone surrogate is escaped; a pair is a character and stays', () => {
    assert.equal(printable('x\ud800y'), 'x\\u{d800}y');
    assert.equal(printable('\udc00'), '\\u{dc00}');
    assert.equal(printable('😀'), '😀');
  });

  test('ordinary text of any script is left as it is', () => {
    for (const text of [
      'hello, world',
      'héllo wörld',
      'e\u0301',
      '文件 ファイル 파일',
      'שלום עולם',
      'مرحبا بالعالم',
      'नमस्ते',
      '😀 🎉',
      'a\\u{202e}b',
      '',
    ]) {
      assert.equal(printable(text), text);
    }
  });

  test('random text comes out with nothing unprintable, and printing twice changes nothing (seed 99)', () => {
    const random = seededRandom(99);
    const alphabet = [
      'a',
      ' ',
      '\n',
      '\r',
      '\u001b',
      '\u009b',
      '\u202e',
      '\u2066',
      '\u200b',
      '\u200d',
      '\ufeff',
      '\u2028',
      '\ud800',
      '\udfff',
      '😀',
      'é',
      'ש',
      '\u{e0041}',
      '\\',
    ];
    for (let round = 0; round < 2000; round += 1) {
      let text = '';
      const length = Math.floor(random() * 30);
      for (let i = 0; i < length; i += 1) text += alphabet[Math.floor(random() * alphabet.length)];
      const shown = printable(text);
      assert.doesNotMatch(shown, UNPRINTABLE, JSON.stringify(text));
      assert.equal(printable(shown), shown);
      const kept = printable(text, { keepNewlines: true });
      assert.doesNotMatch(kept.replaceAll('\n', ''), UNPRINTABLE, JSON.stringify(text));
      assert.equal(kept.split('\n').length, text.split('\n').length);
    }
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, index) => from + index);
}
