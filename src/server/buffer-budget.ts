/**
 * --max-buffer-total: the bytes all connections together may have waiting to be sent. Each connection reports its
 * own figure after every write (a subtraction and an addition); the sum drifts high as sockets drain unseen, so when
 * it crosses the cap it is first recounted exactly, and only a real excess cuts connections: the largest buffers
 * first, as slow consumers (counted, resumable by cursor), until the total is under the cap again.
 */
import type { Subscriber } from './subscriber.js';

export class BufferBudget {
  private total = 0;
  private enforcing = false;

  constructor(
    private readonly cap: number,
    private readonly subscribers: () => Iterable<Subscriber>,
    /** Called for each connection cut to bring the total under the cap. */
    private readonly onCut: (sub: Subscriber) => void = () => {},
  ) {}

  /** A connection's buffered bytes now (0 when it closed). */
  note(sub: Subscriber, bytes: number): void {
    this.total += bytes - sub.accountedBytes;
    sub.accountedBytes = bytes;
    if (this.total > this.cap && !this.enforcing) this.enforce();
  }

  /** The exact total, recounted (metrics scrape). */
  recount(): number {
    let total = 0;
    for (const sub of this.subscribers()) {
      const b = sub.closed ? 0 : sub.buffered;
      sub.accountedBytes = b;
      total += b;
    }
    return (this.total = total);
  }

  private enforce(): void {
    if (this.recount() <= this.cap) return;
    this.enforcing = true;
    try {
      const heavy = [...this.subscribers()].filter((s) => s.accountedBytes > 0).sort((a, b) => b.accountedBytes - a.accountedBytes);
      for (const sub of heavy) {
        if (this.total <= this.cap) break;
        // The cut drops its outbox and its finish() reports 0; what its socket still holds is freed within the grace.
        sub.cut('max-buffer-total');
        this.onCut(sub);
      }
    } finally {
      this.enforcing = false;
    }
  }
}
