/**
 * The authentication guard on a ManualClock: the one rule that tells damage from another key,
 * and the quarantine of a peer whose files keep failing (issue 10, "Lockout"): levels 1, 2, 4 ...
 * capped at 60 min, a damaged file that a resend repairs never counting, the same file in the
 * same version counting once, and quarantines kept in DMP_HOME across processes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import { DmpError } from '../../src/errors.js';
import { HomeLayout } from '../../src/local/home.js';
import type { Logger } from '../../src/log.js';
import { silentLogger } from '../../src/log.js';
import { AuthGuard, REPAIR_GRACE_MS } from '../../src/node/auth-guard.js';
import { parsePeerId } from '../../src/util/peer-id.js';

const ALICE = parsePeerId('alice');
const BOB = parsePeerId('bob');
const CAROL = parsePeerId('carol');
const MAC_FAILURE = new DmpError('AUTH', 'token failed authentication', { data: { check: 'mac' } });
const TRUNCATED = new DmpError('AUTH', 'token has an impossible length (truncated?)');
const MOVED = new DmpError('PROTOCOL', 'envelope says carol -> bob but was found in carol -> alice');
const MINUTE = 60_000;

/** A guard whose log lines are kept. */
function guardOn(clock: ManualClock, home?: HomeLayout): { guard: AuthGuard; events: string[] } {
  const events: string[] = [];
  const logger: Logger = { log: (_level, event, fields) => events.push(`${event} ${String(fields?.peer ?? '')}`) };
  return { guard: new AuthGuard({ clock, logger, home }), events };
}

describe('AuthGuard', () => {
  test('one clean HMAC failure is damage; a second distinct one from a peer that never authenticated is another key', () => {
    const clock = new ManualClock();
    const guard = new AuthGuard({ clock, logger: silentLogger });
    const reported: string[] = [];
    guard.onUnauthenticated((peer) => reported.push(peer));
    assert.equal(guard.failed(ALICE, 'msg-000000000001.dmp', 'v1', MAC_FAILURE), 'damaged');
    // The same file in the same version is the same evidence.
    assert.equal(guard.failed(ALICE, 'msg-000000000001.dmp', 'v1', MAC_FAILURE), 'damaged');
    assert.equal(guard.failed(ALICE, 'msg-000000000001.dmp', 'v2', MAC_FAILURE), 'unauthenticated');
    assert.equal(guard.failed(ALICE, 'msg-000000000002.dmp', 'v1', MAC_FAILURE), 'unauthenticated');
    assert.deepEqual(reported, ['alice'], 'reported more than once');
    assert.equal(guard.isUnauthenticated(ALICE), true);
  });

  test('only clean HMAC failures count toward another key, and a peer that authenticated is only ever damaged', () => {
    const guard = new AuthGuard({ clock: new ManualClock(), logger: silentLogger });
    for (let i = 0; i < 5; i += 1) assert.equal(guard.failed(ALICE, `f${i}`, 'v', TRUNCATED), 'damaged');
    guard.authenticated(BOB, 'ack.dmp');
    for (let i = 0; i < 5; i += 1) assert.equal(guard.failed(BOB, `f${i}`, 'v', MAC_FAILURE), 'damaged');
    assert.equal(guard.isUnauthenticated(ALICE) || guard.isUnauthenticated(BOB), false);
  });

  test('an unauthenticated peer is quarantined at once; what still fails after the quarantine quarantines it for twice as long', async () => {
    const clock = new ManualClock();
    const { guard, events } = guardOn(clock);
    const quarantines: string[] = [];
    guard.onQuarantined((quarantine) => quarantines.push(`${quarantine.peer} ${quarantine.level}`));
    guard.failed(CAROL, 'a', '1', MAC_FAILURE);
    guard.failed(CAROL, 'b', '1', MAC_FAILURE);
    assert.equal(guard.quarantine(CAROL)?.until, clock.now() + MINUTE);
    assert.match(guard.quarantine(CAROL)?.reason ?? '', /carol's files do not authenticate/);
    // Looked at every 10 s: nothing for a minute, then every look until the two files, still
    // failing, have failed for another grace period since reading resumed.
    const start = clock.now();
    const looks: number[] = [];
    for (let second = 0; second < 400; second += 10) {
      if (guard.shouldLook(CAROL)) looks.push(second);
      await clock.advance(10_000);
    }
    // Read again from 60 s; quarantined again at 60 + 120 s, for 2 min; read again from 300 s.
    const seconds = (from: number, to: number) => Array.from({ length: (to - from) / 10 }, (_, i) => from + i * 10);
    assert.equal(REPAIR_GRACE_MS, 120_000);
    assert.deepEqual(looks, [...seconds(60, 180), ...seconds(300, 400)]);
    assert.deepEqual(quarantines, ['carol 1', 'carol 2']);
    assert.equal(events.filter((event) => event === 'peer-quarantined carol').length, 2);
    assert.equal(events.filter((event) => event === 'peer-quarantine-ended carol').length, 2);
    // The same two files, still failing 2 min after reading resumed at 300 s: 4 min this time.
    await clock.advance(start + 420_000 - clock.now());
    assert.equal(guard.shouldLook(CAROL), false);
    assert.equal(guard.quarantine(CAROL)?.level, 3);
    assert.equal(guard.quarantine(CAROL)?.until, start + 420_000 + 4 * MINUTE);
    // Over, and one of its files opens: it is no longer another key, and nothing counts any more.
    await clock.advance(4 * MINUTE);
    assert.equal(guard.shouldLook(CAROL), true);
    guard.authenticated(CAROL, 'a');
    guard.authenticated(CAROL, 'b');
    assert.equal(guard.isUnauthenticated(CAROL), false);
    await clock.advance(10 * MINUTE);
    assert.equal(guard.shouldLook(CAROL), true);
    assert.equal(guard.quarantine(CAROL), undefined);
  });

  test('three failures left unrepaired quarantine a peer that authenticated, for 1, 2, 4 ... minutes up to an hour; a day clean forgives', async () => {
    const clock = new ManualClock();
    const { guard } = guardOn(clock);
    guard.authenticated(BOB, 'ack.dmp');
    // Forged, another key, moved from another folder: three kinds of failure alike.
    guard.failed(BOB, 'msg-000000000007.dmp', 'v1', MAC_FAILURE);
    guard.failed(BOB, 'ping-00000000000000aa.dmp', 'v1', TRUNCATED);
    guard.failed(BOB, 'ack.dmp', 'v9', MOVED);
    await clock.advance(REPAIR_GRACE_MS - 1);
    assert.equal(guard.shouldLook(BOB), true, 'quarantined before a resend had a chance');
    const minutes: number[] = [];
    for (let round = 0; round < 8; round += 1) {
      await clock.advance(round === 0 ? 1 : REPAIR_GRACE_MS);
      assert.equal(guard.shouldLook(BOB), false, `round ${round}: not quarantined`);
      const quarantine = guard.quarantine(BOB);
      assert.ok(quarantine);
      assert.equal(quarantine.since, clock.now());
      minutes.push((quarantine.until - quarantine.since) / MINUTE);
      await clock.advance(quarantine.until - clock.now() - 1);
      assert.equal(guard.shouldLook(BOB), false, `round ${round}: read before the end`);
      await clock.advance(1);
      assert.equal(guard.shouldLook(BOB), true, `round ${round}: not read at the end`);
    }
    assert.deepEqual(minutes, [1, 2, 4, 8, 16, 32, 60, 60]);
    assert.match(guard.quarantine(BOB)?.reason ?? 'over', /over/);
    // Repaired at last; a day goes by clean; new trouble starts at a minute again.
    for (const file of ['msg-000000000007.dmp', 'ping-00000000000000aa.dmp', 'ack.dmp']) guard.authenticated(BOB, file);
    await clock.advance(24 * 60 * MINUTE + 1);
    for (const file of ['a', 'b', 'c']) guard.failed(BOB, file, 'v', MAC_FAILURE);
    await clock.advance(REPAIR_GRACE_MS);
    assert.equal(guard.shouldLook(BOB), false);
    assert.equal(guard.quarantine(BOB)?.level, 1);
    assert.match(guard.quarantine(BOB)?.reason ?? '', /3 files of bob fail authentication and no resend repaired them/);
  });

  test('a sync glitch never quarantines: repaired files, duplicates of one file@version, and withdrawn files do not count', async () => {
    const clock = new ManualClock();
    const { guard, events } = guardOn(clock);
    guard.authenticated(ALICE, 'ack.dmp');
    // One damaged file, seen again and again in the same version: one failure.
    for (let i = 0; i < 10; i += 1) guard.failed(ALICE, 'msg-000000000001.dmp', 'v1', MAC_FAILURE);
    guard.failed(ALICE, 'status-0123456789abcdef.dmp', 'v4', TRUNCATED);
    await clock.advance(10 * MINUTE);
    assert.equal(guard.shouldLook(ALICE), true, 'two failures quarantined');
    // A burst of damaged chunks, each asked for again and repaired by the resend within the grace.
    for (let index = 0; index < 8; index += 1) guard.failed(ALICE, `chunk-${index}`, 'v1', MAC_FAILURE);
    await clock.advance(REPAIR_GRACE_MS / 2);
    for (let index = 0; index < 8; index += 1) guard.authenticated(ALICE, `chunk-${index}`);
    // The first damaged message is repaired too, in a later version.
    guard.authenticated(ALICE, 'msg-000000000001.dmp');
    // A ping damaged on the way, given up and deleted by its sender: gone from the listing.
    guard.failed(ALICE, 'ping-00000000000000bb.dmp', 'v1', MAC_FAILURE);
    guard.failed(ALICE, 'ping-00000000000000cc.dmp', 'v1', MAC_FAILURE);
    guard.listed(ALICE, ['status-0123456789abcdef.dmp', 'msg-000000000002.dmp']);
    await clock.advance(60 * MINUTE);
    assert.equal(guard.shouldLook(ALICE), true);
    assert.equal(guard.quarantine(ALICE), undefined);
    assert.ok(!events.includes('peer-quarantined alice'), events.join('\n'));
    // A broadcast listing leaves failures in the peer's folder for this one alone, and back.
    guard.failed(ALICE, 'bcast-000000000001.dmp', 'v1', MAC_FAILURE, { shared: true });
    guard.listed(ALICE, ['status-0123456789abcdef.dmp']);
    guard.failed(ALICE, 'bcast-000000000002.dmp', 'v1', MAC_FAILURE, { shared: true });
    guard.listed(ALICE, ['bcast-000000000002.dmp'], { shared: true });
    await clock.advance(REPAIR_GRACE_MS);
    // The status (still in the pair listing) and bcast-2 (in the shared one): two, not three.
    assert.equal(guard.shouldLook(ALICE), true);
    guard.failed(ALICE, 'bcast-000000000003.dmp', 'v1', MAC_FAILURE, { shared: true });
    await clock.advance(REPAIR_GRACE_MS);
    assert.equal(guard.shouldLook(ALICE), false);
  });

  test('quarantines are kept in DMP_HOME: another process shows them, a restart keeps them, and a lift reaches a running one', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dmp-guard-'));
    try {
      const clock = new ManualClock();
      const home = new HomeLayout(root, ALICE);
      const { guard: daemon } = guardOn(clock, home);
      await daemon.load();
      daemon.failed(CAROL, 'msg-000000000001.dmp', 'v1', MAC_FAILURE);
      daemon.failed(CAROL, 'msg-000000000002.dmp', 'v1', MAC_FAILURE);
      await daemon.sync();
      const stored = JSON.parse(await readFile(home.quarantine, 'utf8'));
      assert.deepEqual(Object.keys(stored), ['carol']);
      assert.deepEqual(stored.carol, {
        reason: "carol's files do not authenticate (another key, or a stranger?)",
        since: clock.now(),
        until: clock.now() + MINUTE,
        level: 1,
      });

      // Another process (dmp who, a restarted daemon) sees it, and does not look either.
      const { guard: other } = guardOn(clock, home);
      await other.load();
      assert.equal(other.quarantine(CAROL)?.until, clock.now() + MINUTE);
      assert.equal(other.shouldLook(CAROL), false);
      // An identity seen for the first time by that process does not lift it...
      other.reset(CAROL);
      assert.ok(other.quarantine(CAROL));
      // ...dmp unquarantine does, and the running one notices at its next reading.
      assert.equal(other.lift(CAROL), true);
      await other.sync();
      assert.deepEqual(JSON.parse(await readFile(home.quarantine, 'utf8')), {});
      await clock.advance(10_000);
      await daemon.sync();
      assert.equal(daemon.quarantine(CAROL), undefined);
      assert.equal(daemon.shouldLook(CAROL), true);
      // Lifted means dealt with: the same failures do not quarantine it again there.
      await clock.advance(10 * MINUTE);
      assert.equal(daemon.shouldLook(CAROL), true);

      // An identity file turned refused and accepted again (as whoever forged the files could
      // write it) lifts nothing: only the user does (dmp trust --accept-new calls lift).
      daemon.failed(BOB, 'a', '1', MAC_FAILURE);
      daemon.failed(BOB, 'b', '1', MAC_FAILURE);
      assert.ok(daemon.quarantine(BOB));
      daemon.refuse(BOB, "bob's identity changed");
      daemon.reset(BOB);
      assert.ok(daemon.quarantine(BOB));
      assert.equal(daemon.shouldLook(BOB), false);
      assert.equal(daemon.lift(BOB), true);
      await daemon.sync();
      assert.deepEqual(JSON.parse(await readFile(home.quarantine, 'utf8')), {});
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
