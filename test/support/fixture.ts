/**
 * What a test file of real processes keeps between its tests: temp relays and folders to remove
 * at the end, and background commands to kill after each test. One call at the top of the file
 * registers the node:test hooks; nothing is left running or on disk whatever a test does.
 */
import { after, afterEach } from 'node:test';
import { type Background, killAll, makePeers, type Peers, type Program, type RunOptions, startCli } from './cli.js';
import { makeTempDir, removeTree } from './files.js';

export interface ProcessFixture {
  /** A temp relay with alice and bob made through `dmp init` (see makePeers). */
  peers(): Promise<Peers>;
  /** A temp folder. */
  tempDir(): Promise<string>;
  /** Starts a background dmp or dftp, killed after the test. */
  bg(program: Program, args: readonly string[], options?: RunOptions): Background;
  /** Runs `cleanup` after the last test of the file. */
  onEnd(cleanup: () => Promise<void>): void;
}

export function processFixture(prefix: string): ProcessFixture {
  const cleanups: (() => Promise<void>)[] = [];
  const background: Background[] = [];
  afterEach(async () => {
    for (const child of background.splice(0)) {
      child.kill('SIGKILL');
      await child.done;
    }
  });
  after(async () => {
    killAll();
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });
  return {
    async peers() {
      const made = await makePeers(prefix);
      cleanups.push(made.cleanup);
      return made;
    },
    async tempDir() {
      const dir = await makeTempDir(prefix);
      cleanups.push(() => removeTree(dir));
      return dir;
    },
    bg(program, args, options = {}) {
      const started = startCli(program, args, options);
      background.push(started);
      return started;
    },
    onEnd(cleanup) {
      cleanups.push(cleanup);
    },
  };
}
