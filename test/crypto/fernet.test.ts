/**
 * Fernet on node:crypto, checked against three oracles:
 *   - the spec's test vectors (fixtures/fernet-spec/*.json, copied from github.com/fernet/spec),
 *   - Python's `cryptography` (tokens it made, fixtures/python-tokens.json from
 *     fixtures/make-python-tokens.py, and a live python3 that decrypts our tokens),
 *   - the npm package `fernet` (text only).
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import {
  decodeToken,
  decrypt,
  decryptText,
  encodeToken,
  encrypt,
  encryptInPlace,
  encryptText,
  type FernetKey,
  generateKey,
  MIN_TOKEN_LENGTH,
  parseKey,
  tokenLength,
} from '../../src/crypto/fernet.js';
import { DmpError, type ErrorCode } from '../../src/errors.js';

// Compiled to dist/test/crypto/: three levels up is the repository root.
const root = new URL('../../..', import.meta.url);
const fixtures = new URL('fixtures/', root);

function readJson<T>(relative: string): T {
  return JSON.parse(readFileSync(new URL(relative, fixtures), 'utf8')) as T;
}

interface GenerateVector {
  token: string;
  now: string;
  iv: number[];
  src: string;
  secret: string;
}
interface VerifyVector {
  token: string;
  now: string;
  ttl_sec: number;
  src: string;
  secret: string;
}
interface InvalidVector {
  desc: string;
  token: string;
  now: string;
  ttl_sec: number;
  secret: string;
}
interface PythonTokens {
  key: string;
  timestamp: number;
  cases: { name: string; plaintextBase64: string; token: string }[];
}

/** The spec's RFC 3339 times, as seconds since the epoch. */
function seconds(rfc3339: string): number {
  const ms = Date.parse(rfc3339);
  assert.ok(Number.isFinite(ms), `unparseable time ${rfc3339}`);
  return Math.floor(ms / 1000);
}

function assertDmpError(fn: () => unknown, code: ErrorCode, message?: string): void {
  assert.throws(
    fn,
    (error: unknown) => {
      assert.ok(error instanceof DmpError, `expected a DmpError, got ${String(error)}`);
      assert.equal(error.code, code, message);
      return true;
    },
    message,
  );
}

const SPEC_SECRET = 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=';
const FIXED_IV = Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
const FIXED_TIME = 499162800; // 1985-10-26T01:20:00-07:00, the spec's "now"

/** Builds a token by hand: the header, any ciphertext, and a correct HMAC over both. */
function signedToken(key: FernetKey, timestamp: number, iv: Buffer, ciphertext: Buffer): Buffer {
  const header = Buffer.alloc(25);
  header[0] = 0x80;
  header.writeBigUInt64BE(BigInt(timestamp), 1);
  iv.copy(header, 9);
  const body = Buffer.concat([header, ciphertext]);
  return Buffer.concat([body, createHmac('sha256', key.signingKey).update(body).digest()]);
}

/** AES-128-CBC without padding: the caller supplies whole blocks, bad padding included. */
function rawCbc(key: FernetKey, iv: Buffer, blocks: Buffer): Buffer {
  const cipher = createCipheriv('aes-128-cbc', key.encryptionKey, iv);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(blocks), cipher.final()]);
}

describe('Fernet spec vectors', () => {
  const generate = readJson<GenerateVector[]>('fernet-spec/generate.json');
  const verify = readJson<VerifyVector[]>('fernet-spec/verify.json');
  const invalid = readJson<InvalidVector[]>('fernet-spec/invalid.json');

  test('the vector files are present and complete', () => {
    assert.equal(generate.length, 1);
    assert.equal(verify.length, 1);
    assert.equal(invalid.length, 11);
  });

  for (const vector of generate) {
    test(`generate: encrypt reproduces ${vector.token.slice(0, 16)}... exactly`, () => {
      const key = parseKey(vector.secret);
      const options = { timestamp: seconds(vector.now), iv: Buffer.from(vector.iv) };
      const raw = encrypt(key, Buffer.from(vector.src, 'utf8'), options);
      assert.equal(encodeToken(raw), vector.token);
      assert.equal(encryptText(key, Buffer.from(vector.src, 'utf8'), options), vector.token);
      assert.equal(raw.length, tokenLength(Buffer.byteLength(vector.src)));
    });
  }

  for (const vector of verify) {
    test(`verify: ${vector.token.slice(0, 16)}... decrypts to ${JSON.stringify(vector.src)}`, () => {
      const key = parseKey(vector.secret);
      const options = { ttlSeconds: vector.ttl_sec, now: seconds(vector.now) };
      assert.equal(decryptText(key, vector.token, options).toString('utf8'), vector.src);
      assert.equal(decrypt(key, decodeToken(vector.token), options).toString('utf8'), vector.src);
    });
  }

  for (const vector of invalid) {
    test(`invalid: ${vector.desc}`, () => {
      const key = parseKey(vector.secret);
      assertDmpError(
        () => decryptText(key, vector.token, { ttlSeconds: vector.ttl_sec, now: seconds(vector.now) }),
        'AUTH',
      );
    });
  }

  test('invalid: the padding and IV vectors fail for the reason they name, not at the HMAC', () => {
    // These two carry a correct HMAC, so they reach the padding check: without it they would
    // decrypt to garbage.
    const key = parseKey(SPEC_SECRET);
    for (const desc of ['payload padding error', 'incorrect IV (causes padding error)']) {
      const vector = invalid.find((v) => v.desc === desc);
      assert.ok(vector, desc);
      const raw = decodeToken(vector.token);
      const mac = createHmac('sha256', key.signingKey).update(raw.subarray(0, -32)).digest();
      assert.deepEqual(mac, raw.subarray(-32), `${desc}: HMAC should be valid`);
      assert.throws(
        () => decryptText(key, vector.token, { ttlSeconds: vector.ttl_sec, now: seconds(vector.now) }),
        (error: unknown) => error instanceof DmpError && error.code === 'AUTH' && /padding/.test(error.message),
      );
    }
  });

  test('invalid (constructed): correct HMAC over ciphertext with bad PKCS7 padding', () => {
    const key = parseKey(SPEC_SECRET);
    const badPlaintexts: [string, Buffer][] = [
      ['pad byte 0', Buffer.concat([Buffer.from('hello world!!!!'), Buffer.from([0])])],
      ['pad byte 17', Buffer.concat([Buffer.from('hello world!!!!'), Buffer.from([17])])],
      ['pad bytes disagree', Buffer.concat([Buffer.from('hello world!'), Buffer.from([4, 4, 3, 4])])],
      ['pad byte 0xff', Buffer.alloc(16, 0xff)],
      ['two blocks, last one all zero', Buffer.concat([Buffer.alloc(16, 0x10), Buffer.alloc(16, 0)])],
    ];
    for (const [what, blocks] of badPlaintexts) {
      const token = signedToken(key, FIXED_TIME, FIXED_IV, rawCbc(key, FIXED_IV, blocks));
      assertDmpError(() => decrypt(key, token), 'AUTH', what);
    }
    // The same construction with correct padding decrypts: the failures above are the padding.
    const good = Buffer.concat([Buffer.from('hello world!'), Buffer.from([4, 4, 4, 4])]);
    const token = signedToken(key, FIXED_TIME, FIXED_IV, rawCbc(key, FIXED_IV, good));
    assert.equal(decrypt(key, token).toString(), 'hello world!');
  });

  test('invalid (constructed): correct HMAC but a wrong version byte', () => {
    const key = parseKey(SPEC_SECRET);
    const token = encrypt(key, Buffer.from('hello'), { timestamp: FIXED_TIME, iv: FIXED_IV });
    for (const version of [0x00, 0x7f, 0x81, 0xff]) {
      const body = Buffer.from(token.subarray(0, -32));
      body[0] = version;
      const resigned = Buffer.concat([body, createHmac('sha256', key.signingKey).update(body).digest()]);
      assertDmpError(() => decrypt(key, resigned), 'AUTH', `version 0x${version.toString(16)}`);
    }
  });

  test('invalid (constructed): a flipped IV byte fails the HMAC', () => {
    const key = parseKey(SPEC_SECRET);
    const token = decodeToken(generate[0]!.token);
    for (let i = 9; i < 25; i++) {
      const copy = Buffer.from(token);
      copy[i]! ^= 0x01;
      assertDmpError(() => decrypt(key, copy), 'AUTH', `IV byte ${i - 9}`);
    }
  });
});

describe('Python cryptography interop', () => {
  test('tokens made by Python (fixtures/python-tokens.json) decrypt to the same bytes', () => {
    const data = readJson<PythonTokens>('python-tokens.json');
    const key = parseKey(data.key);
    const names = data.cases.map((c) => c.name);
    assert.ok(names.includes('empty') && names.includes('binary 100 KiB'), names.join(', '));
    for (const item of data.cases) {
      const expected = Buffer.from(item.plaintextBase64, 'base64');
      const raw = decodeToken(item.token);
      assert.equal(raw.readBigUInt64BE(1), BigInt(data.timestamp), item.name);
      assert.equal(raw.length, tokenLength(expected.length), item.name);
      assert.deepEqual(decryptText(key, item.token), expected, item.name);
      // Python writes exactly our text form.
      assert.equal(encodeToken(raw), item.token, item.name);
    }
    // The 100 KiB case is random binary, not text.
    const big = data.cases.find((c) => c.name === 'binary 100 KiB');
    assert.equal(Buffer.from(big!.plaintextBase64, 'base64').length, 100 * 1024);
  });

  test('tokens from another key do not decrypt Python tokens', () => {
    const data = readJson<PythonTokens>('python-tokens.json');
    const other = parseKey(generateKey());
    for (const item of data.cases) assertDmpError(() => decryptText(other, item.token), 'AUTH', item.name);
  });

  test('our tokens decrypt in Python, and Python agrees on which tokens to reject', (t) => {
    const probe = spawnSync('python3', ['-c', 'import cryptography.fernet'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      const why = `python3 with the 'cryptography' package is not available (${
        probe.error?.message ?? probe.stderr.trim().split('\n').pop()
      }); install it with: pip install cryptography`;
      if (process.env.CI) assert.fail(why);
      t.skip(why);
      return;
    }

    const keyText = generateKey();
    const key = parseKey(keyText);
    const now = Math.floor(Date.now() / 1000);
    const plaintexts: Buffer[] = [
      Buffer.alloc(0),
      Buffer.from('hello'),
      Buffer.from('Grüße, 世界 🚀', 'utf8'),
      Buffer.from([0x00, 0xff, 0x80, 0xc3, 0x28, 0xfe, 0xfe, 0xff, 0xff]), // not UTF-8
      Buffer.alloc(16, 0x10),
      randomBytes(1000),
      randomBytes(65536 + 7),
    ];

    interface Case {
      token: string;
      ttl?: number;
      now?: number;
      expect: Buffer | null;
      what: string;
    }
    const cases: Case[] = plaintexts.map((plaintext, i) => ({
      token: encryptText(key, plaintext),
      expect: plaintext,
      what: `plaintext ${i} (${plaintext.length} bytes)`,
    }));
    // A multi-part token, and TTL boundaries on both sides, judged by Python and by us.
    const parts = [Buffer.from('multi '), Buffer.from('part '), randomBytes(40)];
    cases.push({ token: encodeToken(encrypt(key, parts)), expect: Buffer.concat(parts), what: 'parts' });
    const stamped = encrypt(key, Buffer.from('stamped'), { timestamp: now - 1000 });
    for (const [ttl, at] of [
      [1000, now],
      [999, now],
      [60, now - 1000 - 60],
      [60, now - 1000 - 61],
      [5, now - 2000],
    ] as const) {
      const ours = (() => {
        try {
          return decrypt(key, stamped, { ttlSeconds: ttl, now: at });
        } catch (error) {
          assert.ok(error instanceof DmpError && error.code === 'AUTH');
          return null;
        }
      })();
      cases.push({ token: encodeToken(stamped), ttl, now: at, expect: ours, what: `ttl ${ttl} at now${at - now}` });
    }
    const tampered = Buffer.from(stamped);
    tampered[30]! ^= 0x40;
    cases.push({ token: encodeToken(tampered), expect: null, what: 'tampered' });

    const script = [
      'import base64, json, sys',
      'from cryptography.fernet import Fernet, InvalidToken',
      'request = json.load(sys.stdin)',
      "f = Fernet(request['key'].encode())",
      'out = []',
      "for case in request['cases']:",
      '    try:',
      "        if 'ttl' in case:",
      "            plain = f.decrypt_at_time(case['token'].encode(), case['ttl'], case['now'])",
      '        else:',
      "            plain = f.decrypt(case['token'].encode())",
      "        out.append(base64.b64encode(plain).decode('ascii'))",
      '    except InvalidToken:',
      '        out.append(None)',
      'json.dump(out, sys.stdout)',
    ].join('\n');
    const request = {
      key: keyText,
      cases: cases.map(({ token, ttl, now: at }) => (ttl === undefined ? { token } : { token, ttl, now: at })),
    };
    const result = spawnSync('python3', ['-c', script], {
      input: JSON.stringify(request),
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    assert.equal(result.status, 0, `python3 failed: ${result.stderr}`);
    const answers = JSON.parse(result.stdout) as (string | null)[];
    assert.equal(answers.length, cases.length);
    cases.forEach((item, i) => {
      const answer = answers[i];
      if (item.expect === null) assert.equal(answer, null, `${item.what}: Python accepted what we reject`);
      else {
        assert.equal(typeof answer, 'string', `${item.what}: Python rejected what we accept`);
        assert.deepEqual(Buffer.from(answer as string, 'base64'), item.expect, item.what);
      }
    });
    // The boundary cases must include both outcomes, or they test nothing.
    const ttlCases = cases.filter((c) => c.ttl !== undefined);
    assert.ok(ttlCases.some((c) => c.expect === null) && ttlCases.some((c) => c.expect !== null));
  });
});

describe('npm fernet interop', () => {
  interface NpmFernet {
    Secret: new (key: string) => unknown;
    Token: new (options: {
      secret: unknown;
      ttl?: number;
      token?: string;
    }) => {
      encode(message: string): string;
      decode(token?: string): string;
    };
  }
  const require = createRequire(import.meta.url);
  const npm = require('fernet') as NpmFernet;
  const texts = [
    'hello',
    '',
    'Grüße, 世界 🚀',
    'x'.repeat(16),
    'a longer message that spans several blocks. '.repeat(20),
  ];

  test('our text tokens decode with the npm package', () => {
    const keyText = generateKey();
    const key = parseKey(keyText);
    const secret = new npm.Secret(keyText);
    for (const text of texts) {
      if (text === '') continue; // the npm package treats '' as "no message" and encodes undefined
      const token = encryptText(key, Buffer.from(text, 'utf8'));
      assert.equal(new npm.Token({ secret, ttl: 0 }).decode(token), text);
    }
  });

  test('npm tokens decrypt with ours', () => {
    const keyText = generateKey();
    const key = parseKey(keyText);
    const secret = new npm.Secret(keyText);
    for (const text of texts) {
      if (text === '') continue;
      const token = new npm.Token({ secret, ttl: 0 }).encode(text);
      assert.equal(decryptText(key, token).toString('utf8'), text);
      assert.equal(encodeToken(decodeToken(token)), token, 'same text form');
    }
  });

  test('the npm package reproduces the spec vector, as we do', () => {
    const secret = new npm.Secret(SPEC_SECRET);
    const token = new (npm.Token as unknown as new (o: object) => { encode(m: string): string })({
      secret,
      time: '1985-10-26T01:20:00-07:00',
      iv: [...FIXED_IV],
    }).encode('hello');
    const ours = encryptText(parseKey(SPEC_SECRET), Buffer.from('hello'), { timestamp: FIXED_TIME, iv: FIXED_IV });
    assert.equal(token, ours);
  });
});

describe('tampering and keys', () => {
  const key = parseKey(generateKey());

  test('flipping any bit of any byte of a token fails with AUTH', () => {
    const token = encrypt(key, Buffer.from('hi'));
    assert.equal(token.length, MIN_TOKEN_LENGTH);
    assert.equal(decrypt(key, token).toString(), 'hi');
    for (let i = 0; i < token.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Buffer.from(token);
        copy[i]! ^= 1 << bit;
        assertDmpError(() => decrypt(key, copy), 'AUTH', `byte ${i} bit ${bit}`);
      }
    }
  });

  test('flipping a byte of a multi-block token fails with AUTH', () => {
    const token = encrypt(key, randomBytes(100));
    for (let i = 0; i < token.length; i++) {
      const copy = Buffer.from(token);
      copy[i]! ^= 0xff;
      assertDmpError(() => decrypt(key, copy), 'AUTH', `byte ${i}`);
    }
  });

  test('truncation at every length fails with AUTH', () => {
    const token = encrypt(key, randomBytes(40)); // three cipher blocks: some truncations have a plausible length
    for (let length = 0; length < token.length; length++) {
      assertDmpError(() => decrypt(key, token.subarray(0, length)), 'AUTH', `length ${length}`);
      assertDmpError(() => decryptText(key, encodeToken(token.subarray(0, length))), 'AUTH', `text, length ${length}`);
    }
    // Dropping whole blocks from the end or the middle, keeping a plausible length.
    assertDmpError(() => decrypt(key, Buffer.concat([token.subarray(0, 25 + 16), token.subarray(-32)])), 'AUTH');
    assertDmpError(() => decrypt(key, Buffer.concat([token.subarray(0, 25), token.subarray(25 + 16)])), 'AUTH');
  });

  test('extending a token fails with AUTH', () => {
    const token = encrypt(key, Buffer.from('hello'));
    for (const extra of [Buffer.alloc(1), Buffer.alloc(16), randomBytes(16)]) {
      assertDmpError(() => decrypt(key, Buffer.concat([token, extra])), 'AUTH');
    }
  });

  test('decrypting with another key fails with AUTH', () => {
    const token = encrypt(key, Buffer.from('secret message'));
    const other = parseKey(generateKey());
    assertDmpError(() => decrypt(other, token), 'AUTH');
    // Same signing key, different encryption key: authenticates, so the padding check must catch it
    // (or, 1 time in ~256, decrypts to garbage; the signing key is what protects the token).
    const keyBytes = Buffer.concat([key.signingKey, Buffer.alloc(16, 7)]);
    const halfOther = parseKey(keyBytes.toString('base64url'));
    const result = (() => {
      try {
        return decrypt(halfOther, token);
      } catch (error) {
        assert.ok(error instanceof DmpError && error.code === 'AUTH');
        return null;
      }
    })();
    if (result !== null) assert.notDeepEqual(result, Buffer.from('secret message'));
  });

  test('malformed text tokens fail with AUTH', () => {
    const text = encryptText(key, Buffer.from('hello'));
    for (const bad of [
      '',
      '   ',
      '==',
      'not a token',
      `${text}!`,
      `${text}===`,
      `=${text}`,
      text.replace(/-|_/, '+').replace(/^g/, '/'),
      text.slice(0, 20) + ' ' + text.slice(20),
      Buffer.from(text, 'base64url').toString('base64'), // standard alphabet, may contain + and /
    ]) {
      if (bad === text) continue;
      assertDmpError(() => decryptText(key, bad), 'AUTH', JSON.stringify(bad));
    }
  });

  test('text tokens tolerate surrounding white space and Buffer input', () => {
    const text = encryptText(key, Buffer.from('hello'));
    assert.equal(decryptText(key, `${text}\n`).toString(), 'hello');
    assert.equal(decryptText(key, `  ${text}\r\n`).toString(), 'hello');
    assert.equal(decryptText(key, Buffer.from(`${text}\n`, 'latin1')).toString(), 'hello');
  });

  test('malformed keys fail with BAD_KEY', () => {
    const good = generateKey();
    const bytes32 = Buffer.from(good, 'base64url');
    for (const bad of [
      '',
      'abc',
      good.slice(0, 43).slice(1), // 42 characters
      good + 'A',
      `${good.slice(0, 43)}==`,
      `${good.slice(0, 42)}!=`,
      `${good.slice(0, 20)} ${good.slice(20, 43)}`,
      bytes32.toString('hex'), // 64 hex characters
      randomBytes(24).toString('base64url'),
      randomBytes(48).toString('base64url'),
      `${'+'.repeat(43)}=`, // standard base64 alphabet
      `${'/'.repeat(43)}=`,
    ]) {
      assertDmpError(() => parseKey(bad), 'BAD_KEY', JSON.stringify(bad));
    }
  });

  test('generateKey looks like Python Fernet.generate_key() and round-trips through parseKey', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const text = generateKey();
      assert.equal(text.length, 44);
      assert.match(text, /^[A-Za-z0-9_-]{43}=$/);
      const decoded = Buffer.from(text, 'base64url');
      assert.equal(decoded.length, 32);
      const parsed = parseKey(text);
      assert.equal(parsed.text, text);
      assert.deepEqual(parsed.signingKey, decoded.subarray(0, 16));
      assert.deepEqual(parsed.encryptionKey, decoded.subarray(16));
      seen.add(text);
    }
    assert.equal(seen.size, 50);
  });

  test('parseKey accepts surrounding white space and a missing "=", and normalizes the text', () => {
    const text = generateKey();
    assert.equal(parseKey(`  ${text}\n`).text, text);
    assert.equal(parseKey(text.slice(0, 43)).text, text);
    assert.equal(parseKey(SPEC_SECRET).text, SPEC_SECRET);
    assert.equal(parseKey(SPEC_SECRET).signingKey.toString('hex'), '730ff4c7af3d46923e8ed451ee813c87');
    assert.equal(parseKey(SPEC_SECRET).encryptionKey.toString('hex'), 'f790b0a226bc96a92de49b5e9c05e1ee');
  });
});

describe('TTL', () => {
  const key = parseKey(generateKey());
  const T = 1_700_000_000;
  const token = encrypt(key, Buffer.from('timed'), { timestamp: T });
  const ok = (ttlSeconds: number | undefined, now: number) =>
    assert.equal(decrypt(key, token, ttlSeconds === undefined ? { now } : { ttlSeconds, now }).toString(), 'timed');
  const rejected = (ttlSeconds: number, now: number) =>
    assertDmpError(() => decrypt(key, token, { ttlSeconds, now }), 'AUTH', `ttl ${ttlSeconds} now T${now - T}`);

  test('the timestamp is stamped big-endian after the version byte', () => {
    assert.equal(token.readBigUInt64BE(1), BigInt(T));
    const before = Math.floor(Date.now() / 1000);
    const fresh = encrypt(key, Buffer.from('now'));
    const after = Math.floor(Date.now() / 1000);
    const stamped = Number(fresh.readBigUInt64BE(1));
    assert.ok(stamped >= before && stamped <= after);
  });

  test('fresh tokens are accepted, up to and including the TTL', () => {
    ok(60, T);
    ok(60, T + 1);
    ok(60, T + 60);
    ok(0, T);
  });

  test('old tokens are rejected', () => {
    rejected(60, T + 61);
    rejected(0, T + 1);
    rejected(3600, T + 100_000);
  });

  test('without a TTL, age is not checked', () => {
    ok(undefined, T + 10 * 365 * 86400);
    assert.equal(decrypt(key, token).toString(), 'timed');
  });

  test('tokens stamped more than 60 s in the future are rejected only when a TTL is given', () => {
    ok(60, T - 60);
    rejected(60, T - 61);
    rejected(3600, T - 36_000);
    ok(undefined, T - 61);
    ok(undefined, T - 36_000);
  });

  test('the default "now" is the clock', () => {
    const fresh = encrypt(key, Buffer.from('x'));
    assert.equal(decrypt(key, fresh, { ttlSeconds: 60 }).toString(), 'x');
    const old = encrypt(key, Buffer.from('x'), { timestamp: Math.floor(Date.now() / 1000) - 3600 });
    assertDmpError(() => decrypt(key, old, { ttlSeconds: 60 }), 'AUTH');
    const future = encrypt(key, Buffer.from('x'), { timestamp: Math.floor(Date.now() / 1000) + 3600 });
    assertDmpError(() => decrypt(key, future, { ttlSeconds: 60 }), 'AUTH');
  });
});

describe('encrypt with parts, and token lengths', () => {
  const key = parseKey(SPEC_SECRET);
  const options = { timestamp: FIXED_TIME, iv: FIXED_IV };

  test('encrypting parts equals encrypting their concatenation', () => {
    const data = randomBytes(200);
    const splits: number[][] = [[], [0], [1], [15], [16], [17], [5, 6, 7], [16, 32, 48], [100, 100, 199], [200]];
    for (const cuts of splits) {
      const parts: Uint8Array[] = [];
      let at = 0;
      for (const cut of cuts) {
        parts.push(data.subarray(at, cut));
        at = cut;
      }
      parts.push(data.subarray(at));
      assert.deepEqual(encrypt(key, parts, options), encrypt(key, data, options), `cuts ${cuts.join(',')}`);
    }
    // Plain Uint8Array parts (not Buffers), and empty parts.
    const plain = [new Uint8Array([104, 101]), new Uint8Array(0), new Uint8Array([108, 108, 111])];
    assert.deepEqual(encrypt(key, plain, options), encrypt(key, Buffer.from('hello'), options));
    assert.equal(
      encodeToken(encrypt(key, plain, options)),
      readJson<GenerateVector[]>('fernet-spec/generate.json')[0]!.token,
    );
    // No parts at all is the empty plaintext.
    assert.deepEqual(encrypt(key, [], options), encrypt(key, Buffer.alloc(0), options));
    assert.equal(decrypt(key, encrypt(key, [], options)).length, 0);
  });

  test('encryptInPlace makes the same token as encrypt, over the plaintext it is given', () => {
    for (const n of [0, 1, 15, 16, 17, 1000, 64 * 1024 + 3, 300_000]) {
      for (const start of [25, 26, 1024]) {
        const plaintext = randomBytes(n);
        const buffer = Buffer.alloc(start + n + 48, 0xee);
        plaintext.copy(buffer, start);
        const token = encryptInPlace(key, buffer, start, start + n, options);
        assert.equal(token.buffer, buffer.buffer, 'the token is a view of the buffer given');
        assert.equal(token.byteOffset, buffer.byteOffset);
        assert.deepEqual(token, encrypt(key, plaintext, options), `n=${n}, start=${start}`);
        assert.deepEqual(decrypt(key, Buffer.from(token)), plaintext);
      }
    }
  });

  test('onSlice is called after each 64 KiB slice of encryption and decryption, and changes no byte', () => {
    const plaintext = randomBytes(200 * 1024);
    const buffer = Buffer.alloc(1024 + plaintext.length + 48);
    plaintext.copy(buffer, 1024);
    let sealed = 0;
    const token = encryptInPlace(key, buffer, 1024, 1024 + plaintext.length, {
      ...options,
      onSlice: () => {
        sealed += 1;
      },
    });
    assert.equal(sealed, 4, '200 KiB is four slices');
    assert.deepEqual(token, encrypt(key, plaintext, options));
    let opened = 0;
    const copy = Buffer.from(token);
    assert.deepEqual(
      decrypt(key, copy, {
        inPlace: true,
        onSlice: () => {
          opened += 1;
        },
      }),
      plaintext,
    );
    assert.equal(opened, 4, 'the ciphertext of 200 KiB is four slices too');
  });

  test('encryptInPlace refuses a plaintext before offset 25 or a buffer too short for the token', () => {
    assert.throws(() => encryptInPlace(key, Buffer.alloc(200), 24, 100), RangeError);
    assert.throws(() => encryptInPlace(key, Buffer.alloc(100), 25, 60), RangeError);
    assert.throws(() => encryptInPlace(key, Buffer.alloc(200), 100, 90), RangeError);
    assert.equal(encryptInPlace(key, Buffer.alloc(tokenLength(35)), 25, 60).length, tokenLength(35));
  });

  test('a parts token decrypts to the concatenation', () => {
    const parts = [randomBytes(3), randomBytes(1000), randomBytes(29)];
    assert.deepEqual(decrypt(key, encrypt(key, parts)), Buffer.concat(parts));
  });

  test('tokenLength matches the real length for 0..40 bytes', () => {
    assert.equal(MIN_TOKEN_LENGTH, tokenLength(0));
    assert.equal(MIN_TOKEN_LENGTH, 1 + 8 + 16 + 16 + 32);
    for (let n = 0; n <= 40; n++) {
      const plaintext = randomBytes(n);
      const token = encrypt(key, plaintext);
      assert.equal(token.length, tokenLength(n), `n=${n}`);
      assert.deepEqual(decrypt(key, token), plaintext, `n=${n}`);
      assert.equal(tokenLength(n), 57 + (Math.floor(n / 16) + 1) * 16, `n=${n}`);
    }
  });

  test('tokenLength matches the real length for 4 MiB, which round-trips', () => {
    const n = 4 * 1024 * 1024;
    const plaintext = randomBytes(n);
    const token = encrypt(key, plaintext);
    assert.equal(token.length, tokenLength(n));
    assert.equal(tokenLength(n), 57 + n + 16);
    assert.deepEqual(decrypt(key, token), plaintext);
  });

  test('the text form is padded url-safe base64 of the raw token', () => {
    for (let n = 0; n < 40; n++) {
      const raw = encrypt(key, randomBytes(n));
      const text = encodeToken(raw);
      assert.match(text, /^[A-Za-z0-9_-]+={0,2}$/);
      assert.equal(text.length % 4, 0);
      assert.equal(text, raw.toString('base64url') + '='.repeat((4 - (raw.toString('base64url').length % 4)) % 4));
      assert.deepEqual(decodeToken(text), raw);
    }
  });
});
