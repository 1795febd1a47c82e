/**
 * File names of the message layer inside `<relay>/<writer>/<reader>/` (docs/PROTOCOL.md):
 *
 *   msg-<seq, 12 digits>.dmp   one message of the writer's stream to the reader
 *   ack.dmp                    the writer's acknowledgement of the reader's stream (overwritten)
 *   ping-<16 hex>.dmp          a ping (ephemeral)
 *   pong-<16 hex>.dmp          the answer to the reader's ping of that nonce (ephemeral)
 *
 * Readers MUST only consume names that match these patterns exactly.
 */
const MSG = /^msg-(\d{12})\.dmp$/;
const PING = /^ping-([0-9a-f]{16})\.dmp$/;
const PONG = /^pong-([0-9a-f]{16})\.dmp$/;

export const ACK_NAME = 'ack.dmp';
export const MAX_SEQ = 999_999_999_999;

export function messageName(seq: number): string {
  return `msg-${String(seq).padStart(12, '0')}.dmp`;
}

export function parseMessageName(name: string): number | undefined {
  const match = MSG.exec(name);
  return match ? Number(match[1]) : undefined;
}

export function pingName(nonce: string): string {
  return `ping-${nonce}.dmp`;
}

export function pongName(nonce: string): string {
  return `pong-${nonce}.dmp`;
}

export function parsePingName(name: string): string | undefined {
  return PING.exec(name)?.[1];
}

export function parsePongName(name: string): string | undefined {
  return PONG.exec(name)?.[1];
}
