/**
 * Which ArrayBuffers may be moved to another thread instead of copied. Node slices small Buffers
 * (under 4 KiB) out of a shared 8 KiB pool, and moving the pool would break every other Buffer
 * in it; a larger ArrayBuffer belongs to the one Buffer made with it, so it can move, and every
 * view of it goes along (the caller hands the whole buffer over).
 */
const POOL_SIZE = 8 * 1024;

export function transferList(buffers: readonly Uint8Array[]): ArrayBuffer[] {
  const list: ArrayBuffer[] = [];
  for (const buffer of buffers) {
    const owner = buffer.buffer;
    if (owner instanceof ArrayBuffer && owner.byteLength > POOL_SIZE && !list.includes(owner)) list.push(owner);
  }
  return list;
}
