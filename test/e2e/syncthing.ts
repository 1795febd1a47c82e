/**
 * A real sync engine for end-to-end tests: two Syncthing instances on loopback, each with its own
 * home and its own copy of one relay folder, sharing that folder with each other. Nothing leaves
 * 127.0.0.1: discovery, relays, NAT, usage reporting, crash reporting and upgrades are all off.
 *
 *   const pair = await startSyncthingPair();
 *   // pair.a.folder and pair.b.folder are two copies of the same synced folder
 *   await pair.stop();
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../support/wait.js';

export const LOOPBACK = '127.0.0.1';
export const FOLDER_ID = 'dmp-relay';

export interface SyncthingInstance {
  /** 'a' or 'b'. */
  readonly name: string;
  /** Syncthing's --home (config.xml, keys, database). */
  readonly home: string;
  /** This instance's copy of the shared folder. */
  readonly folder: string;
  readonly deviceId: string;
  readonly apiKey: string;
  readonly listenPort: number;
  readonly guiPort: number;
  /** Syncthing's own stdout and stderr. */
  readonly logPath: string;
  readonly child: ChildProcess;
}

export interface SyncthingPair {
  /** The temp folder holding both homes and both copies. */
  readonly root: string;
  readonly a: SyncthingInstance;
  readonly b: SyncthingInstance;
  /** Calls Syncthing's REST API of one instance (GET), returning the parsed JSON. */
  rest(instance: SyncthingInstance, path: string): Promise<unknown>;
  /** The last lines of both instances' logs, for assertion messages. */
  logs(lines?: number): Promise<string>;
  /** Kills both instances (SIGTERM, then SIGKILL) and removes the temp folder. */
  stop(): Promise<void>;
}

export interface PairOptions {
  /** Folder rescan interval, s (default 10). */
  rescanIntervalS?: number;
  /** Watcher delay, s (default 1). */
  fsWatcherDelayS?: number;
  /** How long to wait for the two instances to connect and sync a probe each way (default 90 s). */
  readyTimeoutMs?: number;
  /** Keep the temp folder after stop() (debugging). */
  keep?: boolean;
}

/** True when a `syncthing` binary runs here. */
export function syncthingInstalled(): boolean {
  const result = spawnSync('syncthing', ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return result.status === 0 && /syncthing v\d/.test(result.stdout);
}

/** The installed version line, e.g. `syncthing v1.19.2-ds1 ...`. */
export function syncthingVersion(): string {
  return spawnSync('syncthing', ['--version'], { encoding: 'utf8', timeout: 30_000 }).stdout.trim();
}

/** A port that was free on 127.0.0.1 a moment ago (bound on port 0, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, LOOPBACK, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('no port from the OS'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** Distinct free ports. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

interface Generated {
  home: string;
  deviceId: string;
  apiKey: string;
}

/** `syncthing generate --home=H --no-default-folder`, then reads the device id and API key. */
async function generate(home: string): Promise<Generated> {
  const result = spawnSync('syncthing', ['generate', `--home=${home}`, '--no-default-folder'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: syncthingEnv(),
  });
  if (result.status !== 0) {
    throw new Error(`syncthing generate failed (${result.status}): ${result.stderr}${result.stdout}`);
  }
  const config = await readFile(join(home, 'config.xml'), 'utf8');
  const apiKey = /<apikey>([^<]+)<\/apikey>/.exec(config)?.[1];
  if (!apiKey) throw new Error(`no API key in ${home}/config.xml`);
  const shown = spawnSync('syncthing', [`--home=${home}`, '--device-id'], {
    encoding: 'utf8',
    timeout: 60_000,
    env: syncthingEnv(),
  });
  const deviceId =
    /([A-Z2-7]{7}(?:-[A-Z2-7]{7}){7})/.exec(shown.stdout)?.[1] ?? /<device id="([^"]+)"/.exec(config)?.[1];
  if (!deviceId) throw new Error(`no device id for ${home}: ${shown.stderr}${shown.stdout}`);
  return { home, deviceId, apiKey };
}

function syncthingEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, STNODEFAULTFOLDER: '1', STNOUPGRADE: '1' };
  // Never let a test runner's settings or a user's Syncthing tracing leak in.
  delete env.STTRACE;
  delete env.STGUIADDRESS;
  delete env.STGUIAPIKEY;
  delete env.NODE_OPTIONS;
  delete env.NODE_TEST_CONTEXT;
  return env;
}

interface ConfigSpec {
  self: Generated & { listenPort: number; guiPort: number; folder: string; name: string };
  peers: { deviceId: string; listenPort: number; name: string }[];
  rescanIntervalS: number;
  fsWatcherDelayS: number;
}

/** A complete config.xml: loopback only, nothing phoning home, one folder shared with both. */
function configXml(spec: ConfigSpec): string {
  const devices = [
    { deviceId: spec.self.deviceId, listenPort: spec.self.listenPort, name: spec.self.name },
    ...spec.peers,
  ];
  const deviceXml = devices
    .map(
      (
        device,
      ) => `    <device id="${device.deviceId}" name="${xml(device.name)}" compression="metadata" introducer="false" skipIntroductionRemovals="false" introducedBy="">
        <address>tcp://${LOOPBACK}:${device.listenPort}</address>
        <paused>false</paused>
        <autoAcceptFolders>false</autoAcceptFolders>
    </device>`,
    )
    .join('\n');
  const folderDevices = devices
    .map((device) => `        <device id="${device.deviceId}" introducedBy=""></device>`)
    .join('\n');
  return `<configuration version="36">
    <folder id="${FOLDER_ID}" label="${FOLDER_ID}" path="${xml(spec.self.folder)}" type="sendreceive" rescanIntervalS="${spec.rescanIntervalS}" fsWatcherEnabled="true" fsWatcherDelayS="${spec.fsWatcherDelayS}" ignorePerms="false" autoNormalize="true">
        <filesystemType>basic</filesystemType>
${folderDevices}
        <minDiskFree unit="%">0</minDiskFree>
        <markerName>.stfolder</markerName>
        <maxConflicts>10</maxConflicts>
    </folder>
${deviceXml}
    <gui enabled="true" tls="false" debugging="false">
        <address>${LOOPBACK}:${spec.self.guiPort}</address>
        <apikey>${xml(spec.self.apiKey)}</apikey>
        <theme>default</theme>
    </gui>
    <options>
        <listenAddress>tcp://${LOOPBACK}:${spec.self.listenPort}</listenAddress>
        <globalAnnounceServer>default</globalAnnounceServer>
        <globalAnnounceEnabled>false</globalAnnounceEnabled>
        <localAnnounceEnabled>false</localAnnounceEnabled>
        <reconnectionIntervalS>5</reconnectionIntervalS>
        <relaysEnabled>false</relaysEnabled>
        <startBrowser>false</startBrowser>
        <natEnabled>false</natEnabled>
        <urAccepted>-1</urAccepted>
        <urSeen>3</urSeen>
        <autoUpgradeIntervalH>0</autoUpgradeIntervalH>
        <upgradeToPreReleases>false</upgradeToPreReleases>
        <restartOnWakeup>false</restartOnWakeup>
        <minHomeDiskFree unit="%">0</minHomeDiskFree>
        <crashReportingEnabled>false</crashReportingEnabled>
        <announceLANAddresses>false</announceLANAddresses>
        <setLowPriority>false</setLowPriority>
    </options>
</configuration>
`;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Whatever happens to the test process, no Syncthing outlives it. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

function startInstance(home: string): { child: ChildProcess; log: WriteStream; logPath: string } {
  const logPath = join(home, 'syncthing.log');
  const log = createWriteStream(logPath);
  const child = spawn('syncthing', ['serve', `--home=${home}`, '--no-browser', '--no-restart', '--no-upgrade'], {
    env: syncthingEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  child.on('error', (error) => log.write(`spawn error: ${error.message}\n`));
  child.on('exit', () => running.delete(child));
  return { child, log, logPath };
}

async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
  if ((await Promise.race([exited, timer])) === 'timeout') {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.race([exited, sleep(5000)]);
  }
  running.delete(child);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function tail(path: string, lines: number): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.split('\n').slice(-lines).join('\n');
}

/**
 * Starts two Syncthing instances that share one folder over loopback, and returns once a file
 * written in each copy has appeared in the other.
 */
export async function startSyncthingPair(options: PairOptions = {}): Promise<SyncthingPair> {
  installExitHook();
  const root = await mkdtemp(join(tmpdir(), 'dmp-e2e-st-'));
  const children: { child: ChildProcess; log: WriteStream }[] = [];
  let stopped = false;
  const instances: SyncthingInstance[] = [];

  const rest = async (instance: SyncthingInstance, path: string): Promise<unknown> => {
    const response = await fetch(`http://${LOOPBACK}:${instance.guiPort}${path}`, {
      headers: { 'X-API-Key': instance.apiKey },
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) throw new Error(`GET ${path} on syncthing ${instance.name}: HTTP ${response.status}`);
    return response.json();
  };

  const logs = async (lines = 40): Promise<string> => {
    const parts: string[] = [];
    for (const instance of instances) {
      parts.push(`--- syncthing ${instance.name} (${instance.logPath}) ---\n${await tail(instance.logPath, lines)}`);
    }
    return parts.join('\n');
  };

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all(children.map(({ child }) => stopChild(child)));
    for (const { log } of children) log.end();
    if (!options.keep) await rm(root, { recursive: true, force: true, maxRetries: 3 });
  };

  try {
    const [portA, portB, guiA, guiB] = await freePorts(4);
    const specs = [
      { name: 'a', listenPort: portA!, guiPort: guiA! },
      { name: 'b', listenPort: portB!, guiPort: guiB! },
    ];
    const generated: (Generated & (typeof specs)[number] & { folder: string })[] = [];
    for (const spec of specs) {
      const home = join(root, `syncthing-${spec.name}`);
      const folder = join(root, `relay-${spec.name}`);
      await mkdir(folder, { recursive: true });
      generated.push({ ...(await generate(home)), ...spec, folder });
    }
    for (const self of generated) {
      const peers = generated
        .filter((other) => other !== self)
        .map((other) => ({ deviceId: other.deviceId, listenPort: other.listenPort, name: other.name }));
      await writeFile(
        join(self.home, 'config.xml'),
        configXml({
          self,
          peers,
          rescanIntervalS: options.rescanIntervalS ?? 10,
          fsWatcherDelayS: options.fsWatcherDelayS ?? 1,
        }),
      );
    }
    for (const self of generated) {
      const started = startInstance(self.home);
      children.push(started);
      instances.push({
        name: self.name,
        home: self.home,
        folder: self.folder,
        deviceId: self.deviceId,
        apiKey: self.apiKey,
        listenPort: self.listenPort,
        guiPort: self.guiPort,
        logPath: started.logPath,
        child: started.child,
      });
    }
    const [a, b] = instances as [SyncthingInstance, SyncthingInstance];
    const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);
    const pair: SyncthingPair = { root, a, b, rest, logs, stop };
    await waitReady(pair, deadline);
    return pair;
  } catch (error) {
    const detail = await logs(60).catch(() => '');
    await stop().catch(() => {});
    throw new Error(`${(error as Error).message}\n${detail}`, { cause: error });
  }
}

/** Connected both ways, and a probe file written in each copy appears in the other. */
async function waitReady(pair: SyncthingPair, deadline: number): Promise<void> {
  const { a, b } = pair;
  const alive = () => {
    for (const instance of [a, b]) {
      if (instance.child.exitCode !== null || instance.child.signalCode !== null) {
        throw new Error(`syncthing ${instance.name} exited (${instance.child.exitCode ?? instance.child.signalCode})`);
      }
    }
  };
  const until = async (what: string, predicate: () => Promise<boolean>) => {
    for (;;) {
      alive();
      if (await predicate().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`syncthing pair not ready: timed out waiting for ${what}`);
      await sleep(200);
    }
  };
  const connected = (self: SyncthingInstance, other: SyncthingInstance) => async () => {
    const answer = (await pair.rest(self, '/rest/system/connections')) as {
      connections?: Record<string, { connected?: boolean }>;
    };
    return answer.connections?.[other.deviceId]?.connected === true;
  };
  await until('the GUI/REST API of a', async () => (await pair.rest(a, '/rest/system/ping')) !== undefined);
  await until('the GUI/REST API of b', async () => (await pair.rest(b, '/rest/system/ping')) !== undefined);
  await until('a to connect to b', connected(a, b));
  await until('b to connect to a', connected(b, a));
  // A dot-name at the folder root: dmp ignores it, and it is removed again below.
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    const name = `.e2e-probe-${from.name}-${process.pid}`;
    const text = `probe from ${from.name} ${Date.now()}\n`;
    await writeFile(join(from.folder, name), text);
    await until(`a probe written in copy ${from.name} to appear in copy ${to.name}`, async () => {
      return (await readFile(join(to.folder, name), 'utf8')) === text;
    });
    await unlink(join(from.folder, name));
    await until(`the probe's deletion to reach copy ${to.name}`, async () => !(await exists(join(to.folder, name))));
  }
}
