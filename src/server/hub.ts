/**
 * The hub knows which live subscriber wants which stream and fans events out to them. Per event: a set lookup and
 * one write per subscriber; counting is plain arithmetic pushed to the metrics once per fan-out.
 *
 * With `--coalesce` every connection a fan-out writes to stays corked until the window ends, so the frames of all the
 * fan-outs within it leave in one write (one syscall) per connection; one timer serves every connection.
 *
 * Heartbeats go out in HEARTBEAT_TURNS turns per --heartbeat, each to the subscribers of one slot (given round-robin
 * as they join): every subscriber still hears one per interval, and a large hub does not write them all at once, a
 * stall of ~12-25 us per connection (bench/heartbeat-stall.mjs) that delays every notification published behind it.
 */
import { performance } from 'node:perf_hooks';
import { BROADCAST, USER_STREAM_PREFIX } from '../protocol/streams.js';
import { SERVE_TRANSPORTS, TRANSPORT_INDEX, type ServeTransport } from '../protocol/transports.js';
import type { StreamEvent } from './brokers/broker.js';
import type { GatewayMetrics } from './metrics.js';
import type { Subscriber } from './subscriber.js';

/** How many turns one --heartbeat interval is cut into (see the file's comment). */
export const HEARTBEAT_TURNS = 15;

export class Hub {
  private readonly all = new Set<Subscriber>();
  /** The subscribers each heartbeat turn visits. */
  private readonly beats: Set<Subscriber>[] = Array.from({ length: HEARTBEAT_TURNS }, () => new Set<Subscriber>());
  private nextSlot = 0;
  private turn = 0;
  private readonly byUser = new Map<string, Set<Subscriber>>();
  private readonly open = [0, 0, 0];
  /** Connections corked until the coalescing window ends. */
  private held = new Set<Subscriber>();
  private release: NodeJS.Timeout | undefined;

  constructor(
    private readonly metrics: GatewayMetrics,
    /** `--coalesce` in ms; 0 writes each fan-out at once. */
    private readonly coalesceMs = 0,
  ) {}

  get size(): number {
    return this.all.size;
  }

  openByTransport(): Record<ServeTransport, number> {
    return { sse: this.open[0]!, ws: this.open[1]!, poll: this.open[2]! };
  }

  add(sub: Subscriber): void {
    this.all.add(sub);
    this.beats[this.nextSlot]!.add(sub);
    this.nextSlot = (this.nextSlot + 1) % HEARTBEAT_TURNS;
    this.open[TRANSPORT_INDEX[sub.transport]]!++;
    if (sub.user !== undefined) {
      let set = this.byUser.get(sub.user);
      if (!set) this.byUser.set(sub.user, (set = new Set()));
      set.add(sub);
    }
  }

  remove(sub: Subscriber): void {
    if (!this.all.delete(sub)) return;
    for (const slot of this.beats) if (slot.delete(sub)) break;
    this.open[TRANSPORT_INDEX[sub.transport]]!--;
    if (sub.user !== undefined) {
      const set = this.byUser.get(sub.user);
      if (set && set.delete(sub) && set.size === 0) this.byUser.delete(sub.user);
    }
  }

  /** Live subscribers of a stream in this process. */
  audience(stream: string): number {
    if (stream === BROADCAST) return this.all.size;
    return this.byUser.get(stream.slice(USER_STREAM_PREFIX.length))?.size ?? 0;
  }

  userSubscribers(user: string): Iterable<Subscriber> {
    return this.byUser.get(user) ?? [];
  }

  subscribers(): Iterable<Subscriber> {
    return this.all;
  }

  /** Delivers events published together; one connection's share of them leaves in one write where possible. */
  fanout(events: StreamEvent[]): void {
    const counts = [0, 0, 0];
    const corked = this.coalesceMs > 0 ? this.held : events.length > 1 ? new Set<Subscriber>() : undefined;
    for (const ev of events) {
      const targets = ev.stream === BROADCAST ? this.all : this.byUser.get(ev.stream.slice(USER_STREAM_PREFIX.length));
      let n = 0;
      if (targets) {
        for (const sub of targets) {
          if (corked && !corked.has(sub)) {
            corked.add(sub);
            sub.cork();
          }
          if (sub.deliver(ev)) {
            counts[TRANSPORT_INDEX[sub.transport]]!++;
            n++;
          }
        }
      }
      ev.delivered = n;
      if (n > 0) this.metrics.publishToWrite.observe((performance.now() - ev.acceptedAt) / 1000);
    }
    if (this.coalesceMs > 0) {
      if (this.held.size > 0) this.release ??= setTimeout(() => this.flushHeld(), this.coalesceMs).unref();
    } else if (corked) for (const sub of corked) sub.uncork();
    for (let i = 0; i < 3; i++) if (counts[i]) this.metrics.delivered.inc({ transport: SERVE_TRANSPORTS[i] }, counts[i]);
  }

  /** The coalescing window ended: every held connection writes what it gathered. */
  private flushHeld(): void {
    const held = this.held;
    this.held = new Set();
    this.release = undefined;
    for (const sub of held) sub.uncork();
  }

  /** A read receipt reaches the user's other live connections. */
  sendRead(user: string, id: string, readAt: string, except?: Subscriber): number {
    let n = 0;
    for (const sub of this.userSubscribers(user)) {
      if (sub === except || sub.closed) continue;
      sub.sendRead(id, readAt);
      n++;
    }
    return n;
  }

  /** One turn: called HEARTBEAT_TURNS times per --heartbeat interval. */
  heartbeat(): void {
    const slot = this.beats[this.turn]!;
    this.turn = (this.turn + 1) % HEARTBEAT_TURNS;
    // A subscriber the heartbeat finds gone (a WebSocket that did not answer the last ping) leaves the slot as it goes.
    for (const sub of slot) sub.heartbeat();
  }

  /** Tells every subscriber to come back later, each after its own jittered delay so they do not return at once. */
  shutdown(retryBaseMs: number): void {
    for (const sub of [...this.all]) sub.shutdown(Math.round(retryBaseMs * (1 + Math.random() * 2)));
  }
}
