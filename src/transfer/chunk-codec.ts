/**
 * Pure codecs of DFTP: the chunk plan and the chunk plaintext. No I/O.
 *
 * Chunk plaintext (then encrypted as one Fernet token, stored raw):
 *
 *   u16 BE  header length H
 *   H bytes header: JSON {v, from, to, tid, index, offset, length, sha256?}
 *   length bytes of file data
 *
 * The header binds the chunk to its stream and place: a chunk copied into another transfer,
 * renamed to another index or replayed elsewhere fails the receiver's checks. The last chunk
 * carries the SHA-256 of the whole file, computed while the file was streamed.
 */
import { DmpError, isDmpError } from '../errors.js';
import { MAX_JSON_DEPTH, PROTOCOL_VERSION } from '../node/envelope.js';
import { parseBoundedJson } from '../util/bounded-json.js';
import { isPeerId, type PeerId } from '../util/peer-id.js';
import { MAX_CHUNKS, TID_PATTERN } from './names.js';

export interface ChunkHeader {
  v: number;
  from: PeerId;
  to: PeerId;
  tid: string;
  index: number;
  offset: number;
  length: number;
  /** Only in the last chunk: hex SHA-256 of the whole file. */
  sha256?: string;
}

export interface ChunkPlan {
  size: number;
  blockSize: number;
  count: number;
}

/** An empty file still has one (empty) chunk: it carries the checksum. */
export function planChunks(size: number, blockSize: number): ChunkPlan {
  if (!Number.isSafeInteger(size) || size < 0) throw new DmpError('USAGE', `invalid file size ${size}`);
  if (!Number.isSafeInteger(blockSize) || blockSize < 1) throw new DmpError('USAGE', `invalid block size ${blockSize}`);
  const count = Math.max(1, Math.ceil(size / blockSize));
  if (count > MAX_CHUNKS) throw new DmpError('USAGE', `${count} chunks is too many: use a larger block size`);
  return { size, blockSize, count };
}

export function chunkRange(plan: ChunkPlan, index: number): { offset: number; length: number } {
  if (!Number.isInteger(index) || index < 0 || index >= plan.count) {
    throw new DmpError('PROTOCOL', `chunk index ${index} is outside 0..${plan.count - 1}`);
  }
  const offset = index * plan.blockSize;
  return { offset, length: Math.min(plan.blockSize, plan.size - offset) };
}

/** The plaintext as parts, so the data block is never copied to prepend the header. */
export function encodeChunkPlaintext(header: ChunkHeader, data: Buffer): Buffer[] {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.allocUnsafe(2 + json.length);
  prefix.writeUInt16BE(json.length, 0);
  json.copy(prefix, 2);
  return [prefix, data];
}

/**
 * Writes the u16 length and the JSON of `header` just before `dataAt` in `buffer`, where the
 * chunk's data already is, so that the plaintext is `buffer[start, dataAt + data length)` with
 * nothing copied: the same bytes as encodeChunkPlaintext. Returns `start`.
 */
export function writeChunkHeader(header: ChunkHeader, buffer: Buffer, dataAt: number): number {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const start = dataAt - 2 - json.length;
  if (start < 0) throw new RangeError(`a ${json.length}-byte chunk header does not fit before offset ${dataAt}`);
  buffer.writeUInt16BE(json.length, start);
  json.copy(buffer, start + 2);
  return start;
}

export function decodeChunkPlaintext(plaintext: Buffer): { header: ChunkHeader; data: Buffer } {
  if (plaintext.length < 2) throw new DmpError('PROTOCOL', 'chunk is too short');
  const headerLength = plaintext.readUInt16BE(0);
  if (2 + headerLength > plaintext.length) throw new DmpError('PROTOCOL', 'chunk header overruns the chunk');
  let header: Partial<ChunkHeader>;
  try {
    header = parseBoundedJson(plaintext.subarray(2, 2 + headerLength), {
      maxBytes: headerLength,
      maxDepth: MAX_JSON_DEPTH,
    }) as Partial<ChunkHeader>;
  } catch (error) {
    if (!isDmpError(error)) throw error;
    throw new DmpError('PROTOCOL', `chunk header refused: ${error.message}`, { data: error.data, cause: error });
  }
  const data = plaintext.subarray(2 + headerLength);
  if (
    typeof header !== 'object' ||
    header === null ||
    Array.isArray(header) ||
    header.v !== PROTOCOL_VERSION ||
    !isPeerId(header.from) ||
    !isPeerId(header.to) ||
    typeof header.tid !== 'string' ||
    !TID_PATTERN.test(header.tid) ||
    !Number.isSafeInteger(header.index) ||
    !Number.isSafeInteger(header.offset) ||
    header.length !== data.length ||
    (header.sha256 !== undefined && (typeof header.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(header.sha256)))
  ) {
    throw new DmpError('PROTOCOL', 'chunk header is malformed');
  }
  // Known fields only.
  const known: ChunkHeader = {
    v: header.v,
    from: header.from,
    to: header.to,
    tid: header.tid,
    index: header.index as number,
    offset: header.offset as number,
    length: header.length,
    ...(header.sha256 === undefined ? {} : { sha256: header.sha256 }),
  };
  return { header: known, data };
}

/** Checks a decoded chunk against where it was found and the offer's plan. */
export function checkChunk(
  header: ChunkHeader,
  expect: { from: PeerId; to: PeerId; tid: string; index: number; plan: ChunkPlan },
): void {
  const { offset, length } = chunkRange(expect.plan, expect.index);
  if (header.from !== expect.from || header.to !== expect.to) {
    throw new DmpError(
      'PROTOCOL',
      `chunk says ${header.from} -> ${header.to}, found in ${expect.from} -> ${expect.to}`,
    );
  }
  if (header.tid !== expect.tid || header.index !== expect.index) {
    throw new DmpError('PROTOCOL', `chunk is ${header.tid}#${header.index}, found as ${expect.tid}#${expect.index}`);
  }
  if (header.offset !== offset || header.length !== length) {
    throw new DmpError(
      'PROTOCOL',
      `chunk covers ${header.offset}+${header.length}, the offer says ${offset}+${length}`,
    );
  }
  const last = expect.index === expect.plan.count - 1;
  if (last !== (header.sha256 !== undefined))
    throw new DmpError('PROTOCOL', 'only the last chunk carries the checksum');
}

/** Sorted, merged [start, end) ranges of chunk indices: compact "have" sets for status files. */
export function toRanges(indices: Iterable<number>): [number, number][] {
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const index of sorted) {
    const last = ranges.at(-1);
    if (last && last[1] === index) last[1] = index + 1;
    else ranges.push([index, index + 1]);
  }
  return ranges;
}

export function fromRanges(ranges: readonly (readonly [number, number])[]): Set<number> {
  const set = new Set<number>();
  for (const [start, end] of ranges) for (let index = start; index < end; index += 1) set.add(index);
  return set;
}
