/**
 * What a line typed into `dmp chat` asks for: a pure parser, so every command and every bad
 * argument is tested without a terminal. A line not starting with '/' is text for the current
 * peer; '//' at the start sends a line that begins with '/'.
 */

export type ChatInput =
  | { kind: 'empty' }
  | { kind: 'say'; text: string }
  | { kind: 'to'; peer: string }
  | { kind: 'msg'; peer: string; text: string }
  | { kind: 'all'; text: string }
  | { kind: 'who' }
  | { kind: 'whosince'; since: string }
  | { kind: 'block'; peer: string; on: boolean }
  | { kind: 'blocked' }
  | { kind: 'send'; peer: string; files: string[] }
  | { kind: 'history'; last?: number }
  | { kind: 'help' }
  | { kind: 'quit' }
  /** A mistake: `hint` is one line saying what was expected. */
  | { kind: 'hint'; hint: string };

/** One line per command, as /help prints them. */
export const CHAT_HELP: readonly [string, string][] = [
  ['TEXT', 'a message to the current peer'],
  ['/to PEER', 'talk to PEER from now on'],
  ['/msg PEER TEXT', 'one message to PEER'],
  ['/all TEXT', 'a broadcast to every peer'],
  ['/who', 'who is online'],
  ['/whosince 10m', 'who was seen in the last 10 minutes (also 1h, 2d, an ISO time)'],
  ['/block PEER, /unblock PEER', 'hear nothing from PEER, or hear it again'],
  ['/blocked', 'the peers you block'],
  ['/send PEER FILE...', 'send files (quote names with spaces)'],
  ['/history [N]', 'the last N messages with the current peer (default 20)'],
  ['/help', 'this list'],
  ['/quit', 'log out and leave (also Ctrl-D, Ctrl-C)'],
];

export function parseChatInput(line: string): ChatInput {
  const trimmed = line.trim();
  if (trimmed === '') return { kind: 'empty' };
  if (line.startsWith('//')) return { kind: 'say', text: line.slice(1) };
  if (!trimmed.startsWith('/')) return { kind: 'say', text: line };
  const match = /^\/(\S*)\s*(.*)$/s.exec(trimmed);
  const command = (match?.[1] ?? '').toLowerCase();
  const rest = match?.[2] ?? '';
  const [first = '', ...others] = rest.split(/\s+/).filter((word) => word !== '');
  const textAfterFirst = rest.slice(rest.indexOf(first) + first.length).trim();
  const usage = (text: string): ChatInput => ({ kind: 'hint', hint: `usage: ${text}` });
  switch (command) {
    case 'to':
      return first && others.length === 0 ? { kind: 'to', peer: first } : usage('/to PEER');
    case 'msg':
      return first && textAfterFirst ? { kind: 'msg', peer: first, text: textAfterFirst } : usage('/msg PEER TEXT');
    case 'all':
      return rest ? { kind: 'all', text: rest } : usage('/all TEXT');
    case 'who':
      return rest ? usage('/who (and /whosince 10m for who was seen since)') : { kind: 'who' };
    case 'whosince':
      return first && others.length === 0 ? { kind: 'whosince', since: first } : usage('/whosince 10m');
    case 'block':
    case 'unblock':
      return first && others.length === 0
        ? { kind: 'block', peer: first, on: command === 'block' }
        : usage(`/${command} PEER`);
    case 'blocked':
      return rest ? usage('/blocked') : { kind: 'blocked' };
    case 'send': {
      const words = splitWords(rest);
      if (words === undefined) return { kind: 'hint', hint: 'a quote is not closed' };
      const [peer, ...files] = words;
      return peer && files.length > 0 ? { kind: 'send', peer, files } : usage('/send PEER FILE...');
    }
    case 'history': {
      if (!rest) return { kind: 'history' };
      const last = Number(rest);
      return Number.isInteger(last) && last > 0 ? { kind: 'history', last } : usage('/history [N]');
    }
    case 'help':
    case '?':
      return { kind: 'help' };
    case 'quit':
    case 'exit':
      return { kind: 'quit' };
    default:
      return { kind: 'hint', hint: `unknown command /${command}: /help lists them (start with // to send a '/')` };
  }
}

/** Words as a shell splits them, with '…' and "…" quoting; undefined when a quote is open. */
export function splitWords(text: string): string[] | undefined {
  const words: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (const char of text) {
    if (quote) {
      if (char === quote) quote = undefined;
      else word = (word ?? '') + char;
    } else if (char === '"' || char === "'") {
      quote = char;
      word ??= '';
    } else if (/\s/.test(char)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + char;
  }
  if (quote) return undefined;
  if (word !== undefined) words.push(word);
  return words;
}
