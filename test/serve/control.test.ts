/**
 * The served folder's codecs, pure: requests with bounds (a bad one becomes its answer, never an
 * exception), responses split into parts that fit a control file and joined back, and the paths
 * a client may name.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isDmpError } from '../../src/errors.js';
import {
  joinResponse,
  type ListEntry,
  MAX_PART_BYTES,
  parseRequestBody,
  parseResponsePart,
  splitResponse,
} from '../../src/serve/control.js';
import { parseServedPath } from '../../src/serve/served-path.js';

const ID = '0123456789abcdef';

describe('serve codecs', () => {
  test('requests: the four ops, and every malformed body as a one-line reason', () => {
    assert.deepEqual(parseRequestBody({ id: ID, op: 'ls', path: 'sub' }), {
      id: ID,
      request: { op: 'ls', path: 'sub' },
    });
    assert.deepEqual(parseRequestBody({ id: ID, op: 'ls' }), { id: ID, request: { op: 'ls', path: '' } });
    assert.deepEqual(parseRequestBody({ id: ID, op: 'get', name: 'a', passcode: 'p' }), {
      id: ID,
      request: { op: 'get', name: 'a', passcode: 'p' },
    });
    assert.deepEqual(parseRequestBody({ id: ID, op: 'put', name: 'a', size: 3, mtimeMs: 1.5, protect: true }), {
      id: ID,
      request: { op: 'put', name: 'a', size: 3, mtimeMs: 1.5, protect: true },
    });
    const bad: [unknown, RegExp][] = [
      [null, /request must be an object/],
      [[], /request must be an object/],
      [{ op: 'ls' }, /request id/],
      [{ id: 'ABC', op: 'ls' }, /request id/],
      [{ id: ID, op: 'format' }, /unknown op/],
      [{ id: ID, op: { $gt: 1 } }, /op must be/],
      [{ id: ID, op: 'get' }, /name must be a string/],
      [{ id: ID, op: 'get', name: '' }, /name must not be empty/],
      [{ id: ID, op: 'get', name: 'x'.repeat(5000) }, /at most 4096/],
      [{ id: ID, op: 'get', name: 'a', passcode: '' }, /passcode must not be empty/],
      [{ id: ID, op: 'get', name: 'a', passcode: 'p'.repeat(2000) }, /passcode must be at most/],
      [{ id: ID, op: 'rm', name: ['a'] }, /name must be a string/],
      [{ id: ID, op: 'put', name: 'a', size: -1, mtimeMs: 0 }, /size must be from 0/],
      [{ id: ID, op: 'put', name: 'a', size: 1e300, mtimeMs: 0 }, /size must be an integer/],
      [{ id: ID, op: 'put', name: 'a', size: 1, mtimeMs: 1e300 }, /mtimeMs/],
      [{ id: ID, op: 'put', name: 'a', size: 1, mtimeMs: 0, protect: 'yes' }, /protect/],
    ];
    for (const [body, reason] of bad) {
      const parsed = parseRequestBody(body);
      assert.ok('bad' in parsed, JSON.stringify(body));
      assert.match(parsed.bad, reason);
      assert.equal(parsed.bad.includes('\n'), false);
      // What was given is described, never echoed.
      assert.equal(parsed.bad.includes('x'.repeat(100)), false);
    }
  });

  test('a listing of 10,000 entries splits into parts that fit a control file and joins back', () => {
    const entries: ListEntry[] = Array.from({ length: 10_000 }, (_, index) => ({
      name: `file-${String(index).padStart(5, '0')}-${'n'.repeat(40)}.bin`,
      type: 'file',
      size: index * 1000,
      mtimeMs: 1_780_000_000_000.123,
      sha256: 'ab'.repeat(32),
      ...(index % 7 === 0 ? { protected: true } : {}),
    }));
    const parts = splitResponse({ id: ID, ok: true, entries, truncated: false });
    assert.ok(parts.length > 1);
    for (const part of parts) {
      assert.ok(Buffer.byteLength(JSON.stringify(part)) <= MAX_PART_BYTES);
      assert.equal(part.parts, parts.length);
    }
    const parsed = parts.map((part) => parseResponsePart(JSON.parse(JSON.stringify(part))));
    assert.deepEqual(joinResponse(parsed.reverse()), { id: ID, ok: true, entries, truncated: false });
    assert.throws(() => joinResponse(parsed.slice(1)), /missing/);
  });

  test('responses are checked too: a refusal must say why, entries must be names', () => {
    assert.throws(() => parseResponsePart({ id: ID, part: 0, parts: 1, ok: false }), /must say why/);
    assert.throws(
      () =>
        parseResponsePart({
          id: ID,
          part: 0,
          parts: 1,
          ok: true,
          entries: [{ name: '../x', type: 'file', size: 1, mtimeMs: 0 }],
        }),
      /not a name/,
    );
    assert.throws(() => parseResponsePart({ id: ID, part: 2, parts: 2, ok: true }), /part must be from 0 to 1/);
    assert.throws(
      () => parseResponsePart({ id: ID, part: 0, parts: 1, ok: false, error: { code: 'rm -rf', message: 'x' } }),
      /unknown/,
    );
  });

  test('paths a client may name: plain, relative, visible', () => {
    assert.deepEqual(parseServedPath('a/b.txt'), ['a', 'b.txt']);
    assert.deepEqual(parseServedPath('sub/'), ['sub']);
    assert.deepEqual(parseServedPath('', { allowRoot: true }), []);
    for (const [path, reason] of [
      ['', 'bad-path'],
      ['/etc/passwd', 'bad-path'],
      ['../x', 'bad-path'],
      ['a/../../x', 'bad-path'],
      ['a//b', 'bad-path'],
      ['./a', 'bad-path'],
      ['a\\..\\b', 'bad-path'],
      ['a\u0000b', 'bad-path'],
      ['a\u001b[31m', 'bad-path'],
      [`${'é'.repeat(200)}`, 'bad-path'],
      ['.ssh/id_ed25519', 'not-served'],
      ['sub/.x.0123456789abcdef.dftp-part', 'not-served'],
    ] as const) {
      assert.throws(
        () => parseServedPath(path),
        (error: unknown) => isDmpError(error) && error.data.reason === reason,
        JSON.stringify(path),
      );
    }
  });
});
