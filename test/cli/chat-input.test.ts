/** Every chat command and every kind of mistake, without a terminal. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseChatInput, splitWords } from '../../src/cli/chat-input.js';

test('lines and commands', () => {
  assert.deepEqual(parseChatInput(''), { kind: 'empty' });
  assert.deepEqual(parseChatInput('   '), { kind: 'empty' });
  assert.deepEqual(parseChatInput('hello there '), { kind: 'say', text: 'hello there ' });
  assert.deepEqual(parseChatInput('//not a command'), { kind: 'say', text: '/not a command' });
  assert.deepEqual(parseChatInput('/to bob'), { kind: 'to', peer: 'bob' });
  assert.deepEqual(parseChatInput('/msg carol see  you at 5'), { kind: 'msg', peer: 'carol', text: 'see  you at 5' });
  assert.deepEqual(parseChatInput('/all hi everyone'), { kind: 'all', text: 'hi everyone' });
  assert.deepEqual(parseChatInput('/who'), { kind: 'who' });
  assert.deepEqual(parseChatInput('/whosince 2h'), { kind: 'whosince', since: '2h' });
  assert.deepEqual(parseChatInput('/block mallory'), { kind: 'block', peer: 'mallory', on: true });
  assert.deepEqual(parseChatInput('/unblock mallory'), { kind: 'block', peer: 'mallory', on: false });
  assert.deepEqual(parseChatInput('/blocked'), { kind: 'blocked' });
  assert.deepEqual(parseChatInput(`/send bob a.txt "my photo.jpg" 'it''s'`), {
    kind: 'send',
    peer: 'bob',
    files: ['a.txt', 'my photo.jpg', 'its'],
  });
  assert.deepEqual(parseChatInput('/history'), { kind: 'history' });
  assert.deepEqual(parseChatInput('/history 5'), { kind: 'history', last: 5 });
  assert.deepEqual(parseChatInput('/HELP'), { kind: 'help' });
  assert.deepEqual(parseChatInput('/quit'), { kind: 'quit' });
  assert.deepEqual(parseChatInput('/exit'), { kind: 'quit' });
});

test('mistakes earn a one-line hint, never an action', () => {
  const hint = (line: string) => {
    const input = parseChatInput(line);
    assert.equal(input.kind, 'hint', `${line} -> ${JSON.stringify(input)}`);
    return input.kind === 'hint' ? input.hint : '';
  };
  assert.equal(hint('/to'), 'usage: /to PEER');
  assert.equal(hint('/to bob carol'), 'usage: /to PEER');
  assert.equal(hint('/msg bob'), 'usage: /msg PEER TEXT');
  assert.equal(hint('/all'), 'usage: /all TEXT');
  assert.equal(hint('/whosince'), 'usage: /whosince 10m');
  assert.equal(hint('/block'), 'usage: /block PEER');
  assert.equal(hint('/send bob'), 'usage: /send PEER FILE...');
  assert.equal(hint('/send bob "open'), 'a quote is not closed');
  assert.equal(hint('/history -3'), 'usage: /history [N]');
  assert.match(hint('/frob'), /^unknown command \/frob: \/help lists them/);
  assert.match(hint('/'), /^unknown command \/:/);
  for (const line of hint('/who me').split('\n')) assert.ok(line.length < 100);
});

test('words split as a shell would', () => {
  assert.deepEqual(splitWords('a  b'), ['a', 'b']);
  assert.deepEqual(splitWords(`"a b" 'c d'e`), ['a b', 'c de']);
  assert.deepEqual(splitWords('""'), ['']);
  assert.equal(splitWords('"a'), undefined);
});
