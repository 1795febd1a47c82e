/**
 * Interrupted gets and puts through the simulated sync, with a small quota so that a file takes
 * many chunks: asked again, each resumes its transfer where it stopped. And a get whose file was
 * changed on the server behind its size and time: the checksum does not match, the corrupt copy
 * is deleted, and the client is told.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { TransferEvent } from '../../src/transfer/events.js';
import { end, only, quickPasscodes, scene } from '../support/serve.js';

const QUOTA = 512 * 1024;
const SIZE = 2 * 1024 * 1024;

/** Events of one run; `stopAfter` aborts the run at the first progress with something done. */
function recorder(stopAfter?: AbortController) {
  const events: TransferEvent[] = [];
  return {
    events,
    onEvent: (event: TransferEvent) => {
      events.push(event);
      if (stopAfter && event.event === 'progress' && event.bytes > 0) stopAfter.abort();
    },
  };
}

describe('resume', () => {
  test('an interrupted get resumes when asked again', async () => {
    const s = await scene({}, { quota: QUOTA });
    try {
      const content = randomBytes(SIZE);
      await writeFile(join(s.dir, 'big.bin'), content);
      const out = join(s.base, 'out');
      const stop = new AbortController();
      const first = recorder(stop);
      const interrupted = only(
        await s.bob.getFiles('alice', ['big.bin'], { out, signal: stop.signal, onEvent: first.onEvent }),
      );
      assert.equal(interrupted.error?.code, 'ABORTED');
      const partials = (await readdir(out)).filter((name) => name.endsWith('.dftp-part'));
      assert.equal(partials.length, 1, 'no partial file left to resume');

      const second = recorder();
      const resumed = only(await s.bob.getFiles('alice', ['big.bin'], { out, onEvent: second.onEvent }));
      assert.equal(resumed.error, undefined, resumed.error?.message);
      const offer = second.events.find((event) => event.event === 'offer');
      assert.equal(offer?.event === 'offer' && offer.resumed, true, 'the second get started over');
      const tids = new Set([...first.events, ...second.events].flatMap((event) => ('tid' in event ? [event.tid] : [])));
      assert.equal(tids.size, 1, 'two transfers for one get');
      assert.deepEqual(await readFile(join(out, 'big.bin')), content);
      assert.deepEqual(await readdir(out), ['big.bin']);
    } finally {
      await end(s);
    }
  });

  test('an interrupted put resumes when asked again', async () => {
    const s = await scene({ allowPut: true }, { quota: QUOTA });
    try {
      const content = randomBytes(SIZE);
      const source = join(s.base, 'upload.bin');
      await writeFile(source, content);
      const stop = new AbortController();
      const first = recorder(stop);
      const interrupted = only(
        await s.bob.putFiles('alice', [source], { signal: stop.signal, onEvent: first.onEvent }),
      );
      assert.equal(interrupted.error?.code, 'ABORTED');

      const second = recorder();
      const resumed = only(await s.bob.putFiles('alice', [source], { onEvent: second.onEvent }));
      assert.equal(resumed.error, undefined, resumed.error?.message);
      const offer = second.events.find((event) => event.event === 'offer');
      assert.equal(offer?.event === 'offer' && offer.resumed, true, 'the second put started over');
      assert.ok(offer?.event === 'offer' && (offer.bytes ?? 0) > 0, 'the server held nothing of the first put');
      assert.deepEqual(await readFile(join(s.dir, 'upload.bin')), content);
      // Nothing left behind in the served folder: no partial, no second copy.
      const left = (await readdir(s.dir)).filter((name) => name.includes('upload'));
      assert.deepEqual(left, ['upload.bin']);
      const listed = (await s.carol.listFolder('alice')).entries.find((entry) => entry.name === 'upload.bin');
      assert.equal(listed?.size, SIZE);
    } finally {
      await end(s);
    }
  });

  test('a checksum mismatch deletes the corrupt copy and says so', async () => {
    const s = await scene({}, { quota: QUOTA });
    try {
      const file = join(s.dir, 'big.bin');
      await writeFile(file, randomBytes(SIZE));
      // A whole second: set again exactly after the change (a Date would lose a fraction).
      const mtime = new Date(1_780_000_000_000);
      await utimes(file, mtime, mtime);
      const out = join(s.base, 'out');
      const stop = new AbortController();
      const first = recorder(stop);
      await s.bob.getFiles('alice', ['big.bin'], { out, signal: stop.signal, onEvent: first.onEvent });
      // The server stops; its file changes where bob already has it, keeping size and time.
      s.stop.abort();
      await s.serving;
      const states = join(s.world.homes.bob ?? '', 'state', 'bob', 'transfers', 'in');
      const [name] = await readdir(states);
      const state = JSON.parse(await readFile(join(states, name ?? ''), 'utf8')) as {
        have: [number, number][];
        offer: { blockSize: number };
      };
      const held = state.have[0]?.[0];
      assert.ok(held !== undefined, 'bob holds no chunk yet');
      const handle = await open(file, 'r+');
      await handle.write(Buffer.from('changed'), 0, 7, held * state.offer.blockSize);
      await handle.close();
      await utimes(file, mtime, mtime);
      const restart = new AbortController();
      const serving = s.alice.serveFolder(s.dir, { passcodes: quickPasscodes(), signal: restart.signal });
      try {
        const events = recorder();
        const result = only(await s.bob.getFiles('alice', ['big.bin'], { out, onEvent: events.onEvent }));
        assert.equal(result.error?.code, 'TRANSFER_FAILED');
        assert.match(result.error?.message ?? '', /checksum mismatch .*the partial file was deleted/);
        assert.deepEqual(await readdir(out), []);
      } finally {
        restart.abort();
        await serving;
      }
    } finally {
      await end(s);
    }
  });
});
