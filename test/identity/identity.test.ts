/**
 * Per-peer identities (protocol version 2): pair-key derivation against Python's vectors, the
 * signed identity document, trust on first use, and three peers on one relay through a
 * simulated sync on a manual clock: carol, holding the relay key, can neither read nor forge
 * alice and bob's traffic.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { decryptText, encryptText, generateKey, parseKey } from '../../src/crypto/fernet.js';
import { DmpError } from '../../src/errors.js';
import { decodeIdentity, encodeIdentity, fingerprint, normalizeFingerprint } from '../../src/identity/document.js';
import { derivePairKey, generateIdentityKeys, type KeyPair, rotateIdentityKeys } from '../../src/identity/keys.js';
import { evaluate } from '../../src/identity/trust.js';
import { encodeEnvelope, PROTOCOL_VERSION } from '../../src/node/envelope.js';
import type { InboxMessage } from '../../src/stream/receiver.js';
import { ALICE, BOB, CAROL, World } from '../support/three-peers.js';

const REPO = new URL('../../..', import.meta.url).pathname;

interface VectorSide {
  id: string;
  d: string;
  x: string;
}

function pairFrom(side: VectorSide): KeyPair {
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', x: side.x, d: side.d }, format: 'jwk' });
  return { privateKey, publicKey: createPublicKey(privateKey), public: side.x };
}

const isAuth = (pattern: RegExp) => (error: unknown) => {
  assert.ok(error instanceof DmpError, `not a DmpError: ${String(error)}`);
  assert.equal(error.code, 'AUTH', error.message);
  assert.match(error.message, pattern);
  return true;
};

describe('pair keys and identity documents', () => {
  test('pair keys equal the vectors computed by Python, from either side', async () => {
    const vectors = JSON.parse(await readFile(join(REPO, 'fixtures/pair-key/vectors.json'), 'utf8')) as {
      a: VectorSide;
      b: VectorSide;
      pairKey: string;
    }[];
    assert.ok(vectors.length >= 3);
    for (const vector of vectors) {
      const fromA = derivePairKey(
        { id: vector.a.id, exchange: pairFrom(vector.a) },
        { id: vector.b.id, exchange: vector.b.x },
      );
      const fromB = derivePairKey(
        { id: vector.b.id, exchange: pairFrom(vector.b) },
        { id: vector.a.id, exchange: vector.a.x },
      );
      assert.equal(fromA, vector.pairKey);
      assert.equal(fromB, vector.pairKey);
      // A standard Fernet key: url-safe base64 with its padding.
      assert.equal(parseKey(fromA).text, vector.pairKey);
      assert.ok(vector.pairKey.endsWith('='));
    }
  });

  test('an identity is signed by itself; a tampered one, or one in another folder, is refused', () => {
    const keys = generateIdentityKeys(1_795_000_000_000);
    const plain = encodeIdentity(ALICE, keys);
    const identity = decodeIdentity(plain, ALICE);
    assert.equal(identity.sign, keys.sign.public);
    assert.throws(() => decodeIdentity(plain, BOB), /found in bob's folder/);
    const forged = JSON.parse(plain.toString()) as Record<string, unknown>;
    forged.exchange = generateIdentityKeys(0).exchange.public;
    assert.throws(() => decodeIdentity(Buffer.from(JSON.stringify(forged)), ALICE), /not signed by its own key/);
    assert.throws(() => decodeIdentity(Buffer.from('['.repeat(50)), ALICE), DmpError);
  });

  test('a rotation is countersigned by the previous key and followed; a stranger key is "changed"', () => {
    const first = generateIdentityKeys(1000);
    const pinned = evaluate(undefined, decodeIdentity(encodeIdentity(ALICE, first), ALICE), 1);
    assert.equal(pinned.evaluation, 'pinned');
    const rotated = rotateIdentityKeys(first, 2000);
    const next = evaluate(pinned.record, decodeIdentity(encodeIdentity(ALICE, rotated), ALICE), 2);
    assert.equal(next.evaluation, 'rotated');
    assert.equal(next.record.sign, rotated.sign.public);
    // The copy from before the rotation, delivered late, changes nothing.
    assert.equal(evaluate(next.record, decodeIdentity(encodeIdentity(ALICE, first), ALICE), 3).evaluation, 'same');
    const other = evaluate(next.record, decodeIdentity(encodeIdentity(ALICE, generateIdentityKeys(4000)), ALICE), 4);
    assert.equal(other.evaluation, 'changed');
    assert.equal(other.record.sign, rotated.sign.public, 'a changed identity replaced the pinned one');
    // A rotation that claims a previous key it cannot sign with is refused outright.
    const claimed = JSON.parse(encodeIdentity(ALICE, rotated).toString()) as { previous: { sign: string } };
    claimed.previous.sign = generateIdentityKeys(0).sign.public;
    assert.throws(() => decodeIdentity(Buffer.from(JSON.stringify(claimed)), ALICE), DmpError);
  });

  test('fingerprints are six groups of five digits, read back with any spacing', () => {
    const keys = generateIdentityKeys(0);
    const shown = fingerprint({ sign: keys.sign.public, exchange: keys.exchange.public });
    assert.match(shown, /^\d{5}( \d{5}){5}$/);
    assert.equal(normalizeFingerprint(shown.replaceAll(' ', '')), shown);
    assert.equal(normalizeFingerprint(`  ${shown.replaceAll(' ', '-')} `), shown);
    assert.equal(normalizeFingerprint('12345'), undefined);
  });
});

describe('three peers on one relay', () => {
  test("carol holds the relay key but can read none of alice and bob's files; Python reads them with the pair key", async () => {
    const world = await new World().init();
    try {
      const alice = await world.open(ALICE);
      await alice.send('bob', ['for bob only']);
      await world.sync.idle();
      const stored = world.replicas.carol.files.get('alice/bob/msg-000000000001.dmp');
      assert.ok(stored, "alice's message did not reach carol's copy of the relay");
      assert.throws(() => decryptText(parseKey(world.key), stored.data), /failed authentication/);
      const carol = await world.open(CAROL);
      for (const other of ['alice', 'bob']) {
        const key = parseKey(await carol.pairKey(other));
        assert.throws(() => decryptText(key, stored.data), /failed authentication/);
      }
      // The pair key alice exports opens it in Python, as docs/PROTOCOL.md shows.
      const dir = await mkdtemp(join(tmpdir(), 'dmp-python-'));
      try {
        const file = join(dir, 'msg.dmp');
        await writeFile(file, stored.data);
        const script =
          'import sys, json\nfrom cryptography.fernet import Fernet\n' +
          "print(json.loads(Fernet(sys.argv[1].encode()).decrypt(open(sys.argv[2], 'rb').read()))['body'])";
        const printed = execFileSync('python3', ['-c', script, await alice.pairKey('bob'), file], { encoding: 'utf8' });
        assert.equal(printed.trim(), 'for bob only');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    } finally {
      await world.close();
    }
  });

  test("carol's forgeries in alice's and bob's folders are refused and disturb nothing", async () => {
    const world = await new World().init();
    try {
      const alice = await world.open(ALICE);
      const bob = await world.open(BOB);
      const carol = await world.open(CAROL);
      const aliceLoop = new AbortController();
      const aliceServing = alice.serve({ signal: aliceLoop.signal });
      await alice.send('bob', ['one', 'two']);
      // What a member can make: envelopes that claim alice, sealed under the relay key and
      // under carol's own pair key with bob, put into alice's folder in carol's copy.
      const forge = (key: string, envelope: Parameters<typeof encodeEnvelope>[0]) =>
        Buffer.from(encryptText(parseKey(key), encodeEnvelope(envelope)));
      const msg = (seq: number, body: string) => ({
        v: PROTOCOL_VERSION,
        type: 'msg',
        from: ALICE,
        to: BOB,
        seq,
        sentAt: world.clock.now(),
        body,
        acked: 0,
      });
      const carolBob = await carol.pairKey('bob');
      world.replicas.carol.put('alice/bob/msg-000000000003.dmp', forge(world.key, msg(3, 'forged 3')), true);
      world.replicas.carol.put('alice/bob/msg-999999999999.dmp', forge(carolBob, msg(999_999_999_999, 'far')), true);
      // A forged ack of bob claiming everything up to 10^12 delivered, in bob's folder for alice.
      const ack = {
        v: PROTOCOL_VERSION,
        type: 'ack',
        from: BOB,
        to: ALICE,
        seq: 1e12,
        sentAt: 0,
        body: { through: 1e12, resend: [] },
      };
      world.replicas.carol.put('bob/alice/ack.dmp', forge(world.key, ack), true);
      await world.sync.idle();

      const received: InboxMessage[] = [];
      const listening = bob.listen({
        count: 4,
        timeoutMs: 60_000,
        signal: world.signal,
        onMessage: (m) => received.push(m),
      });
      listening.catch(() => {});
      // alice goes on numbering as if nothing happened; her real third message replaces the forgery.
      assert.deepEqual(await alice.send('bob', ['three', 'four'], { wait: true, timeoutMs: 60_000 }), [3, 4]);
      assert.equal(await listening, 4);
      assert.deepEqual(
        received.map((m) => `${m.seq} ${m.text}`),
        ['1 one', '2 two', '3 three', '4 four'],
      );
      aliceLoop.abort();
      await aliceServing;
    } finally {
      await world.close();
    }
  });

  test('trust: first sight pins, a replaced identity is refused until accepted, a rotation passes, strict wants verified', async () => {
    const world = await new World().init();
    try {
      const alice = await world.open(ALICE);
      await alice.send('bob', ['pinned on first sight']);
      const first = (await alice.identities()).find((entry) => entry.peer === 'bob');
      assert.equal(first?.standing, 'pinned');

      // bob loses his home and makes a new identity under the same id.
      const bobHome = world.homes.bob ?? '';
      await rm(bobHome, { recursive: true, force: true });
      const newBob = await world.open(BOB);
      await world.sync.idle();
      await assert.rejects(
        alice.send('bob', ['to a stranger?']),
        isAuth(/bob's identity changed .*dmp trust bob --accept-new/),
      );
      const changed = (await alice.identities()).find((entry) => entry.peer === 'bob');
      assert.equal(changed?.standing, 'changed');
      assert.equal(changed?.newFingerprint, newBob.fingerprint());
      await alice.acceptNewIdentity('bob');
      assert.deepEqual(await alice.send('bob', ['accepted']), [2]);

      // A rotation signed by the pinned key is followed without an alarm.
      const before = newBob.fingerprint();
      const after = await newBob.rotate();
      assert.notEqual(after, before);
      await world.sync.idle();
      assert.deepEqual(await alice.send('bob', ['after the rotation']), [3]);
      assert.equal((await alice.identities()).find((entry) => entry.peer === 'bob')?.fingerprint, after);

      // strict: nothing for an unverified peer; verified with the fingerprint bob reads out.
      const strict = await world.open(CAROL, { strict: true });
      await assert.rejects(strict.send('bob', ['hello']), isAuth(/bob is not verified/));
      await assert.rejects(strict.verify('bob', '12345 12345 12345 12345 12345 12345'), isAuth(/does not match/));
      await strict.verify('bob', after.replaceAll(' ', ''));
      assert.deepEqual(await strict.send('bob', ['verified']), [1]);
    } finally {
      await world.close();
    }
  });

  test("a stranger's folder is named once and costs the pair nothing", async () => {
    const world = await new World().init();
    try {
      // carol starts over with another relay key: a stranger in this relay.
      await rm(world.homes.carol ?? '', { recursive: true, force: true });
      (await world.open(CAROL, { key: generateKey() })).close();
      world.replicas.carol.put('carol/bob/msg-000000000001.dmp', Buffer.from('random bytes'), true);
      await world.sync.idle();
      const alice = await world.open(ALICE);
      const bob = await world.open(BOB);
      const refused: string[] = [];
      bob.onUnauthenticated((peer) => refused.push(peer));
      const received: InboxMessage[] = [];
      const listening = bob.listen({
        count: 50,
        timeoutMs: 60_000,
        signal: world.signal,
        onMessage: (m) => received.push(m),
      });
      listening.catch(() => {});
      await alice.send(
        'bob',
        Array.from({ length: 50 }, (_, i) => `m${i + 1}`),
      );
      assert.equal(await listening, 50);
      assert.deepEqual(refused, ['carol']);
      const carolStanding = (await bob.identities()).find((entry) => entry.peer === 'carol');
      assert.equal(carolStanding?.standing, 'stranger');
      assert.match(carolStanding?.reason ?? '', /does not open with this relay key/);
    } finally {
      await world.close();
    }
  });
});
