/**
 * How `dmp who`, `dmp peers` and `dmp status` show a quarantined peer: for people, "quarantined
 * until 12:05 (in 3 min): <reason>" (local time, and how long from now as status shows times);
 * in JSON, `quarantined: { reason, until }` with an ISO time.
 */
import type { Quarantine } from '../index.js';
import { sanitize } from './common.js';
import { duration } from './terminal.js';

/** The JSON form: what a script needs to know, the time as ISO. */
export function quarantineJson(quarantine: Pick<Quarantine, 'reason' | 'until'>): { reason: string; until: string } {
  return { reason: quarantine.reason, until: new Date(quarantine.until).toISOString() };
}

/** "quarantined until 12:05 (in 3 min): <reason>". `until` in ms since the epoch. */
export function quarantineText(quarantine: Pick<Quarantine, 'reason' | 'until'>, now: number): string {
  const at = new Date(quarantine.until);
  const clock = [at.getHours(), at.getMinutes()].map((n) => String(n).padStart(2, '0')).join(':');
  return `quarantined until ${clock} (in ${duration(Math.max(0, quarantine.until - now))}): ${sanitize(quarantine.reason)}`;
}
