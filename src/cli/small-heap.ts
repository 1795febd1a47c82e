/**
 * Imported first by each command: keeps V8's young generation small. By default its
 * semi-spaces grow to 16 MiB under the steady stream of short-lived objects a long transfer
 * makes, though a command holds almost nothing for long: resident memory for nothing.
 * Measured over a 1 GiB local transfer (runs of each): the main heap 26 -> 18 MiB, peak RSS of
 * the receiver 104-111 -> 102-106 MiB, of the sender 94-106 -> 94-97 MiB, time unchanged.
 * Flags are process-wide, so the crypto worker started later has them too.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--max-semi-space-size=1');
setFlagsFromString('--semi-space-growth-factor=1');
