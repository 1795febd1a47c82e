/**
 * The kinds of a served folder (docs/PROTOCOL.md, "Serving a folder"): a client's request
 * (`serve-req`) in `<relay>/<client>/<server>/` and the server's response (`serve-res`, in one
 * or more parts) in `<relay>/<server>/<client>/`. Both are envelopes, sealed with the pair's key
 * at the node's boundary. These codecs are pure: plaintext bodies in, typed values out.
 *
 * A request whose envelope authenticates but whose body is not a request is still answered
 * (with a one-line `bad-request`): its body parses to a `BadRequest` instead of throwing, so the
 * server can tell the client what was wrong. Every field is checked with bounds first.
 */
import { DmpError } from '../errors.js';
import { defineKind } from '../node/envelope.js';
import { MAX_MTIME_MS } from '../transfer/control.js';
import { TID_PATTERN } from '../transfer/names.js';
import { boundedArray, boundedInt, boundedString, plainObject } from '../util/bounds.js';

/** Request ids: 16 hex digits chosen by the client, fresh for every request. */
export const REQUEST_ID = /^[0-9a-f]{16}$/;
const REQUEST_FILE = /^serve-req-([0-9a-f]{16})\.dmp$/;
const RESPONSE_FILE = /^serve-res-([0-9a-f]{16})-(\d{3})\.dmp$/;

/** The largest request file read (sealed); a larger one is answered `bad-request` unread. */
export const MAX_REQUEST_FILE = 64 * 1024;
/** The largest plaintext of one response part: sealed, it stays well under MAX_CONTROL_FILE. */
export const MAX_PART_BYTES = 256 * 1024;
/** Parts of one response at most (a listing of about a million entries). */
export const MAX_PARTS = 999;
/** Entries of one listing at most; a larger folder is listed in part, saying so. */
export const MAX_ENTRIES = 100_000;
/** A path in the served folder, '/'-separated, in UTF-16 code units. */
export const MAX_PATH_LENGTH = 4096;
/** A passcode, in UTF-16 code units. */
export const MAX_PASSCODE_LENGTH = 1024;
/** A one-line message in an answer. */
const MAX_MESSAGE_LENGTH = 500;
/** One name in a listing (a file system allows 255 bytes; this leaves room for any encoding). */
const MAX_ENTRY_NAME = 1024;
const MAX_RETRY_AFTER_MS = 366 * 24 * 3600 * 1000;

export const requestName = (id: string): string => `serve-req-${id}.dmp`;
export const responseName = (id: string, part: number): string =>
  `serve-res-${id}-${String(part).padStart(3, '0')}.dmp`;

export function parseRequestName(name: string): string | undefined {
  return REQUEST_FILE.exec(name)?.[1];
}

export function parseResponseName(name: string): { id: string; part: number } | undefined {
  const match = RESPONSE_FILE.exec(name);
  return match ? { id: match[1] ?? '', part: Number(match[2]) } : undefined;
}

/** What a client may ask. */
export type ServeRequest =
  | { op: 'ls'; path: string }
  | { op: 'get'; name: string; passcode?: string }
  | { op: 'put'; name: string; size: number; mtimeMs: number; protect: boolean; passcode?: string }
  | { op: 'rm'; name: string; passcode?: string };

export type ServeOp = ServeRequest['op'];

/** A request body as it came: the request, or why it is not one. */
export type RequestBody = { id: string; request: ServeRequest } | { id?: string; bad: string };

/** Why a request was not done. */
export type AnswerCode =
  /** Not a request this server understands (malformed, oversized, unknown op). */
  | 'bad-request'
  /** No such file or folder in the served folder. */
  | 'not-found'
  /** There is something, but it is never served: a link, a FIFO, a device, a hidden name. */
  | 'not-served'
  /** This peer may not do this here (not on the allow list; puts or deletes are off). */
  | 'not-allowed'
  /** The file is protected: give its passcode. */
  | 'passcode-needed'
  /** A wrong passcode, or locked out for a while (`retryAfterMs` says how long, once locked). */
  | 'denied'
  /** A put of a name that exists, on a server that does not replace files. */
  | 'exists'
  /** Too much at once: ask again after `retryAfterMs`. */
  | 'busy'
  /** The server failed to do it (a local error, told in one line). */
  | 'failed';

const ANSWER_CODES: readonly AnswerCode[] = [
  'bad-request',
  'not-found',
  'not-served',
  'not-allowed',
  'passcode-needed',
  'denied',
  'exists',
  'busy',
  'failed',
];

export interface AnswerError {
  code: AnswerCode;
  message: string;
  retryAfterMs?: number;
}

export interface ListEntry {
  /** One name, in the listed folder. */
  name: string;
  type: 'file' | 'folder';
  /** Bytes (files). */
  size: number;
  mtimeMs: number;
  /** Hex SHA-256 of the file, from the server's index. */
  sha256?: string;
  /** Reading or deleting it needs a passcode. */
  protected?: boolean;
}

/** What a get starts: the transfer that brings the file. */
export interface GetFile {
  /** The path asked for, as served. */
  name: string;
  /** The transfer id of the DFTP transfer carrying it (its offer answers this request). */
  tid: string;
  size: number;
  mtimeMs: number;
}

/** One response, whole (its parts joined). */
export interface ServeResponse {
  id: string;
  ok: boolean;
  error?: AnswerError;
  /** ls: the entries, sorted by name. */
  entries?: ListEntry[];
  /** ls: the folder holds more than MAX_ENTRIES. */
  truncated?: boolean;
  /** get: the transfer started. */
  file?: GetFile;
  /** put: the name the file will have in the served folder; rm: the name removed. */
  name?: string;
}

/** One part of a response as published: part 0 carries everything but the later entries. */
export interface ResponsePart extends ServeResponse {
  part: number;
  parts: number;
}

function bad(reason: string): DmpError {
  return new DmpError('PROTOCOL', reason);
}

function optionalPasscode(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const passcode = boundedString(value, MAX_PASSCODE_LENGTH, 'passcode');
  if (passcode.length === 0) throw bad('passcode must not be empty');
  return passcode;
}

function requiredName(value: unknown, field = 'name'): string {
  const name = boundedString(value, MAX_PATH_LENGTH, field);
  if (name.length === 0) throw bad(`${field} must not be empty`);
  return name;
}

/** Parses a request body; never throws: what is wrong with it becomes its answer. */
export function parseRequestBody(value: unknown): RequestBody {
  let id: string | undefined;
  try {
    const body = plainObject(value, 'request');
    if (typeof body.id === 'string' && REQUEST_ID.test(body.id)) id = body.id;
    else throw bad('request id must be 16 hex digits');
    const op = body.op;
    let request: ServeRequest;
    if (op === 'ls') {
      request = { op, path: boundedString(body.path ?? '', MAX_PATH_LENGTH, 'path') };
    } else if (op === 'get' || op === 'rm') {
      const passcode = optionalPasscode(body.passcode);
      request = { op, name: requiredName(body.name), ...(passcode === undefined ? {} : { passcode }) };
    } else if (op === 'put') {
      const passcode = optionalPasscode(body.passcode);
      const mtimeMs = body.mtimeMs;
      if (typeof mtimeMs !== 'number' || !(mtimeMs >= 0 && mtimeMs <= MAX_MTIME_MS)) {
        throw bad('mtimeMs must be a time between 1970 and 2200');
      }
      if (body.protect !== undefined && typeof body.protect !== 'boolean') throw bad('protect must be true or false');
      request = {
        op,
        name: requiredName(body.name),
        size: boundedInt(body.size, 0, Number.MAX_SAFE_INTEGER, 'size'),
        mtimeMs,
        protect: body.protect === true,
        ...(passcode === undefined ? {} : { passcode }),
      };
    } else {
      throw bad(typeof op === 'string' ? 'unknown op: give ls, get, put or rm' : 'op must be ls, get, put or rm');
    }
    return { id, request };
  } catch (error) {
    if (!(error instanceof DmpError)) throw error;
    return { ...(id === undefined ? {} : { id }), bad: error.message };
  }
}

function parseAnswerError(value: unknown): AnswerError {
  const error = plainObject(value, 'error');
  if (!ANSWER_CODES.includes(error.code as AnswerCode)) throw bad('error code is unknown');
  const message = boundedString(error.message, MAX_MESSAGE_LENGTH, 'message');
  return {
    code: error.code as AnswerCode,
    message,
    ...(error.retryAfterMs === undefined
      ? {}
      : { retryAfterMs: boundedInt(error.retryAfterMs, 0, MAX_RETRY_AFTER_MS, 'retryAfterMs') }),
  };
}

function parseEntry(value: unknown): ListEntry {
  const entry = plainObject(value, 'entry');
  const name = boundedString(entry.name, MAX_ENTRY_NAME, 'name');
  if (name.length === 0 || name.includes('/') || name === '.' || name === '..') throw bad('entry name is not a name');
  if (entry.type !== 'file' && entry.type !== 'folder') throw bad('entry type must be file or folder');
  const mtimeMs = entry.mtimeMs;
  if (typeof mtimeMs !== 'number' || !(mtimeMs >= 0 && mtimeMs <= MAX_MTIME_MS)) throw bad('entry mtimeMs is no time');
  if (entry.sha256 !== undefined && (typeof entry.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256))) {
    throw bad('entry sha256 must be 64 hex digits');
  }
  if (entry.protected !== undefined && typeof entry.protected !== 'boolean') throw bad('entry protected is no flag');
  return {
    name,
    type: entry.type,
    size: boundedInt(entry.size, 0, Number.MAX_SAFE_INTEGER, 'size'),
    mtimeMs,
    ...(entry.sha256 === undefined ? {} : { sha256: entry.sha256 }),
    ...(entry.protected === true ? { protected: true } : {}),
  };
}

/** Parses one response part (throws a PROTOCOL DmpError on anything else). */
export function parseResponsePart(value: unknown): ResponsePart {
  const body = plainObject(value, 'response');
  if (typeof body.id !== 'string' || !REQUEST_ID.test(body.id)) throw bad('response id must be 16 hex digits');
  const parts = boundedInt(body.parts, 1, MAX_PARTS, 'parts');
  const part = boundedInt(body.part, 0, parts - 1, 'part');
  if (typeof body.ok !== 'boolean') throw bad('response ok must be true or false');
  const response: ResponsePart = { id: body.id, part, parts, ok: body.ok };
  if (body.error !== undefined) response.error = parseAnswerError(body.error);
  if (body.entries !== undefined) response.entries = boundedArray(body.entries, MAX_ENTRIES, 'entries').map(parseEntry);
  if (body.truncated !== undefined) {
    if (typeof body.truncated !== 'boolean') throw bad('truncated must be true or false');
    response.truncated = body.truncated;
  }
  if (body.file !== undefined) {
    const file = plainObject(body.file, 'file');
    if (typeof file.tid !== 'string' || !TID_PATTERN.test(file.tid)) throw bad('file tid must be 16 hex digits');
    const mtimeMs = file.mtimeMs;
    if (typeof mtimeMs !== 'number' || !(mtimeMs >= 0 && mtimeMs <= MAX_MTIME_MS)) throw bad('file mtimeMs is no time');
    response.file = {
      name: requiredName(file.name),
      tid: file.tid,
      size: boundedInt(file.size, 0, Number.MAX_SAFE_INTEGER, 'size'),
      mtimeMs,
    };
  }
  if (body.name !== undefined) response.name = requiredName(body.name);
  if (!response.ok && response.error === undefined) throw bad('a refusal must say why');
  return response;
}

/**
 * Splits a response into parts of at most `maxBytes` of JSON each: the entries of a large
 * listing are spread over as many parts as they need; everything else rides in part 0.
 */
export function splitResponse(response: ServeResponse, maxBytes = MAX_PART_BYTES): ResponsePart[] {
  const { entries, ...head } = response;
  if (entries === undefined) return [{ ...head, part: 0, parts: 1 }];
  // Room for the head, the part numbers and the list's brackets.
  const budget = maxBytes - Buffer.byteLength(JSON.stringify({ ...head, part: MAX_PARTS, parts: MAX_PARTS })) - 32;
  const groups: ListEntry[][] = [[]];
  let used = 0;
  for (const entry of entries) {
    const size = Buffer.byteLength(JSON.stringify(entry)) + 1;
    const current = groups.at(-1) as ListEntry[];
    if (used + size > budget && current.length > 0) {
      groups.push([entry]);
      used = size;
    } else {
      current.push(entry);
      used += size;
    }
  }
  if (groups.length > MAX_PARTS) throw new DmpError('PROTOCOL', 'a response cannot have that many parts');
  return groups.map((group, part) =>
    part === 0
      ? { ...head, entries: group, part, parts: groups.length }
      : { id: head.id, ok: head.ok, entries: group, part, parts: groups.length },
  );
}

/** Joins the parts of one response, in order (each checked by parseResponsePart). */
export function joinResponse(parts: readonly ResponsePart[]): ServeResponse {
  const [first, ...rest] = [...parts].sort((a, b) => a.part - b.part);
  if (first?.part !== 0 || parts.length !== first.parts) throw bad('response parts are missing');
  const { part: _part, parts: _parts, ...response } = first;
  for (const [index, later] of rest.entries()) {
    if (later.part !== index + 1 || later.id !== first.id) throw bad('response parts do not belong together');
    if (later.entries) response.entries = [...(response.entries ?? []), ...later.entries];
  }
  if ((response.entries?.length ?? 0) > MAX_ENTRIES) throw bad('a listing has too many entries');
  return response;
}

export const SERVE_REQUEST = defineKind('serve-req', REQUEST_FILE, parseRequestBody);
export const SERVE_RESPONSE = defineKind('serve-res', RESPONSE_FILE, parseResponsePart);
