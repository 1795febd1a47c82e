/**
 * Which ArrayBuffers may be moved to another thread instead of copied: only those a buffer owns
 * entirely. Small Buffers share Node's allocation pool, and moving the pool would break every
 * other Buffer in it.
 */
export function transferList(buffers: readonly Uint8Array[]): ArrayBuffer[] {
  const list: ArrayBuffer[] = [];
  for (const buffer of buffers) {
    const owner = buffer.buffer;
    if (owner instanceof ArrayBuffer && buffer.byteOffset === 0 && buffer.byteLength === owner.byteLength) {
      if (!list.includes(owner)) list.push(owner);
    }
  }
  return list;
}
