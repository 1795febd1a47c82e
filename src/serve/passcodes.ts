/**
 * Passcodes of protected files. The server keeps only a salted scrypt hash of each (in DMP_HOME,
 * never in the served folder), computed with the asynchronous `crypto.scrypt` so the server keeps
 * answering while it hashes, and compares digests in constant time. The passcode itself is never
 * stored, logged, or put in an error.
 *
 * Parameters: OWASP's current advice for scrypt is N=2^17, r=8, p=1 (128 MiB and about half a
 * second per hash on the machines this was measured on). Each record keeps its own parameters,
 * so stronger ones later do not lock out the files protected before.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { chmod } from 'node:fs/promises';
import { DmpError } from '../errors.js';
import { readJsonFile, writeJsonFile } from '../local/files.js';

export interface ScryptCost {
  /** CPU and memory cost, a power of two. */
  N: number;
  /** Block size. */
  r: number;
  /** Parallelism. */
  p: number;
}

/** OWASP Password Storage Cheat Sheet: scrypt with N=2^17, r=8, p=1. */
export const OWASP_SCRYPT: ScryptCost = { N: 2 ** 17, r: 8, p: 1 };

/** What is stored of a passcode. */
export interface PasscodeRecord {
  /** 16 random bytes, base64. */
  salt: string;
  /** The 32-byte scrypt digest, base64. */
  hash: string;
  N: number;
  r: number;
  p: number;
}

export interface PasscodeHasher {
  hash(passcode: string): Promise<PasscodeRecord>;
  /** Whether `passcode` is the one `record` was made from (compared in constant time). */
  verify(passcode: string, record: PasscodeRecord): Promise<boolean>;
}

const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** The most memory one hash may take; OWASP's parameters need 128 MiB (128 * N * r). */
const MAX_MEMORY = 256 * 1024 * 1024;

function checkCost(cost: ScryptCost): void {
  const { N, r, p } = cost;
  const powerOfTwo = Number.isSafeInteger(N) && N > 1 && (N & (N - 1)) === 0;
  if (
    !powerOfTwo ||
    !Number.isSafeInteger(r) ||
    r < 1 ||
    !Number.isSafeInteger(p) ||
    p < 1 ||
    128 * N * r * p > MAX_MEMORY
  ) {
    throw new DmpError('USAGE', 'scrypt parameters out of bounds (N a power of two, 128·N·r·p within 256 MiB)');
  }
}

function derive(passcode: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Typed as the same characters however the keyboard composed them.
    scrypt(passcode.normalize('NFC'), salt, HASH_BYTES, { ...cost, maxmem: MAX_MEMORY + 1024 * 1024 }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

/** Hashes with `cost` (@default OWASP_SCRYPT); verifies with each record's own parameters. */
export function scryptPasscodes(cost: ScryptCost = OWASP_SCRYPT): PasscodeHasher {
  checkCost(cost);
  return {
    async hash(passcode) {
      const salt = randomBytes(SALT_BYTES);
      const hash = await derive(passcode, salt, cost);
      return { salt: salt.toString('base64'), hash: hash.toString('base64'), ...cost };
    },
    async verify(passcode, record) {
      const cost = { N: record.N, r: record.r, p: record.p };
      checkCost(cost);
      const expected = Buffer.from(record.hash, 'base64');
      const salt = Buffer.from(record.salt, 'base64');
      if (expected.length !== HASH_BYTES || salt.length !== SALT_BYTES) return false;
      const actual = await derive(passcode, salt, cost);
      return timingSafeEqual(actual, expected);
    },
  };
}

function isRecord(value: unknown): value is PasscodeRecord {
  const record = value as Partial<PasscodeRecord> | null;
  return (
    typeof record === 'object' &&
    record !== null &&
    typeof record.salt === 'string' &&
    typeof record.hash === 'string' &&
    typeof record.N === 'number' &&
    typeof record.r === 'number' &&
    typeof record.p === 'number'
  );
}

/** The records of one served folder, by path relative to it; a private file (mode 600). */
export class PasscodeStore {
  private constructor(
    private readonly path: string,
    private readonly records: Map<string, PasscodeRecord>,
  ) {}

  static async load(path: string): Promise<PasscodeStore> {
    const stored = await readJsonFile<Record<string, unknown>>(path);
    const records = new Map<string, PasscodeRecord>();
    for (const [rel, value] of Object.entries(stored ?? {})) if (isRecord(value)) records.set(rel, value);
    return new PasscodeStore(path, records);
  }

  get(rel: string): PasscodeRecord | undefined {
    return this.records.get(rel);
  }

  has(rel: string): boolean {
    return this.records.has(rel);
  }

  async set(rel: string, record: PasscodeRecord | undefined): Promise<void> {
    if (record === undefined) {
      if (!this.records.delete(rel)) return;
    } else this.records.set(rel, record);
    await this.save();
  }

  /** Forgets `rel` and everything under it. */
  async forget(rel: string): Promise<void> {
    let changed = false;
    for (const key of [...this.records.keys()]) {
      if (key === rel || key.startsWith(`${rel}/`)) changed = this.records.delete(key) || changed;
    }
    if (changed) await this.save();
  }

  private async save(): Promise<void> {
    await writeJsonFile(this.path, Object.fromEntries(this.records), 0o600);
    // The mode applies to a new file; an older one is made private too.
    await chmod(this.path, 0o600).catch(() => {});
  }
}
