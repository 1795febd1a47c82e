/**
 * dmp chat [PEER]: an interactive prompt over the public API. Typed lines go to the current
 * peer; /commands do the rest (src/cli/chat-input.ts). Everything that arrives (messages,
 * broadcasts, presence changes, finished files, transfer progress) is printed above the line
 * being typed, which is redrawn as it was (ChatScreen).
 *
 * It runs alone or beside the daemon: messages are read from the inbox the receiving process
 * keeps (listen's own way of sharing), so the daemon loses nothing; files are received here only
 * when no daemon or dftp receive holds that role.
 */
import { clearScreenDown, createInterface, cursorTo, type Interface, moveCursor } from 'node:readline';
import type { Argv } from 'yargs';
import { formatSize, HomeLayout, type InboxMessage, isDmpError, type Logger, Peer, type WhoEntry } from '../index.js';
import { CHAT_HELP, type ChatInput, parseChatInput } from './chat-input.js';
import { type GlobalArgs, interruptSignal, peerOptions, sanitize, withGlobalOptions } from './common.js';
import { clockTime, formatHistoryEntry, formatMessage, speaker } from './message-lines.js';
import { parseSince, whoLine } from './presence-commands.js';
import { displayWidth, type Style, styleFor } from './terminal.js';

/** How often the chat looks at who is online, to say who came and went, ms. */
const PRESENCE_CHECK_MS = 2000;
/** Lines of the conversation shown on start. */
const OPENING_LINES = 10;

/**
 * The prompt and what prints above it. On a terminal, printing clears the prompt line (and the
 * rows a long typed line wrapped onto), writes, and redraws the prompt with the typed text and
 * the cursor where they were; elsewhere (a pipe, a script) lines are simply written.
 */
export class ChatScreen {
  readonly rl: Interface;
  readonly terminal: boolean;

  constructor(
    input: NodeJS.ReadableStream & { isTTY?: boolean },
    private readonly output: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
  ) {
    this.terminal = input.isTTY === true && output.isTTY === true;
    this.rl = createInterface({ input, output, terminal: this.terminal, historySize: 200 });
  }

  setPrompt(prompt: string): void {
    this.rl.setPrompt(prompt);
    if (this.terminal) this.rl.prompt(true);
  }

  /** Writes `text` (whole lines) above the prompt, keeping what is being typed. */
  print(text: string): void {
    const lines = text.endsWith('\n') ? text : `${text}\n`;
    if (!this.terminal) {
      this.output.write(lines);
      return;
    }
    moveCursor(this.output, 0, -this.rl.getCursorPos().rows);
    cursorTo(this.output, 0);
    clearScreenDown(this.output);
    this.output.write(lines);
    this.rl.prompt(true);
  }

  /**
   * Takes the line just entered off the screen (the terminal echoed it with the prompt, and
   * readline moved below it): what it said is printed once done, as a chat line, the way
   * weechat and irssi show it, and an incoming line can never land between the two.
   */
  eraseEntered(entered: string): void {
    if (!this.terminal) return;
    const columns = this.output.columns ?? 80;
    const width = displayWidth(this.rl.getPrompt()) + displayWidth(entered);
    moveCursor(this.output, 0, -Math.max(1, Math.ceil(width / columns)));
    cursorTo(this.output, 0);
    clearScreenDown(this.output);
    this.rl.prompt(true);
  }

  /** Writes `text` in place of the prompt and closes: nothing is typed after it. */
  farewell(text: string): void {
    if (this.terminal) {
      moveCursor(this.output, 0, -this.rl.getCursorPos().rows);
      cursorTo(this.output, 0);
      clearScreenDown(this.output);
    }
    this.rl.close();
    this.output.write(text);
  }

  close(): void {
    this.rl.close();
  }
}

interface ChatArgs extends GlobalArgs {
  peer?: string;
}

export function chatCommand() {
  return {
    command: 'chat [peer]',
    describe: 'an interactive chat: messages, broadcasts, who is online, files (/help inside)',
    builder: (y: Argv) =>
      withGlobalOptions(y)
        .positional('peer', { type: 'string', describe: 'the peer typed lines go to (/to changes it)' })
        .example('$0 chat bob', 'talk to bob; /all for everyone, /quit to leave'),
    handler: async (argv: ChatArgs) => {
      const signal = interruptSignal();
      const style = styleFor(process.stdout);
      const options = await peerOptions(argv, 'dmp');
      // Warnings go above the prompt, never across it, once there is one.
      const before = options.logger;
      let logger: Logger | undefined;
      options.logger = { log: (...line) => (logger ?? before)?.log(...line) };
      const peer = await Peer.open(options);
      // Made only now: readline starts reading at once, and no line may go by unheard.
      const screen = new ChatScreen(process.stdin, process.stdout);
      logger = chatLogger(screen, style, argv.verbose ?? false);
      try {
        await new ChatSession(peer, screen, style, new HomeLayout(options.home)).run(argv.peer, signal);
      } finally {
        screen.close();
        peer.close();
      }
    },
  };
}

function chatLogger(screen: ChatScreen, style: Style, verbose: boolean): Logger {
  return {
    log(level, event, fields = {}) {
      if (level === 'debug' || (level === 'info' && !verbose)) return;
      if (event === 'identity-refused') return;
      const reason = typeof fields.reason === 'string' ? fields.reason : undefined;
      const detail =
        event === 'peer-unauthenticated' && reason
          ? reason
          : `${event} ${Object.entries(fields)
              .map(([name, value]) => `${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
              .join(' ')}`;
      screen.print(style.yellow(`! ${sanitize(detail)}`));
    },
  };
}

class ChatSession {
  private current: string | undefined;
  private online = new Map<string, boolean>();
  private readonly stop = new AbortController();
  private readonly work = new Set<Promise<unknown>>();

  constructor(
    private readonly peer: Peer,
    private readonly screen: ChatScreen,
    private readonly style: Style,
    private readonly home: HomeLayout,
  ) {}

  private info(text: string): void {
    this.screen.print(this.style.dim(`-- ${text}`));
  }

  private hint(text: string): void {
    this.screen.print(this.style.yellow(`-- ${text}`));
  }

  private prompt(): string {
    return `${this.current ?? ''}> `;
  }

  /** Runs until /quit, end of input, Ctrl-C or the signal; logs out on the way out. */
  async run(first: string | undefined, signal: AbortSignal): Promise<void> {
    const { peer, screen, stop } = this;
    const onAbort = () => stop.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    // Lines typed (or piped) before the opening lines are out wait for them, in order.
    let ready!: () => void;
    let queue = new Promise<void>((resolve) => {
      ready = resolve;
    });
    screen.rl.on('line', (line) => {
      screen.eraseEntered(line);
      queue = queue.then(() => this.handle(line)).catch((error: unknown) => this.hint(describe(error)));
    });
    // End of input (Ctrl-D, the end of a pipe): what was typed is done first, then goodbye.
    screen.rl.on('close', () => void queue.then(() => stop.abort()));
    screen.rl.on('SIGINT', () => stop.abort());
    if (first !== undefined) this.current = await peer.requirePeer(first);
    this.info(`chat as ${peer.self}${this.current ? ` with ${this.current}` : ''}: /help lists the commands`);
    await this.showHistory(OPENING_LINES);
    await this.checkPresence(true);
    screen.setPrompt(this.prompt());
    ready();
    const services = [
      peer.publishPresence(stop.signal),
      peer.listen({ signal: stop.signal, onMessage: (message) => this.showMessage(message) }),
      this.receiveFiles(),
      this.watchPresence(),
    ].map((task) =>
      task.catch((error: unknown) => {
        if (!stop.signal.aborted) this.hint(describe(error));
      }),
    );
    peer.onActivity((from) => void peer.heard(from));
    await untilAborted(stop.signal);
    await queue;
    await Promise.all([...services, ...this.work]);
    signal.removeEventListener('abort', onAbort);
    screen.farewell(`-- ${peer.self} is offline; bye\n`);
  }

  private async handle(line: string): Promise<void> {
    const input: ChatInput = parseChatInput(line);
    const { peer } = this;
    // A command shows what was typed, dimly; a message shows as a chat line once sent.
    if (!['empty', 'say', 'msg', 'all'].includes(input.kind))
      this.screen.print(this.style.dim(`${this.prompt()}${sanitize(line.trim())}`));
    switch (input.kind) {
      case 'empty':
        break;
      case 'say':
        if (!this.current) this.hint('no current peer: /to PEER first (or /msg PEER TEXT, /all TEXT)');
        else await this.say(this.current, input.text);
        break;
      case 'to':
        this.current = await peer.requirePeer(input.peer);
        this.screen.setPrompt(this.prompt());
        this.info(`talking to ${this.current}`);
        break;
      case 'msg':
        await this.say(input.peer, input.text);
        break;
      case 'all':
        await peer.broadcast([input.text]);
        this.screen.print(this.line(`${peer.self} (to all)`, input.text, true));
        break;
      case 'who':
        this.showWho(
          (await peer.who()).filter((entry) => entry.online),
          'nobody else is online',
        );
        break;
      case 'whosince':
        this.showWho(
          await peer.whoSince(parseSince(input.since, peer.clock.now())),
          `nobody was seen since ${input.since}`,
        );
        break;
      case 'block': {
        const changed = await peer.block(input.peer, input.on);
        this.info(`${input.peer} ${changed ? 'is now' : 'was already'} ${input.on ? 'blocked' : 'not blocked'}`);
        break;
      }
      case 'blocked': {
        const blocked = await peer.blocked();
        this.info(blocked.length === 0 ? 'you block nobody' : `blocked: ${blocked.join(', ')}`);
        break;
      }
      case 'send':
        this.track(this.sendFiles(input.peer, input.files));
        break;
      case 'history':
        await this.showHistory(input.last ?? 20, true);
        break;
      case 'help':
        this.screen.print(CHAT_HELP.map(([what, does]) => `  ${what.padEnd(28)} ${does}`).join('\n'));
        break;
      case 'quit':
        this.stop.abort();
        break;
      case 'hint':
        this.hint(input.hint);
        break;
    }
  }

  private line(who: string, text: string, own: boolean): string {
    const name = own ? this.style.green(who) : this.style.cyan(who);
    return formatMessage(`${this.style.dim(clockTime(this.peer.clock.now(), this.peer.clock.now()))} ${name}`, text);
  }

  private async say(to: string, text: string): Promise<void> {
    const target = await this.peer.requirePeer(to);
    await this.peer.send(target, [text], { signal: this.stop.signal });
    this.screen.print(this.line(`${this.peer.self} → ${target}`, text, true));
  }

  private showMessage(message: InboxMessage): void {
    this.screen.print(this.line(speaker(message), message.text, false));
  }

  private showWho(entries: readonly WhoEntry[], none: string): void {
    if (entries.length === 0) {
      this.info(none);
      return;
    }
    const now = this.peer.clock.now();
    for (const entry of entries) {
      this.screen.print(`  ${whoLine(entry, now)}`);
    }
  }

  private async showHistory(last: number, always = false): Promise<void> {
    const entries = await this.peer.history({ peer: this.current, limit: last });
    if (entries.length === 0) {
      if (always) this.info('no messages yet');
      return;
    }
    const now = this.peer.clock.now();
    this.screen.print(entries.map((entry) => dimLines(this.style, formatHistoryEntry(entry, now))).join(''));
  }

  /** Says who came online and who left, as this machine judges presence (dmp who). */
  private async checkPresence(quietly: boolean): Promise<void> {
    const now = new Map((await this.peer.who()).map((entry) => [entry.peer as string, entry.online]));
    if (quietly) {
      const online = [...now].filter(([, on]) => on).map(([id]) => id);
      this.info(online.length === 0 ? 'nobody else is online' : `online: ${online.join(', ')}`);
    } else {
      for (const [id, on] of now) {
        if (on && !this.online.get(id)) this.info(`${id} is online`);
        if (!on && this.online.get(id)) this.info(`${id} went offline`);
      }
    }
    this.online = now;
  }

  private async watchPresence(): Promise<void> {
    const { clock } = this.peer;
    while (!this.stop.signal.aborted) {
      await clock.sleep(PRESENCE_CHECK_MS, this.stop.signal).catch(() => {});
      if (this.stop.signal.aborted) return;
      await this.checkPresence(false).catch((error: unknown) => this.hint(describe(error)));
    }
  }

  /** Files from others land in DMP_HOME/inbox/<peer>/, as the daemon's do, while no one else receives. */
  private async receiveFiles(): Promise<void> {
    let role: Awaited<ReturnType<Peer['receiveFilesRole']>>;
    try {
      role = await this.peer.receiveFilesRole({
        out: (from) => this.home.folder('inbox', from),
        onEvent: (event) => {
          if (event.event === 'done') {
            this.info(
              `received ${sanitize(event.file)} from ${event.peer} (${formatSize(event.bytes)}, verified) in ${sanitize(event.path ?? '')}`,
            );
          } else if (event.event === 'failed') {
            this.hint(`could not receive ${sanitize(event.file)} from ${event.peer}: ${sanitize(event.reason)}`);
          } else if (event.event === 'offer') {
            this.info(
              `${event.resumed ? 'resuming' : 'receiving'} ${sanitize(event.file)} from ${event.peer} (${formatSize(event.total)})`,
            );
          }
        },
      });
    } catch (error) {
      // The daemon (or dftp receive) takes the files; they land where it puts them.
      if (isDmpError(error, 'LOCKED')) return;
      throw error;
    }
    await untilAborted(this.stop.signal);
    await role.release();
  }

  private async sendFiles(to: string, files: readonly string[]): Promise<void> {
    const target = await this.peer.requirePeer(to);
    const quarters = new Map<string, number>();
    await this.peer.sendFiles(target, files, {
      signal: this.stop.signal,
      onEvent: (event) => {
        switch (event.event) {
          case 'offer':
            this.info(
              `${event.resumed ? 'resuming' : 'sending'} ${sanitize(event.file)} to ${target} (${formatSize(event.total)})`,
            );
            break;
          case 'progress': {
            // A line at each quarter: enough to see it move, never a flood above the prompt.
            const quarter = event.total === 0 ? 4 : Math.floor((event.bytes / event.total) * 4);
            if (quarter > (quarters.get(event.tid) ?? 0) && quarter < 4) {
              quarters.set(event.tid, quarter);
              this.info(`${sanitize(event.file)} to ${target}: ${quarter * 25}%`);
            }
            break;
          }
          case 'done':
            this.info(`sent ${sanitize(event.file)} to ${target} (${formatSize(event.bytes)}, verified)`);
            break;
          case 'failed':
            this.hint(`could not send ${sanitize(event.file)} to ${target}: ${sanitize(event.reason)}`);
            break;
          case 'skipped':
            this.hint(`skipped ${sanitize(event.file)}: ${sanitize(event.reason)}`);
            break;
          case 'waiting':
            break;
        }
      },
    });
  }

  private track(task: Promise<unknown>): void {
    const tracked = task
      .catch((error: unknown) => {
        if (!this.stop.signal.aborted) this.hint(describe(error));
      })
      .finally(() => this.work.delete(tracked));
    this.work.add(tracked);
  }
}

/** Resolves when `signal` aborts, at once if it has. */
function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** Each line of `text` styled dim on its own, so no escape spans a line break. */
function dimLines(style: Style, text: string): string {
  return text.replace(/[^\n]+/g, (line) => style.dim(line));
}

/** One line for an error, the way the commands say it. */
function describe(error: unknown): string {
  if (isDmpError(error)) return sanitize(error.message);
  return `unexpected error: ${sanitize(error instanceof Error ? error.message : String(error))}`;
}
