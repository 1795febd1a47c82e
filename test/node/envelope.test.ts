/**
 * The envelope codec (src/node/envelope.ts) against what a hostile peer holding the key can
 * seal: nesting deep enough to overflow whatever walks it, fields nobody asked for, times the
 * Date type cannot print. Each is a PROTOCOL error or dropped, never a crash further on.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DmpError } from '../../src/errors.js';
import { decodeEnvelope, MAX_JSON_DEPTH } from '../../src/node/envelope.js';
import { MSG } from '../../src/stream/kinds.js';
import { parsePeerId } from '../../src/util/peer-id.js';

const ALICE = parsePeerId('alice');
const BOB = parsePeerId('bob');
const expect = { kind: MSG, from: ALICE, to: BOB };

function envelopeText(extra: string): Buffer {
  return Buffer.from(
    `{"v":2,"type":"msg","from":"alice","to":"bob","seq":1,"sentAt":1795290785123,"body":"hi"${extra}}`,
  );
}

function refused(reason?: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof DmpError, `expected a DmpError, got ${String(error)}`);
    assert.equal(error.code, 'PROTOCOL', error.message);
    if (reason !== undefined) assert.equal(error.data.reason, reason, error.message);
    return true;
  };
}

describe('decodeEnvelope against hostile contents', () => {
  test('a field nested 10,000 deep is a PROTOCOL error (too-deep), not a stack overflow', () => {
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    assert.throws(() => decodeEnvelope(envelopeText(`,"x":${deep}`), expect), refused('too-deep'));
    assert.throws(() => decodeEnvelope(envelopeText(`,"acked":${deep}`), expect), refused('too-deep'));
  });

  test(`nesting up to ${MAX_JSON_DEPTH} levels is read; fields nobody asked for are dropped`, () => {
    const nested = `${'['.repeat(MAX_JSON_DEPTH - 1)}${']'.repeat(MAX_JSON_DEPTH - 1)}`;
    const envelope = decodeEnvelope(envelopeText(`,"x":${nested},"__proto__":{"polluted":true}`), expect);
    assert.deepEqual(Object.keys(envelope).sort(), ['body', 'from', 'sentAt', 'seq', 'to', 'type', 'v']);
    assert.equal((envelope as unknown as Record<string, unknown>).polluted, undefined);
    // Whatever walks the result (a logger, JSON.stringify of a reply) cannot meet anything deep.
    assert.doesNotThrow(() => JSON.stringify(envelope));
  });

  test('times the Date type cannot hold, and negative or fractional numbers, are refused', () => {
    for (const sentAt of ['1e300', '-1', '8.64e15']) {
      const text = Buffer.from(`{"v":2,"type":"msg","from":"alice","to":"bob","seq":1,"sentAt":${sentAt},"body":"hi"}`);
      assert.throws(() => decodeEnvelope(text, expect), refused(), `sentAt ${sentAt}`);
    }
    for (const seq of ['-1', '1.5', '1e300']) {
      const text = Buffer.from(`{"v":2,"type":"msg","from":"alice","to":"bob","seq":${seq},"sentAt":1,"body":"hi"}`);
      assert.throws(() => decodeEnvelope(text, { ...expect }), refused(), `seq ${seq}`);
    }
    // A clock that was never set still writes a time near 1970: that is a time.
    const early = Buffer.from('{"v":2,"type":"msg","from":"alice","to":"bob","seq":1,"sentAt":5000,"body":"hi"}');
    assert.equal(decodeEnvelope(early, expect).sentAt, 5000);
  });

  test('bytes that are not UTF-8, and an envelope that is a list, are refused', () => {
    assert.throws(() => decodeEnvelope(Buffer.from([0x7b, 0xff, 0x7d]), expect), refused('not-utf8'));
    assert.throws(() => decodeEnvelope(Buffer.from('[1,2]'), expect), refused());
  });
});
