/**
 * In-process broker: the embedded default. Memory follows what is stored, not how many ids were ever named: a
 * stream's history grows as events arrive (up to `--history` per stream), all of it together is held to
 * `--history-bytes` by dropping the oldest events first, and a stream whose last event left is freed but for its
 * sequence number. The epoch is new at every start because the history does not survive a restart.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Broker, BrokerOptions, HistoryRead, PublishItem, StreamEvent, SyncHistory } from './broker.js';

/** What one stored event costs, roughly: its JSON text, the parsed notification beside it, the bookkeeping. */
export function eventCost(ev: StreamEvent): number {
  return 2 * ev.json.length + 300;
}

/** Freed streams whose sequence number is still remembered; past this the oldest are forgotten (a resume is then `ahead`). */
const MAX_FREED_STREAMS = 1_000_000;

/** One stream's window: events `first .. last`, oldest first, in a growable array. */
class Ring {
  private items: StreamEvent[] = [];
  /** Index in `items` of the oldest event held. */
  private start = 0;

  constructor(
    private readonly capacity: number,
    /** Seq of the newest event (0 when none ever). */
    public last = 0,
  ) {}

  get size(): number {
    return this.items.length - this.start;
  }

  /** Oldest seq still held (`last + 1` when empty). */
  get first(): number {
    return this.last - this.size + 1;
  }

  /** Stores the event; returns the one it pushed out of the window, if any. */
  push(ev: StreamEvent): StreamEvent | undefined {
    this.items.push(ev);
    this.last = ev.seq;
    return this.size > this.capacity ? this.shift() : undefined;
  }

  /** Drops the oldest event. */
  shift(): StreamEvent | undefined {
    if (this.size === 0) return undefined;
    const ev = this.items[this.start]!;
    this.items[this.start++] = undefined as unknown as StreamEvent;
    if (this.start > 64 && this.start * 2 > this.items.length) {
      this.items = this.items.slice(this.start);
      this.start = 0;
    }
    return ev;
  }

  get(seq: number): StreamEvent | undefined {
    if (seq < this.first || seq > this.last) return undefined;
    return this.items[this.start + seq - this.first];
  }
}

export class MemoryBroker implements Broker, SyncHistory {
  readonly kind = 'memory';
  private readonly streams = new Map<string, Ring>();
  /** Last seq of streams freed when their history emptied: a stream that comes back goes on from there. */
  private readonly freed = new Map<string, number>();
  private readonly byId = new Map<string, StreamEvent>();
  /** Every stored event in the order it was accepted (with ones a ring already dropped, compacted from time to time). */
  private order: StreamEvent[] = [];
  private orderStart = 0;
  private stored = 0;
  private bytes = 0;
  private readonly listeners: ((events: StreamEvent[]) => void)[] = [];
  private readonly epochId = randomBytes(6).toString('base64url').replace(/[-_]/g, 'x');
  private nextId = 0;
  /** History interleaves the two streams by `acceptedAt`, so it must grow even between the events of one publish. */
  private lastAcceptedAt = 0;

  constructor(private readonly options: BrokerOptions) {}

  async start(): Promise<void> {}

  epoch(): string {
    return this.epochId;
  }

  /** Events and bytes held now (for tests and metrics). */
  usage(): { streams: number; events: number; bytes: number } {
    return { streams: this.streams.size, events: this.stored, bytes: this.bytes };
  }

  async publish(items: PublishItem[]): Promise<StreamEvent[]> {
    // Whatever can fail (serialising) happens before anything is stored: a batch is stored whole or not at all.
    const prepared = items.map((item) => {
      const notification = { id: `${this.epochId}-${(++this.nextId).toString(36)}`, ...item.notification };
      return { stream: item.stream, notification, json: JSON.stringify(notification) };
    });
    // 1 ns apart within a publish: request order survives the interleaving of replay and the newest-first list.
    let acceptedAt = Math.max(performance.now(), this.lastAcceptedAt + 1e-6);
    const events: StreamEvent[] = [];
    for (const p of prepared) {
      const ring = this.ring(p.stream);
      const ev: StreamEvent = { ...p, seq: ring.last + 1, acceptedAt };
      this.lastAcceptedAt = acceptedAt;
      acceptedAt += 1e-6;
      const evicted = ring.push(ev);
      if (evicted) this.forget(evicted);
      this.byId.set(ev.notification.id, ev);
      this.order.push(ev);
      this.stored++;
      this.bytes += eventCost(ev);
      events.push(ev);
    }
    this.holdToBudget();
    for (const listener of this.listeners) listener(events);
    return events;
  }

  private ring(stream: string): Ring {
    let ring = this.streams.get(stream);
    if (!ring) {
      const last = this.freed.get(stream) ?? 0;
      this.freed.delete(stream);
      this.streams.set(stream, (ring = new Ring(this.options.history, last)));
    }
    return ring;
  }

  private forget(ev: StreamEvent): void {
    this.byId.delete(ev.notification.id);
    this.stored--;
    this.bytes -= eventCost(ev);
  }

  /** Past `--history-bytes`, the oldest events of all streams go first; an emptied stream keeps only its seq. */
  private holdToBudget(): void {
    while (this.bytes > this.options.historyBytes && this.orderStart < this.order.length) {
      const ev = this.order[this.orderStart++]!;
      const ring = this.streams.get(ev.stream);
      if (!ring || ring.get(ev.seq) !== ev) continue; // its ring already dropped it
      ring.shift();
      this.forget(ev);
      if (ring.size === 0) this.free(ev.stream, ring.last);
    }
    // The accept-order list also holds events the rings dropped by themselves: compact it when they dominate.
    // Both are amortised O(1) per event; the dropped events it still references stay under a quarter of the stored ones.
    const held = this.order.length - this.orderStart;
    if ((this.orderStart > 1024 && this.orderStart * 2 > this.order.length) || held > this.stored * 1.25 + 1024) {
      this.order = this.order.slice(this.orderStart).filter((ev) => this.streams.get(ev.stream)?.get(ev.seq) === ev);
      this.orderStart = 0;
    }
  }

  private free(stream: string, last: number): void {
    this.streams.delete(stream);
    this.freed.set(stream, last);
    if (this.freed.size > MAX_FREED_STREAMS) this.freed.delete(this.freed.keys().next().value!);
  }

  async readAfter(stream: string, after: number): Promise<HistoryRead> {
    const ring = this.streams.get(stream);
    const last = ring?.last ?? this.freed.get(stream) ?? 0;
    if (after > last) return { events: [], complete: false, lastSeq: last };
    if (!ring) return { events: [], complete: after === last, lastSeq: last };
    const events: StreamEvent[] = [];
    for (let seq = Math.max(after + 1, ring.first); seq <= ring.last; seq++) events.push(ring.get(seq)!);
    return { events, complete: after + 1 >= ring.first, lastSeq: ring.last };
  }

  async lastSeq(stream: string): Promise<number> {
    return this.lastSeqNow(stream);
  }

  lastSeqNow(stream: string): number {
    return this.streams.get(stream)?.last ?? this.freed.get(stream) ?? 0;
  }

  async recent(stream: string, limit: number): Promise<StreamEvent[]> {
    return this.recentNow(stream, limit);
  }

  recentNow(stream: string, limit: number): StreamEvent[] {
    const ring = this.streams.get(stream);
    if (!ring) return [];
    const out: StreamEvent[] = [];
    for (let seq = Math.max(ring.first, ring.last - limit + 1); seq <= ring.last; seq++) out.push(ring.get(seq)!);
    return out;
  }

  async find(id: string): Promise<StreamEvent | undefined> {
    return this.byId.get(id);
  }

  onEvents(listener: (events: StreamEvent[]) => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    this.listeners.length = 0;
  }
}
