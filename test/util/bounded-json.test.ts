import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isDmpError } from '../../src/errors.js';
import { parseBoundedJson } from '../../src/util/bounded-json.js';
import { seededRandom } from '../../src/util/random.js';

const LIMITS = { maxBytes: 64 * 1024, maxDepth: 32 };

function refused(reason: string) {
  return (error: unknown) => {
    assert.ok(isDmpError(error, 'PROTOCOL'), String(error));
    assert.equal(error.data.reason, reason);
    assert.doesNotMatch(error.message, /\n/);
    return true;
  };
}

const nested = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth);

describe('parseBoundedJson', () => {
  test('parses JSON from bytes and from text alike', () => {
    const text = '{"name":"fichier é.txt","size":12,"parts":[1,[2,{"x":null}]],"ok":true}';
    const expected = { name: 'fichier é.txt', size: 12, parts: [1, [2, { x: null }]], ok: true };
    assert.deepEqual(parseBoundedJson(Buffer.from(text), LIMITS), expected);
    assert.deepEqual(parseBoundedJson(new TextEncoder().encode(text), LIMITS), expected);
    assert.deepEqual(parseBoundedJson(text, LIMITS), expected);
    assert.equal(parseBoundedJson('42', LIMITS), 42);
    assert.equal(parseBoundedJson(' "s" ', LIMITS), 's');
    assert.equal(parseBoundedJson('null', LIMITS), null);
  });

  test('10,000 nested arrays are refused before anything walks them', () => {
    for (const input of [nested(10_000), Buffer.from(nested(10_000)), nested(10_000, '{"a":', '}')]) {
      assert.throws(() => parseBoundedJson(input, { maxBytes: 1024 * 1024, maxDepth: 32 }), refused('too-deep'));
    }
    // Even when the text is not JSON at all: the scan comes first, and stops early.
    assert.throws(
      () => parseBoundedJson('['.repeat(100_000), { maxBytes: 1024 * 1024, maxDepth: 32 }),
      refused('too-deep'),
    );
  });

  test('depth counts arrays and objects; maxDepth itself is allowed', () => {
    assert.deepEqual(parseBoundedJson(nested(32), LIMITS), JSON.parse(nested(32)));
    assert.throws(() => parseBoundedJson(nested(33), LIMITS), refused('too-deep'));
    assert.deepEqual(parseBoundedJson('{"a":[1]}', { maxBytes: 100, maxDepth: 2 }), { a: [1] });
    assert.throws(() => parseBoundedJson('{"a":[[1]]}', { maxBytes: 100, maxDepth: 2 }), refused('too-deep'));
    assert.equal(parseBoundedJson('1', { maxBytes: 100, maxDepth: 0 }), 1);
    assert.throws(() => parseBoundedJson('[]', { maxBytes: 100, maxDepth: 0 }), refused('too-deep'));
    // Siblings do not add up.
    assert.deepEqual(parseBoundedJson('[[1],[2],[3],{"a":1}]', { maxBytes: 100, maxDepth: 2 }), [
      [1],
      [2],
      [3],
      { a: 1 },
    ]);
  });

  test('brackets inside strings, escaped quotes included, do not count', () => {
    const limits = { maxBytes: 1000, maxDepth: 1 };
    assert.deepEqual(parseBoundedJson('{"a":"[[[[{{{{"}', limits), { a: '[[[[{{{{' });
    assert.deepEqual(parseBoundedJson('["\\"[[[[", "x"]', limits), ['"[[[[', 'x']);
    assert.deepEqual(parseBoundedJson(Buffer.from('["é[[[\\\\"]'), limits), ['é[[[\\']);
    // An escaped backslash ends before the quote: what follows is outside the string again.
    assert.throws(() => parseBoundedJson('["\\\\",[1]]', limits), refused('too-deep'));
  });

  test('input larger than maxBytes is refused, counted in UTF-8 bytes', () => {
    assert.equal(parseBoundedJson('"abcd"', { maxBytes: 6, maxDepth: 1 }), 'abcd');
    assert.throws(() => parseBoundedJson('"abcde"', { maxBytes: 6, maxDepth: 1 }), refused('too-large'));
    assert.throws(() => parseBoundedJson(Buffer.from('"abcde"'), { maxBytes: 6, maxDepth: 1 }), refused('too-large'));
    // 'é' is two bytes.
    assert.throws(() => parseBoundedJson('"éé"', { maxBytes: 5, maxDepth: 1 }), refused('too-large'));
    assert.equal(parseBoundedJson('"éé"', { maxBytes: 6, maxDepth: 1 }), 'éé');
  });

  test('bytes that are not UTF-8, and text that is not JSON, are refused', () => {
    assert.throws(() => parseBoundedJson(Buffer.from([0x22, 0xff, 0xfe, 0x22]), LIMITS), refused('not-utf8'));
    assert.throws(() => parseBoundedJson(Buffer.from([0x22, 0xc3, 0x22]), LIMITS), refused('not-utf8'));
    for (const text of ['', '{', '[1,]', '{"a":1', ']]]][[[[', "{'a':1}", 'undefined', 'NaN', '1 2']) {
      assert.throws(() => parseBoundedJson(text, LIMITS), refused('not-json'), JSON.stringify(text));
    }
  });

  test('random bytes only ever give a value or a PROTOCOL error (seed 31)', () => {
    const random = seededRandom(31);
    const pieces = ['[', ']', '{', '}', '"', '\\', ':', ',', '1', 'a', 'é', 'null', ' ', '\u0000'];
    for (let round = 0; round < 3000; round += 1) {
      let text = '';
      const length = Math.floor(random() * 60);
      for (let i = 0; i < length; i += 1) text += pieces[Math.floor(random() * pieces.length)];
      const input = round % 2 === 0 ? text : Buffer.from(text);
      try {
        parseBoundedJson(input, { maxBytes: 100, maxDepth: 4 });
      } catch (error) {
        assert.ok(isDmpError(error, 'PROTOCOL'), `${JSON.stringify(text)}: ${String(error)}`);
      }
    }
  });
});
