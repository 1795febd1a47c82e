/**
 * The real passcode hasher: OWASP's scrypt parameters, a 16-byte random salt, the asynchronous
 * API (the event loop keeps running while it hashes), comparison in constant time, and records
 * that never hold the passcode.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OWASP_SCRYPT, scryptPasscodes } from '../../src/serve/passcodes.js';

describe('passcode hashing', () => {
  test('OWASP parameters, salted, asynchronous; verifies the right passcode only', async () => {
    assert.deepEqual(OWASP_SCRYPT, { N: 2 ** 17, r: 8, p: 1 });
    const hasher = scryptPasscodes();
    let ticks = 0;
    const ticker = setInterval(() => {
      ticks += 1;
    }, 5);
    const started = performance.now();
    const record = await hasher.hash('correct horse');
    const hashMs = performance.now() - started;
    clearInterval(ticker);
    // The hash took real work, and the event loop ran all along.
    assert.ok(ticks >= Math.floor(hashMs / 5) / 4, `${ticks} ticks during ${hashMs} ms`);
    assert.deepEqual([record.N, record.r, record.p], [2 ** 17, 8, 1]);
    assert.equal(Buffer.from(record.salt, 'base64').length, 16);
    assert.equal(Buffer.from(record.hash, 'base64').length, 32);
    assert.equal(JSON.stringify(record).includes('correct horse'), false);
    const again = await hasher.hash('correct horse');
    assert.notEqual(again.salt, record.salt, 'the salt is not random');
    assert.notEqual(again.hash, record.hash);
    assert.equal(await hasher.verify('correct horse', record), true);
    assert.equal(await hasher.verify('correct horsE', record), false);
    assert.equal(await hasher.verify('', record), false);
    // A record cut short or tampered with never verifies.
    assert.equal(await hasher.verify('correct horse', { ...record, hash: record.hash.slice(0, 20) }), false);
  });

  test('refuses parameters that are not scrypt’s or would take too much memory', () => {
    assert.throws(() => scryptPasscodes({ N: 1000, r: 8, p: 1 }), /scrypt parameters/);
    assert.throws(() => scryptPasscodes({ N: 2 ** 20, r: 8, p: 1 }), /scrypt parameters/);
  });
});
