import { DmpError } from '../errors.js';

/**
 * Parses a block size or quota: a whole number of bytes, the original DFTP's suffixes `k`, `m`,
 * `g` (any case, x1024^n), or the `bytes` package's `b`, `kb`, `mb`, `gb`, `tb` (x1024^n too).
 *
 * The `bytes` package is not used: `bytes.parse` falls back to parseInt, so `bytes.parse('1k')`, `'1m'`,
 * `'1KiB'` and `'1.5'` all return 1 (a 1 KiB block silently becoming a 1-byte one), and it
 * rounds fractions down ('1.5b' is 1). The units are the same; the validation is ours. (bytes
 * stays a dev dependency: a test pins the behaviour that made us leave it.)
 */
const MULTIPLIERS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  tb: 1024 ** 4,
};

export function parseSize(text: string, what = 'size'): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(String(text).trim().toLowerCase());
  const multiplier = match ? MULTIPLIERS[match[2] ?? ''] : undefined;
  if (!match || multiplier === undefined) {
    throw new DmpError('USAGE', `invalid ${what} '${text}': use a number with k, m, g (or kb, mb, gb, tb), e.g. 4m`);
  }
  const value = Number(match[1]) * multiplier;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new DmpError('USAGE', `invalid ${what} '${text}': must be a whole number of bytes, at least 1`);
  }
  return value;
}

/** 1536 -> "1.5 KiB": for people, never for parsing. */
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
