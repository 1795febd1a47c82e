import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isDmpError } from '../../src/errors.js';
import {
  boundedArray,
  boundedInt,
  boundedString,
  plainObject,
  SANE_TIME_MAX,
  SANE_TIME_MIN,
  saneTime,
} from '../../src/util/bounds.js';

/** A PROTOCOL error naming `field`, for `reason`, whose message never repeats a hostile string. */
function refused(field: string, reason: string) {
  return (error: unknown) => {
    assert.ok(isDmpError(error, 'PROTOCOL'), String(error));
    assert.equal(error.data.field, field);
    assert.equal(error.data.reason, reason);
    assert.ok(error.message.startsWith(field), error.message);
    assert.doesNotMatch(error.message, /[\n\u001b\u202e]/);
    assert.ok(error.message.length < 200, error.message);
    return true;
  };
}

describe('boundedInt', () => {
  test('accepts integers within the bounds, both ends included', () => {
    assert.equal(boundedInt(1, 1, 10), 1);
    assert.equal(boundedInt(10, 1, 10), 10);
    assert.equal(boundedInt(0, 0, Number.MAX_SAFE_INTEGER), 0);
    assert.equal(boundedInt(-5, -10, 10), -5);
  });

  test('refuses values out of range: a block size of 1 when 1024 is the least', () => {
    assert.throws(() => boundedInt(1, 1024, 64 * 1024 * 1024, 'blockSize'), refused('blockSize', 'range'));
    assert.throws(() => boundedInt(11, 1, 10, 'count'), refused('count', 'range'));
    assert.throws(() => boundedInt(-1, 0, 10, 'size'), refused('size', 'range'));
  });

  test('refuses what is not a safe integer', () => {
    for (const value of [
      1.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      1e300,
      2 ** 53,
      '5',
      null,
      undefined,
      [5],
      { n: 5 },
      true,
      5n,
    ]) {
      assert.throws(
        () => boundedInt(value, 0, Number.MAX_SAFE_INTEGER, 'size'),
        refused('size', 'type'),
        String(value),
      );
    }
  });
});

describe('saneTime', () => {
  test('accepts times from 2000 to 2200, with fractions of a ms', () => {
    assert.equal(saneTime(SANE_TIME_MIN), SANE_TIME_MIN);
    assert.equal(saneTime(SANE_TIME_MAX), SANE_TIME_MAX);
    assert.equal(saneTime(1767225600123.456), 1767225600123.456);
    assert.equal(SANE_TIME_MIN, Date.parse('2000-01-01T00:00:00Z'));
    assert.equal(SANE_TIME_MAX, Date.parse('2200-01-01T00:00:00Z'));
  });

  test('refuses mtimeMs 1e300 and other absurd times', () => {
    assert.throws(() => saneTime(1e300, 'mtimeMs'), refused('mtimeMs', 'range'));
    assert.throws(() => saneTime(-1, 'mtimeMs'), refused('mtimeMs', 'range'));
    assert.throws(() => saneTime(0, 'mtimeMs'), refused('mtimeMs', 'range'));
    assert.throws(() => saneTime(SANE_TIME_MAX + 1, 'mtimeMs'), refused('mtimeMs', 'range'));
    assert.throws(() => saneTime(Date.UTC(1999, 11, 31), 'mtimeMs'), refused('mtimeMs', 'range'));
    // Seconds instead of milliseconds land in 1970.
    assert.throws(() => saneTime(1767225600, 'mtimeMs'), refused('mtimeMs', 'range'));
  });

  test('refuses what is not a finite number', () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '2026-01-01', null, {}, []]) {
      assert.throws(() => saneTime(value, 'sentAt'), refused('sentAt', 'type'), String(value));
    }
  });
});

describe('boundedString', () => {
  test('accepts strings up to the length, the empty one included', () => {
    assert.equal(boundedString('', 0), '');
    assert.equal(boundedString('abc', 3), 'abc');
  });

  test('refuses longer strings without repeating them', () => {
    const hostile = `\u001b[2J${'x'.repeat(10_000)}\u202e`;
    assert.throws(() => boundedString(hostile, 255, 'name'), refused('name', 'length'));
    assert.throws(() => boundedString('abcd', 3, 'name'), refused('name', 'length'));
  });

  test('refuses what is not a string', () => {
    for (const value of [1, null, undefined, ['a'], { a: 1 }, Buffer.from('a')]) {
      assert.throws(() => boundedString(value, 10, 'name'), refused('name', 'type'));
    }
  });
});

describe('boundedArray and plainObject', () => {
  test('boundedArray accepts short lists and refuses long ones and non-lists', () => {
    assert.deepEqual(boundedArray([1, 2], 2), [1, 2]);
    assert.throws(() => boundedArray([1, 2, 3], 2, 'files'), refused('files', 'length'));
    assert.throws(() => boundedArray({ length: 1 }, 2, 'files'), refused('files', 'type'));
  });

  test('plainObject accepts objects only', () => {
    assert.deepEqual(plainObject({ a: 1 }), { a: 1 });
    for (const value of [null, [], 'x', 1, undefined]) {
      assert.throws(() => plainObject(value, 'offer'), refused('offer', 'type'));
    }
  });
});
