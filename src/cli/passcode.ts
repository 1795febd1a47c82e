/**
 * Passcodes of protected files, as the user gives them: asked on the terminal without echo, or
 * read from `--passcode-file F` by scripts. Never from the command line (other users of the
 * machine see it in the process list, and shells keep it in their history), never printed.
 */
import { open } from 'node:fs/promises';
import { DmpError, type PasscodeSource } from '../index.js';
import { sanitize } from './common.js';

/** A passcode file holds one line; anything longer than this is not one. */
const MAX_FILE_BYTES = 4096;

/** The first line of `path`, without its line ending. */
async function readPasscodeFile(path: string): Promise<string> {
  let text: string;
  try {
    const handle = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(MAX_FILE_BYTES + 1);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      if (bytesRead > MAX_FILE_BYTES) throw new DmpError('USAGE', `${path} is too large to be a passcode file`);
      text = buffer.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof DmpError) throw error;
    throw new DmpError('USAGE', `cannot read the passcode file ${path}: ${(error as { code?: string }).code ?? error}`);
  }
  const passcode = text.split(/\r?\n/)[0] ?? '';
  if (passcode === '') throw new DmpError('USAGE', `the passcode file ${path} is empty`);
  return passcode;
}

/**
 * Reads a line from the terminal without echoing it: the terminal is put in raw mode, so each
 * key comes as it is typed; Enter ends the line, Backspace takes a character back, Ctrl-U the
 * whole line, Ctrl-C gives up.
 */
export function askHidden(question: string, input: NodeJS.ReadStream = process.stdin): Promise<string> {
  return new Promise((resolve, reject) => {
    process.stderr.write(question);
    const wasRaw = input.isRaw;
    input.setRawMode(true);
    input.setEncoding('utf8');
    input.resume();
    let text = '';
    const finish = () => {
      input.off('data', onData);
      input.setRawMode(wasRaw);
      input.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (char === '\r' || char === '\n') {
          finish();
          resolve(text);
          return;
        }
        if (char === '\u0003' || (char === '\u0004' && text === '')) {
          finish();
          reject(new DmpError('ABORTED', 'no passcode given'));
          return;
        }
        if (char === '\u007f' || char === '\b') text = Array.from(text).slice(0, -1).join('');
        else if (char === '\u0015') text = '';
        else if (char >= ' ') text += char;
      }
    };
    input.on('data', onData);
  });
}

export interface PasscodeOptions {
  /** --passcode-file. */
  file?: string;
  /** Ask twice on a terminal (a new passcode, for --protect). */
  confirm?: boolean;
}

/**
 * Where passcodes come from in this run: the file, else the terminal (asked once, then reused for
 * every file of the run), else nowhere: a DENIED error that says how to give one.
 */
export function passcodeSource(options: PasscodeOptions): PasscodeSource {
  let known: Promise<string> | undefined;
  return (file: string) => {
    known ??= (async () => {
      if (options.file !== undefined) return readPasscodeFile(options.file);
      if (!process.stdin.isTTY || !process.stderr.isTTY) {
        throw new DmpError(
          'DENIED',
          `${sanitize(file)} ${options.confirm ? 'is to be protected' : 'is protected'}: give --passcode-file F (there is no terminal to ask on)`,
        );
      }
      const what = options.confirm ? 'New passcode' : 'Passcode';
      const passcode = await askHidden(`${what} for ${sanitize(file)}: `);
      if (passcode === '') throw new DmpError('USAGE', 'a passcode must not be empty');
      if (options.confirm && (await askHidden('The same again: ')) !== passcode) {
        throw new DmpError('USAGE', 'the two passcodes differ');
      }
      return passcode;
    })();
    return known;
  };
}
