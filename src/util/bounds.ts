/**
 * Small schema checks with bounds, for every field read from the relay before it is stored or
 * acted on: an offer with `mtimeMs: 1e300` crashed utime at the very end of a transfer, a block
 * size of 1 for a size of 1e9 asked for a billion chunks. Each check returns the value, typed,
 * or throws a PROTOCOL DmpError naming the field (`data = { field, reason }`, reason one of
 * 'type', 'range', 'length'). Messages describe a bad value without repeating it: it came from
 * the other side and may be huge or full of terminal escapes.
 */
import { DmpError } from '../errors.js';

/** The earliest time saneTime() accepts: 2000-01-01T00:00:00Z, in ms since the epoch. */
export const SANE_TIME_MIN = Date.UTC(2000, 0, 1);
/** The latest time saneTime() accepts: 2200-01-01T00:00:00Z, in ms since the epoch. */
export const SANE_TIME_MAX = Date.UTC(2200, 0, 1);

/** Why a bounds check refused a value (`data.reason` of the PROTOCOL error). */
export type BoundsRefusal = 'type' | 'range' | 'length';

/** A safe integer from `min` to `max`, both included. */
export function boundedInt(value: unknown, min: number, max: number, field = 'value'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw refuse(field, 'type', `${field} must be an integer, not ${describe(value)}`);
  }
  if (value < min || value > max) {
    throw refuse(field, 'range', `${field} must be from ${min} to ${max}, not ${value}`, { min, max });
  }
  return value;
}

/**
 * A time in ms since the epoch between SANE_TIME_MIN and SANE_TIME_MAX (fractions allowed:
 * file times have them). Anything else is a forgery or a broken clock, and some of it
 * (1e300, NaN) makes the file system's own calls fail.
 */
export function saneTime(value: unknown, field = 'time'): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw refuse(field, 'type', `${field} must be a time in ms since 1970, not ${describe(value)}`);
  }
  if (value < SANE_TIME_MIN || value > SANE_TIME_MAX) {
    throw refuse(field, 'range', `${field} must be a time between the years 2000 and 2200, not ${value}`, {
      min: SANE_TIME_MIN,
      max: SANE_TIME_MAX,
    });
  }
  return value;
}

/** A string of at most `maxLength` UTF-16 code units (what `.length` counts). */
export function boundedString(value: unknown, maxLength: number, field = 'value'): string {
  if (typeof value !== 'string') throw refuse(field, 'type', `${field} must be a string, not ${describe(value)}`);
  if (value.length > maxLength) {
    throw refuse(field, 'length', `${field} must be at most ${maxLength} characters, not ${value.length}`, {
      maxLength,
    });
  }
  return value;
}

/** An array of at most `maxLength` elements (their own checks are the caller's). */
export function boundedArray(value: unknown, maxLength: number, field = 'value'): unknown[] {
  if (!Array.isArray(value)) throw refuse(field, 'type', `${field} must be a list, not ${describe(value)}`);
  if (value.length > maxLength) {
    throw refuse(field, 'length', `${field} must have at most ${maxLength} elements, not ${value.length}`, {
      maxLength,
    });
  }
  return value;
}

/** A JSON object: not null, not an array. Its fields' checks are the caller's. */
export function plainObject(value: unknown, field = 'value'): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw refuse(field, 'type', `${field} must be an object, not ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

/** A short, safe description of a value from the other side: its kind, never its content. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'a non-finite number';
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function refuse(field: string, reason: BoundsRefusal, message: string, data: Record<string, unknown> = {}): DmpError {
  return new DmpError('PROTOCOL', message, { data: { field, reason, ...data } });
}
