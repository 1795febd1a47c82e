/**
 * At most `limit` tasks at once, the others waiting their turn in order. The server hashes
 * (scrypt takes 128 MiB and half a second; a large file takes longer) one at a time, so many
 * requests at once cost time, never memory.
 */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active < this.limit) this.active += 1;
    // The slot is handed over by the task that ends, never freed and taken again.
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active -= 1;
    }
  }
}
