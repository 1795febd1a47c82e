/**
 * The pure codecs of DFTP (src/transfer/chunk-codec.ts): the chunk plan, the chunk plaintext
 * and the checks that bind a chunk to its transfer, index, offset and length.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { decrypt, encrypt, generateKey, parseKey } from '../../src/crypto/fernet.js';
import { DmpError } from '../../src/errors.js';
import {
  type ChunkHeader,
  type ChunkPlan,
  checkChunk,
  chunkRange,
  decodeChunkPlaintext,
  encodeChunkPlaintext,
  fromRanges,
  planChunks,
  toRanges,
  writeChunkHeader,
} from '../../src/transfer/chunk-codec.js';
import { MAX_CHUNKS } from '../../src/transfer/names.js';
import { parsePeerId } from '../../src/util/peer-id.js';
import { seededRandom } from '../../src/util/random.js';

const ALICE = parsePeerId('alice');
const BOB = parsePeerId('bob');
const CAROL = parsePeerId('carol');
const TID = '0123456789abcdef';
const OTHER_TID = 'fedcba9876543210';
const SHA = 'a'.repeat(64);

function isCode(code: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof DmpError, `expected a DmpError, got ${String(error)}`);
    assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
    return true;
  };
}

/** Every chunk of a plan, in order. */
function ranges(plan: ChunkPlan): { offset: number; length: number }[] {
  return Array.from({ length: plan.count }, (_, index) => chunkRange(plan, index));
}

/** The ranges tile [0, size) exactly, in order, each at most one block and only the last shorter. */
function assertTiles(plan: ChunkPlan): void {
  let next = 0;
  const all = ranges(plan);
  for (const [index, { offset, length }] of all.entries()) {
    assert.equal(offset, next, `chunk ${index} starts at ${offset}, expected ${next}`);
    assert.equal(offset, index * plan.blockSize);
    assert.ok(length <= plan.blockSize, `chunk ${index} is longer than a block`);
    if (index < plan.count - 1) assert.equal(length, plan.blockSize, `chunk ${index} is short but not the last`);
    next += length;
  }
  assert.equal(next, plan.size, 'the chunks do not cover the file exactly');
}

function concat(parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts.map((part) => Buffer.from(part.buffer, part.byteOffset, part.byteLength)));
}

function header(overrides: Partial<ChunkHeader> = {}): ChunkHeader {
  return { v: 2, from: ALICE, to: BOB, tid: TID, index: 0, offset: 0, length: 0, ...overrides };
}

/** A plaintext whose header is the given object, serialised as is (possibly malformed). */
function rawPlaintext(headerObject: unknown, data: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(headerObject), 'utf8');
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(json.length, 0);
  return Buffer.concat([prefix, json, data]);
}

describe('planChunks and chunkRange', () => {
  test('an empty file has exactly one empty chunk (it carries the checksum)', () => {
    const plan = planChunks(0, 4096);
    assert.deepEqual(plan, { size: 0, blockSize: 4096, count: 1 });
    assert.deepEqual(chunkRange(plan, 0), { offset: 0, length: 0 });
    assertTiles(plan);
  });

  test('a 1-byte file has one 1-byte chunk', () => {
    const plan = planChunks(1, 4096);
    assert.equal(plan.count, 1);
    assert.deepEqual(chunkRange(plan, 0), { offset: 0, length: 1 });
  });

  test('a size that is an exact multiple of the block size has no empty trailing chunk', () => {
    for (const k of [1, 2, 3, 17]) {
      const plan = planChunks(k * 1024, 1024);
      assert.equal(plan.count, k, `${k} blocks`);
      assert.deepEqual(chunkRange(plan, k - 1), { offset: (k - 1) * 1024, length: 1024 });
      assertTiles(plan);
    }
  });

  test('one byte over a multiple of the block size adds a 1-byte last chunk', () => {
    for (const k of [1, 2, 5]) {
      const plan = planChunks(k * 1024 + 1, 1024);
      assert.equal(plan.count, k + 1);
      assert.deepEqual(chunkRange(plan, k), { offset: k * 1024, length: 1 });
      assertTiles(plan);
    }
  });

  test('one byte under a multiple of the block size shortens the last chunk', () => {
    const plan = planChunks(3 * 1024 - 1, 1024);
    assert.equal(plan.count, 3);
    assert.deepEqual(chunkRange(plan, 2), { offset: 2048, length: 1023 });
    assertTiles(plan);
  });

  test('a block size of 1 makes one chunk per byte', () => {
    const plan = planChunks(7, 1);
    assert.equal(plan.count, 7);
    assert.deepEqual(
      ranges(plan),
      [0, 1, 2, 3, 4, 5, 6].map((offset) => ({ offset, length: 1 })),
    );
  });

  test('first and last chunk of a large plan (over 4 GiB: offsets beyond 32 bits)', () => {
    const size = 4 * 1024 ** 3 + 3;
    const blockSize = 4 * 1024 ** 2;
    const plan = planChunks(size, blockSize);
    assert.equal(plan.count, 1025);
    assert.deepEqual(chunkRange(plan, 0), { offset: 0, length: blockSize });
    assert.deepEqual(chunkRange(plan, 1024), { offset: 4 * 1024 ** 3, length: 3 });
    assertTiles(plan);
  });

  test('random sizes and block sizes always tile the file (seed 11)', () => {
    const random = seededRandom(11);
    for (let round = 0; round < 300; round += 1) {
      const blockSize = 1 + Math.floor(random() * 5000);
      const size = Math.floor(random() * 60_000);
      const plan = planChunks(size, blockSize);
      assert.equal(plan.count, Math.max(1, Math.ceil(size / blockSize)));
      assertTiles(plan);
    }
  });

  test('an index outside the plan throws', () => {
    const plan = planChunks(10 * 1024, 1024);
    for (const index of [-1, 10, 11, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => chunkRange(plan, index), isCode('PROTOCOL'), `index ${index}`);
    }
    const empty = planChunks(0, 1024);
    assert.throws(() => chunkRange(empty, 1), isCode('PROTOCOL'));
  });

  test('invalid sizes and block sizes are usage errors', () => {
    assert.throws(() => planChunks(-1, 1024), isCode('USAGE'));
    assert.throws(() => planChunks(1.5, 1024), isCode('USAGE'));
    assert.throws(() => planChunks(Number.NaN, 1024), isCode('USAGE'));
    assert.throws(() => planChunks(100, 0), isCode('USAGE'));
    assert.throws(() => planChunks(100, -4), isCode('USAGE'));
    assert.throws(() => planChunks(100, 2.5), isCode('USAGE'));
  });

  test('more chunks than a chunk name can number is refused', () => {
    assert.throws(() => planChunks(MAX_CHUNKS + 1, 1), isCode('USAGE'));
    assert.equal(planChunks(MAX_CHUNKS, 1).count, MAX_CHUNKS);
  });
});

describe('chunk plaintext', () => {
  test('encode then decode gives back the header and the data', () => {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) % 256));
    const h = header({ index: 3, offset: 3000, length: data.length });
    const parts = encodeChunkPlaintext(h, data);
    const plain = concat(parts);
    const decoded = decodeChunkPlaintext(plain);
    assert.deepEqual(decoded.header, h);
    assert.ok(decoded.data.equals(data));
  });

  test('the layout is u16 BE header length, JSON header, data (what a Python reader expects)', () => {
    const data = Buffer.from('hello');
    const h = header({ length: 5, sha256: SHA });
    const plain = concat(encodeChunkPlaintext(h, data));
    const length = plain.readUInt16BE(0);
    assert.deepEqual(JSON.parse(plain.subarray(2, 2 + length).toString('utf8')), h);
    assert.equal(plain.subarray(2 + length).toString(), 'hello');
  });

  test('writeChunkHeader before data already in place gives the bytes of encodeChunkPlaintext', () => {
    const data = Buffer.from(Array.from({ length: 777 }, (_, i) => (i * 13) % 256));
    for (const h of [header({ length: data.length }), header({ index: 4, length: data.length, sha256: SHA })]) {
      const buffer = Buffer.alloc(1024 + data.length, 0xee);
      data.copy(buffer, 1024);
      const start = writeChunkHeader(h, buffer, 1024);
      assert.deepEqual(buffer.subarray(start), concat(encodeChunkPlaintext(h, data)));
    }
    assert.throws(() => writeChunkHeader(header({ sha256: SHA }), Buffer.alloc(2000), 50), RangeError);
  });

  test('the data part is not copied (the block is handed on as is)', () => {
    const data = Buffer.alloc(64 * 1024, 1);
    const parts = encodeChunkPlaintext(header({ length: data.length }), data);
    assert.equal(parts.length, 2);
    assert.equal(parts[1], data);
  });

  test('an empty chunk with the checksum round-trips', () => {
    const h = header({ sha256: createHash('sha256').update('').digest('hex') });
    const decoded = decodeChunkPlaintext(concat(encodeChunkPlaintext(h, Buffer.alloc(0))));
    assert.deepEqual(decoded.header, h);
    assert.equal(decoded.data.length, 0);
  });

  test('round trip through a Fernet token, as stored in the relay', () => {
    const key = parseKey(generateKey());
    const data = Buffer.from('some bytes of the file \u0000\u00ff', 'latin1');
    const h = header({ index: 0, length: data.length, sha256: SHA });
    const token = encrypt(key, encodeChunkPlaintext(h, data));
    const decoded = decodeChunkPlaintext(decrypt(key, token));
    assert.deepEqual(decoded.header, h);
    assert.ok(decoded.data.equals(data));
  });

  test('a truncated plaintext is rejected', () => {
    const data = Buffer.from('0123456789');
    const plain = concat(encodeChunkPlaintext(header({ length: data.length }), data));
    assert.throws(() => decodeChunkPlaintext(Buffer.alloc(0)), isCode('PROTOCOL'));
    assert.throws(() => decodeChunkPlaintext(plain.subarray(0, 1)), isCode('PROTOCOL'));
    assert.throws(() => decodeChunkPlaintext(plain.subarray(0, 2)), isCode('PROTOCOL'));
    // Cut inside the header.
    assert.throws(() => decodeChunkPlaintext(plain.subarray(0, 20)), isCode('PROTOCOL'));
    // Cut inside the data: the length no longer matches.
    assert.throws(() => decodeChunkPlaintext(plain.subarray(0, plain.length - 1)), isCode('PROTOCOL'));
  });

  test('a header length that overruns the chunk is rejected', () => {
    const plain = concat(encodeChunkPlaintext(header({ length: 4 }), Buffer.from('abcd')));
    const bad = Buffer.from(plain);
    bad.writeUInt16BE(plain.length, 0);
    assert.throws(() => decodeChunkPlaintext(bad), isCode('PROTOCOL'));
    bad.writeUInt16BE(0xffff, 0);
    assert.throws(() => decodeChunkPlaintext(bad), isCode('PROTOCOL'));
  });

  test('a header length that cuts the JSON short or long is rejected', () => {
    const plain = concat(encodeChunkPlaintext(header({ length: 4 }), Buffer.from('abcd')));
    const length = plain.readUInt16BE(0);
    for (const wrong of [0, 1, length - 1, length + 1]) {
      const bad = Buffer.from(plain);
      bad.writeUInt16BE(wrong, 0);
      assert.throws(() => decodeChunkPlaintext(bad), isCode('PROTOCOL'), `header length ${wrong}`);
    }
  });

  test('a header whose length does not match the data is rejected', () => {
    const data = Buffer.from('abcdef');
    for (const length of [0, 5, 7, 1_000_000]) {
      assert.throws(
        () => decodeChunkPlaintext(rawPlaintext(header({ length }), data)),
        isCode('PROTOCOL'),
        `length ${length}`,
      );
    }
  });

  test('a bad transfer id is rejected', () => {
    const data = Buffer.from('x');
    for (const tid of ['', '0123', '0123456789ABCDEF', '0123456789abcdeg', '0123456789abcdef0', '../../etc', 7]) {
      assert.throws(
        () => decodeChunkPlaintext(rawPlaintext({ ...header({ length: 1 }), tid }, data)),
        isCode('PROTOCOL'),
        `tid ${JSON.stringify(tid)}`,
      );
    }
  });

  test('other malformed headers are rejected', () => {
    const data = Buffer.from('xy');
    const good = header({ length: 2 });
    const bad: unknown[] = [
      null,
      [],
      'header',
      42,
      { ...good, v: 1 },
      { ...good, v: undefined },
      { ...good, from: 'Alice' },
      { ...good, from: '../x' },
      { ...good, to: '' },
      { ...good, index: '0' },
      { ...good, index: 1.5 },
      { ...good, offset: null },
      { ...good, length: '2' },
      { ...good, sha256: 'abc' },
      { ...good, sha256: 'A'.repeat(64) },
      { ...good, sha256: 42 },
    ];
    for (const object of bad) {
      assert.throws(
        () => decodeChunkPlaintext(rawPlaintext(object, data)),
        isCode('PROTOCOL'),
        `header ${JSON.stringify(object)}`,
      );
    }
    const notJson = Buffer.concat([Buffer.from([0, 5]), Buffer.from('{nope'), data]);
    assert.throws(() => decodeChunkPlaintext(notJson), isCode('PROTOCOL'));
    const notUtf8Json = Buffer.concat([Buffer.from([0, 2]), Buffer.from([0xff, 0xfe]), data]);
    assert.throws(() => decodeChunkPlaintext(notUtf8Json), isCode('PROTOCOL'));
  });
});

describe('checkChunk binds a chunk to its place', () => {
  // 3 chunks of 1000 bytes: 0..999, 1000..1999, 2000..2499.
  const plan = planChunks(2500, 1000);
  const expect = (index: number) => ({ from: ALICE, to: BOB, tid: TID, index, plan });
  const good = (index: number): ChunkHeader => {
    const { offset, length } = chunkRange(plan, index);
    return header({ index, offset, length, ...(index === plan.count - 1 ? { sha256: SHA } : {}) });
  };

  test('correct chunks pass', () => {
    for (let index = 0; index < plan.count; index += 1) checkChunk(good(index), expect(index));
    const single = planChunks(0, 1000);
    checkChunk(header({ sha256: SHA }), { from: ALICE, to: BOB, tid: TID, index: 0, plan: single });
  });

  test('a chunk from or to another peer is rejected', () => {
    assert.throws(() => checkChunk({ ...good(0), from: CAROL }, expect(0)), isCode('PROTOCOL'));
    assert.throws(() => checkChunk({ ...good(0), to: CAROL }, expect(0)), isCode('PROTOCOL'));
    // The reverse direction.
    assert.throws(() => checkChunk({ ...good(0), from: BOB, to: ALICE }, expect(0)), isCode('PROTOCOL'));
  });

  test('a chunk of another transfer is rejected', () => {
    assert.throws(() => checkChunk({ ...good(1), tid: OTHER_TID }, expect(1)), isCode('PROTOCOL'));
  });

  test('a chunk renamed to another index is rejected', () => {
    // File chunk-<tid>-00000001 holding the header of chunk 0.
    assert.throws(() => checkChunk(good(0), expect(1)), isCode('PROTOCOL'));
    assert.throws(() => checkChunk(good(1), expect(0)), isCode('PROTOCOL'));
    assert.throws(() => checkChunk({ ...good(1), index: 0 }, expect(1)), isCode('PROTOCOL'));
  });

  test('a wrong offset or length is rejected', () => {
    assert.throws(() => checkChunk({ ...good(1), offset: 999 }, expect(1)), isCode('PROTOCOL'));
    assert.throws(() => checkChunk({ ...good(1), offset: 1001 }, expect(1)), isCode('PROTOCOL'));
    assert.throws(() => checkChunk({ ...good(1), length: 999 }, expect(1)), isCode('PROTOCOL'));
    assert.throws(() => checkChunk({ ...good(2), length: 1000 }, expect(2)), isCode('PROTOCOL'));
    assert.throws(() => checkChunk({ ...good(2), length: 499 }, expect(2)), isCode('PROTOCOL'));
  });

  test('an index outside the plan is rejected', () => {
    assert.throws(() => checkChunk(header({ index: 3, offset: 3000, length: 0 }), expect(3)), isCode('PROTOCOL'));
  });

  test('only the last chunk carries the checksum', () => {
    assert.throws(() => checkChunk({ ...good(0), sha256: SHA }, expect(0)), isCode('PROTOCOL'));
    assert.throws(() => checkChunk({ ...good(1), sha256: SHA }, expect(1)), isCode('PROTOCOL'));
    const { sha256: _drop, ...last } = good(2);
    assert.throws(() => checkChunk(last, expect(2)), isCode('PROTOCOL'));
    const single = planChunks(0, 1000);
    assert.throws(
      () => checkChunk(header(), { from: ALICE, to: BOB, tid: TID, index: 0, plan: single }),
      isCode('PROTOCOL'),
    );
  });

  test('the plan of the offer decides, not the chunk: a chunk from a plan with another block size fails', () => {
    const otherPlan = planChunks(2500, 500);
    const { offset, length } = chunkRange(otherPlan, 1);
    assert.throws(() => checkChunk(header({ index: 1, offset, length }), expect(1)), isCode('PROTOCOL'));
  });
});

describe('toRanges and fromRanges', () => {
  test('known sets', () => {
    assert.deepEqual(toRanges([]), []);
    assert.deepEqual(toRanges([0]), [[0, 1]]);
    assert.deepEqual(toRanges([3, 1, 2, 2, 7, 0, 9, 8]), [
      [0, 4],
      [7, 10],
    ]);
    assert.deepEqual(toRanges(new Set([5, 6, 10])), [
      [5, 7],
      [10, 11],
    ]);
    assert.deepEqual([...fromRanges([])], []);
    assert.deepEqual(
      [
        ...fromRanges([
          [0, 2],
          [5, 6],
        ]),
      ].sort((a, b) => a - b),
      [0, 1, 5],
    );
  });

  test('ranges are sorted, disjoint, non-adjacent and non-empty', () => {
    const random = seededRandom(21);
    for (let round = 0; round < 200; round += 1) {
      const set = new Set<number>();
      const n = Math.floor(random() * 300);
      for (let i = 0; i < n; i += 1) set.add(Math.floor(random() * 400));
      const result = toRanges(set);
      for (const [index, [start, end]] of result.entries()) {
        assert.ok(start < end, `empty range ${start},${end}`);
        const previous = result[index - 1];
        if (previous) assert.ok(previous[1] < start, `ranges ${previous} and ${start},${end} touch or overlap`);
      }
    }
  });

  test('round trip on random sets (seed 31), including through JSON as in a status file', () => {
    const random = seededRandom(31);
    for (let round = 0; round < 300; round += 1) {
      const set = new Set<number>();
      const universe = 1 + Math.floor(random() * 2000);
      const density = random();
      for (let i = 0; i < universe; i += 1) if (random() < density) set.add(i);
      const ranges = toRanges(set);
      assert.deepEqual(fromRanges(ranges), set);
      const viaJson = JSON.parse(JSON.stringify(ranges)) as [number, number][];
      assert.deepEqual(fromRanges(viaJson), set);
      assert.deepEqual(toRanges(fromRanges(ranges)), ranges);
    }
  });

  test('a full set of a large transfer compresses to one range', () => {
    const all = Array.from({ length: 100_000 }, (_, i) => 99_999 - i);
    assert.deepEqual(toRanges(all), [[0, 100_000]]);
    assert.equal(fromRanges([[0, 100_000]]).size, 100_000);
  });
});

describe('chunk header against hostile contents', () => {
  function plaintextWith(headerJson: string): Buffer {
    const json = Buffer.from(headerJson);
    const prefix = Buffer.alloc(2);
    prefix.writeUInt16BE(json.length, 0);
    return Buffer.concat([prefix, json, Buffer.from('data')]);
  }
  const header = `"v":2,"from":"alice","to":"bob","tid":"${TID}","index":0,"offset":0,"length":4`;

  test('a field nested 10,000 deep is a PROTOCOL error (too-deep), not a stack overflow', () => {
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    assert.throws(
      () => decodeChunkPlaintext(plaintextWith(`{${header},"x":${deep}}`)),
      (error: unknown) => isCode('PROTOCOL')(error) && (error as DmpError).data.reason === 'too-deep',
    );
  });

  test('fields nobody asked for are dropped; a header that is a list is refused', () => {
    const { header: decoded } = decodeChunkPlaintext(plaintextWith(`{${header},"x":[[1]]}`));
    assert.deepEqual(Object.keys(decoded).sort(), ['from', 'index', 'length', 'offset', 'tid', 'to', 'v']);
    assert.throws(() => decodeChunkPlaintext(plaintextWith('[1]')), isCode('PROTOCOL'));
    assert.throws(() => decodeChunkPlaintext(plaintextWith(`{${header},"sha256":[1]}`)), isCode('PROTOCOL'));
  });
});
