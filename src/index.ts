/**
 * The public API of dmp: what `import { ... } from 'dmp'` gives. The CLI (src/cli/) uses only
 * what is exported here.
 */
import type * as Daemon from './daemon/daemon.js';
import type * as Spool from './daemon/spool.js';
import type * as Status from './daemon/status.js';

export { type Cancel, type Clock, every, ManualClock, systemClock } from './clock.js';
export {
  type ConfigFile,
  type ConfigFlags,
  type InitResult,
  initPeer,
  type ResolvedConfig,
  resolveConfig,
  resolveHome,
  type ServeConfig,
} from './config.js';
export {
  decrypt,
  decryptText,
  encrypt,
  encryptText,
  type FernetKey,
  generateKey,
  parseKey,
} from './crypto/fernet.js';
export type { DaemonOptions } from './daemon/daemon.js';
export { jsonLogger, type LogEntry } from './daemon/log-file.js';
export type { PeerReport, SpoolReport, StatusReport, TransferReport } from './daemon/status.js';
export { DmpError, type ErrorCode, isDmpError } from './errors.js';
export type { HistoryEntry } from './history/history.js';
export { HomeLayout } from './local/home.js';
export type { Logger, LogLevel } from './log.js';
export type { AuthVerdict, Quarantine } from './node/auth-guard.js';
export type { WaitReason } from './node/quota.js';
export {
  DEFAULT_QUOTA,
  type ListenOptions,
  type MessageCounts,
  Peer,
  type PeerOptions,
  type ReceiveFilesOptions,
  type SendFilesOptions,
  type SendOptions,
  type WhoEntry,
} from './peer.js';
export { FolderRelay, type FolderRelayOptions } from './relay/folder-relay.js';
export { MemoryRelay, RelayReplica, SimulatedSync, type SimulatedSyncOptions } from './relay/memory-relay.js';
export type { RelayChange, RelayFile, RelayRead, RelayStorage } from './relay/storage.js';
export type {
  AskOptions,
  FileResult,
  GetOptions,
  Listing,
  PasscodeSource,
  PutOptions,
} from './serve/client.js';
export type { AnswerCode, ListEntry } from './serve/control.js';
export {
  OWASP_SCRYPT,
  type PasscodeHasher,
  type PasscodeRecord,
  type ScryptCost,
  scryptPasscodes,
} from './serve/passcodes.js';
export type { ServeEvent, ServeOptions } from './serve/server.js';
export type { PingOptions, PingReply } from './stream/ping.js';
export type { InboxMessage } from './stream/receiver.js';
export { checkBlockSize } from './transfer/block-size.js';
export type { TransferEvent, TransferEventListener } from './transfer/events.js';
export type { TransferRecord } from './transfer/records.js';
export { expandSources, type SourceFile } from './transfer/walk.js';
export { type PeerId, parsePeerId } from './util/peer-id.js';
export { type PrintableOptions, printable } from './util/printable.js';
export { formatSize, parseSize } from './util/size.js';

// The daemon and the status report are loaded when first used: every command imports this
// module, and a short one like `dmp send` should not pay for them.

/** Runs the background service until its signal (src/daemon/daemon.ts). */
export async function runDaemon(...args: Parameters<typeof Daemon.runDaemon>): ReturnType<typeof Daemon.runDaemon> {
  return (await import('./daemon/daemon.js')).runDaemon(...args);
}

/** Copies files into the daemon's outbox for `peer` (src/daemon/spool.ts). */
export async function queueFiles(...args: Parameters<typeof Spool.queueFiles>): ReturnType<typeof Spool.queueFiles> {
  return (await import('./daemon/spool.js')).queueFiles(...args);
}

/** Whether a daemon runs for this home, and its pid (src/daemon/status.ts). */
export async function daemonStatus(
  ...args: Parameters<typeof Status.daemonStatus>
): ReturnType<typeof Status.daemonStatus> {
  return (await import('./daemon/status.js')).daemonStatus(...args);
}

/** Opens a peer only to look, even with the relay folder gone (src/daemon/status.ts). */
export async function openForStatus(
  ...args: Parameters<typeof Status.openForStatus>
): ReturnType<typeof Status.openForStatus> {
  return (await import('./daemon/status.js')).openForStatus(...args);
}

/** What `dmp status` shows (src/daemon/status.ts). */
export async function collectStatus(
  ...args: Parameters<typeof Status.collectStatus>
): ReturnType<typeof Status.collectStatus> {
  return (await import('./daemon/status.js')).collectStatus(...args);
}
