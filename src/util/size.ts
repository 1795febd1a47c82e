import bytes from 'bytes';
import { DmpError } from '../errors.js';

/**
 * Parses a block size or quota: a whole number of bytes, the original DFTP's suffixes `k`, `m`,
 * `g` (any case, x1024^n), or bytes' `b`, `kb`, `mb`, `gb`, `tb` (also x1024^n in bytes 3).
 *
 * The input is validated before it reaches `bytes.parse`, because bytes falls back to parseInt:
 * `bytes.parse('1k')`, `'1m'`, `'1KiB'` and `'1.5'` all return 1, which would silently turn a
 * 1 KiB block into a 1-byte one.
 */
const SEED_SUFFIXES: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

export function parseSize(text: string, what = 'size'): number {
  const trimmed = String(text).trim().toLowerCase();
  const match = /^(\d+(?:\.\d+)?)\s*(k|m|g|b|kb|mb|gb|tb)?$/.exec(trimmed);
  if (!match) {
    throw new DmpError('USAGE', `invalid ${what} '${text}': use a number with k, m, g (or kb, mb, gb, tb), e.g. 4m`);
  }
  const [, number, unit] = match;
  let value: number | null;
  if (unit === undefined) value = Number(number);
  else if (unit in SEED_SUFFIXES) value = Number(number) * (SEED_SUFFIXES[unit] ?? 1);
  else value = bytes.parse(`${number}${unit}`);
  if (value === null || !Number.isFinite(value) || !Number.isInteger(value) || value < 1) {
    throw new DmpError('USAGE', `invalid ${what} '${text}': must be a whole number of bytes, at least 1`);
  }
  return value;
}

/** 1536 -> "1.5 KiB": for messages, never for parsing. */
export function formatSize(value: number): string {
  if (value < 1024) return `${value} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let scaled = value / 1024;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  return `${scaled >= 100 ? scaled.toFixed(0) : scaled.toFixed(1).replace(/\.0$/, '')} ${units[unit]}`;
}
