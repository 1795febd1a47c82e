/**
 * The progress renderer on its own: how bars are laid out at any width, and what a resumed
 * transfer says and measures. What a real terminal shows is checked in terminal.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { layoutRows, ProgressView, type Row } from '../../src/cli/progress.js';
import { displayWidth, styleFor } from '../../src/cli/terminal.js';
import { MiB } from '../support/files.js';

const plain = styleFor({ isTTY: false });

function rows(): Row[] {
  const name = (index: number) => `holiday photos/a-long-name-for-a-holiday-picture-number-${index}.jpg`;
  return [
    { name: name(1), who: 'to bob', bytes: 3 * MiB, total: 6 * MiB, rate: 1.5 * MiB, status: '' },
    {
      name: name(2),
      who: 'to bob',
      bytes: 1 * MiB,
      total: 6 * MiB,
      rate: undefined,
      status: 'relay quota full, waiting for bob',
    },
    { name: 'total', who: '0/2 files', bytes: 4 * MiB, total: 12 * MiB, rate: 3 * MiB, status: '', isTotal: true },
  ];
}

describe('progress bars', () => {
  test('every line fits the width, from 30 to 250 columns; name, bar and percentage always show', () => {
    for (let width = 30; width <= 250; width += 1) {
      const lines = layoutRows(rows(), width, plain);
      assert.equal(lines.length, 3);
      for (const line of lines) {
        assert.ok(displayWidth(line) < width, `${displayWidth(line)} columns at ${width}: ${line}`);
        assert.match(line, /^ \S.* \|[█░]{10,}\| +\d+%/, `at ${width}: ${line}`);
      }
      // The bars line up.
      assert.equal(new Set(lines.map((line) => line.indexOf('|'))).size, 1, lines.join('\n'));
    }
  });

  test('the name is shortened before any column is left out: at 80 columns sizes, speed and ETA still show', () => {
    const [first, second, total] = layoutRows(rows(), 80, plain);
    assert.match(first ?? '', /^ …\S+number-1\.jpg \|/, String(first));
    assert.match(first ?? '', /50% +3 MiB\/6 MiB 1\.5 MiB\/s ETA 0:02/, String(first));
    assert.match(second ?? '', /16% +1 MiB\/6 MiB/, String(second));
    assert.match(total ?? '', /^ total +\|/, String(total));
    const wide = layoutRows(rows(), 200, plain);
    assert.ok(wide[0]?.includes('holiday photos/a-long-name-for-a-holiday-picture-number-1.jpg'), wide[0]);
    assert.ok(wide[1]?.includes('relay quota full, waiting for bob'), wide[1]);
    assert.ok(wide[2]?.includes('0/2 files'), wide[2]);
  });

  test('colour only through the style: plain output has no escapes', () => {
    for (const line of layoutRows(rows(), 120, plain)) assert.doesNotMatch(line, /\x1b/);
  });
});

describe('a resumed transfer', () => {
  test('says "resuming at N%" and measures speed from the bytes of this run only', () => {
    let now = 1_000_000;
    const written: string[] = [];
    const stream = { isTTY: false, write: (text: string) => written.push(text) } as unknown as NodeJS.WriteStream;
    const view = new ProgressView({
      program: 'dftp',
      direction: 'send',
      json: false,
      stream,
      tty: false,
      now: () => now,
    });
    const base = { peer: 'bob', file: 'big.bin', tid: '0123456789abcdef' } as const;
    view.handle({ event: 'offer', ...base, total: 100 * MiB, resumed: true, bytes: 40 * MiB, blockSize: MiB });
    assert.deepEqual(written, ['dftp: resuming big.bin to bob at 40% (40 MiB of 100 MiB)\n']);
    now += 1000;
    view.handle({ event: 'progress', ...base, bytes: 41 * MiB, total: 100 * MiB });
    now += 3000;
    view.handle({ event: 'progress', ...base, bytes: 44 * MiB, total: 100 * MiB });
    // 4 MiB in 4 s: 1 MiB/s, not the 44 MiB the receiver holds over 4 s.
    assert.equal(written.at(-1), 'dftp: big.bin 44 MiB/100 MiB 44% 1 MiB/s\n');
    view.stop();
    assert.equal(written.at(-1), 'dftp: big.bin to bob: stopped at 44% (44 MiB of 100 MiB)\n');
  });

  test('a rerun with another block size says it keeps the one of the interrupted send', () => {
    const written: string[] = [];
    const stream = { isTTY: false, write: (text: string) => written.push(text) } as unknown as NodeJS.WriteStream;
    const view = new ProgressView({ program: 'dftp', direction: 'send', json: false, stream, tty: false });
    view.handle({
      event: 'offer',
      peer: 'bob',
      file: 'big.bin',
      tid: '0123456789abcdef',
      total: MiB,
      resumed: true,
      bytes: 0,
      blockSize: 64 * 1024,
      askedBlockSize: 4 * MiB,
    });
    assert.equal(
      written[0],
      'dftp: big.bin: resuming with the block size of the interrupted send, 64 KiB; use dftp cancel 0123456789abcdef to start over\n',
    );
  });
});
