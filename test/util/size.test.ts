import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import bytes from 'bytes';
import { DmpError } from '../../src/errors.js';
import { formatSize, parseSize } from '../../src/util/size.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const TiB = 1024 ** 4;

describe('parseSize', () => {
  const accepted: [string, number][] = [
    ['1k', KiB],
    ['1K', KiB],
    ['64k', 64 * KiB],
    ['4m', 4 * MiB],
    ['4M', 4194304],
    ['1g', GiB],
    ['2G', 2 * GiB],
    ['1.5k', 1536],
    ['1kb', KiB],
    ['1KB', KiB],
    ['1Kb', KiB],
    ['1mb', MiB],
    ['1MB', MiB],
    ['1gb', GiB],
    ['1tb', TiB],
    ['512', 512],
    ['1', 1],
    ['1b', 1],
    ['1B', 1],
    ['100b', 100],
    ['1.5kb', 1536],
    ['1 k', KiB],
    ['1 kb', KiB],
    ['  4m  ', 4 * MiB],
    ['4m\n', 4 * MiB],
  ];
  for (const [text, expected] of accepted) {
    test(`accepts ${JSON.stringify(text)} = ${expected}`, () => {
      assert.equal(parseSize(text), expected);
    });
  }

  const rejected = [
    '1KiB',
    '1kib',
    '1MiB',
    '1.5',
    '0',
    '0k',
    '0kb',
    '-1',
    '-1k',
    '+1',
    '',
    '   ',
    'abc',
    '1x',
    '1kk',
    'k',
    'kb',
    '1.5b',
    '2.5b',
    '1.0001k',
    '1.0001kb',
    '1e3',
    '0x10',
    '1pb',
    '1,5k',
    '.5k',
    '1.k',
    '4 m b',
  ];
  for (const text of rejected) {
    test(`rejects ${JSON.stringify(text)} with USAGE`, () => {
      assert.throws(
        () => parseSize(text, 'block size'),
        (error: unknown) =>
          error instanceof DmpError &&
          error.code === 'USAGE' &&
          error.message.includes('block size') &&
          error.message.includes(`'${text}'`),
      );
    });
  }

  test('the default name in messages is "size"', () => {
    assert.throws(() => parseSize('nope'), /invalid size 'nope'/);
  });

  test('bytes.parse alone is not enough: it reads "1k" and friends as 1 byte', () => {
    // This is why parseSize does not use bytes: a 1 KiB block would silently become 1 byte.
    assert.equal(bytes.parse('1k'), 1);
    assert.equal(bytes.parse('1m'), 1);
    assert.equal(bytes.parse('1KiB'), 1);
    assert.equal(bytes.parse('1.5'), 1);
    assert.equal(bytes.parse('1.5b'), 1);
    assert.equal(bytes.parse('1kb'), KiB);
  });
});

describe('formatSize', () => {
  const cases: [number, string][] = [
    [0, '0 B'],
    [1, '1 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [10 * KiB, '10 KiB'],
    [100 * KiB, '100 KiB'],
    [1023 * KiB, '1023 KiB'],
    [MiB, '1 MiB'],
    [4 * MiB, '4 MiB'],
    [Math.round(2.25 * MiB), '2.3 MiB'],
    [GiB, '1 GiB'],
    [TiB, '1 TiB'],
    [2048 * TiB, '2048 TiB'],
  ];
  for (const [value, expected] of cases) {
    test(`${value} -> ${expected}`, () => {
      assert.equal(formatSize(value), expected);
    });
  }

  test('formatSize output of whole units parses back', () => {
    for (const value of [KiB, 4 * MiB, GiB, TiB]) {
      const [number, unit] = formatSize(value).split(' ');
      assert.equal(parseSize(`${number}${unit?.replace('iB', 'b')}`), value);
    }
  });
});
