/**
 * In-process broker: the embedded default. History is a fixed-size ring per stream, so memory is bounded by
 * `history x streams`; the epoch is new at every start because the history does not survive a restart.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Broker, BrokerOptions, HistoryRead, PublishItem, StreamEvent } from './broker.js';

class Ring {
  private readonly items: (StreamEvent | undefined)[];
  /** Seq of the newest event (0 when none). */
  last = 0;

  constructor(private readonly capacity: number) {
    this.items = new Array(capacity);
  }

  /** Oldest seq still held. */
  get first(): number {
    return Math.max(1, this.last - this.capacity + 1);
  }

  /** Stores the event; returns the one it pushed out of the window, if any. */
  push(ev: StreamEvent): StreamEvent | undefined {
    const slot = (ev.seq - 1) % this.capacity;
    const evicted = this.items[slot];
    this.items[slot] = ev;
    this.last = ev.seq;
    return evicted;
  }

  get(seq: number): StreamEvent | undefined {
    if (seq < this.first || seq > this.last) return undefined;
    return this.items[(seq - 1) % this.capacity];
  }
}

export class MemoryBroker implements Broker {
  readonly kind = 'memory';
  private readonly streams = new Map<string, Ring>();
  private readonly byId = new Map<string, StreamEvent>();
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

  async publish(items: PublishItem[]): Promise<StreamEvent[]> {
    const now = performance.now();
    const events: StreamEvent[] = [];
    // 1 ns apart within a publish: request order survives the interleaving of replay and the newest-first list.
    let acceptedAt = Math.max(now, this.lastAcceptedAt + 1e-6);
    for (const item of items) {
      let ring = this.streams.get(item.stream);
      if (!ring) this.streams.set(item.stream, (ring = new Ring(this.options.history)));
      const notification = { id: `${this.epochId}-${(++this.nextId).toString(36)}`, ...item.notification };
      const ev: StreamEvent = { stream: item.stream, seq: ring.last + 1, notification, json: JSON.stringify(notification), acceptedAt };
      this.lastAcceptedAt = acceptedAt;
      acceptedAt += 1e-6;
      const evicted = ring.push(ev);
      if (evicted) this.byId.delete(evicted.notification.id);
      this.byId.set(notification.id, ev);
      events.push(ev);
    }
    for (const listener of this.listeners) listener(events);
    return events;
  }

  async readAfter(stream: string, after: number): Promise<HistoryRead> {
    const ring = this.streams.get(stream);
    if (!ring) return { events: [], complete: after === 0, lastSeq: 0 };
    if (after > ring.last) return { events: [], complete: false, lastSeq: ring.last };
    const events: StreamEvent[] = [];
    for (let seq = Math.max(after + 1, ring.first); seq <= ring.last; seq++) events.push(ring.get(seq)!);
    return { events, complete: after + 1 >= ring.first, lastSeq: ring.last };
  }

  async lastSeq(stream: string): Promise<number> {
    return this.streams.get(stream)?.last ?? 0;
  }

  async recent(stream: string, limit: number): Promise<StreamEvent[]> {
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
