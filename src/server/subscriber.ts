/**
 * One live subscription, whatever its transport. It owns the subscriber's position (the cursor), drops events it
 * already has (so replay + live never duplicate), queues live events while its replay or snapshot is being
 * prepared, and batches when `--batch` is set. Transports only turn events into bytes.
 */
import { BROADCAST, type Notification } from './notification.js';
import type { Cursor } from './cursor.js';
import type { StreamEvent } from './brokers/broker.js';
import type { ServerTransport } from './config.js';

export interface SubscriberOptions {
  batchMs: number;
  maxBuffer: number;
  /** Called once when the subscription ends, for whatever reason. */
  onClose: (sub: Subscriber, reason: CloseReason) => void;
}

export type CloseReason = 'client' | 'slow-consumer' | 'shutdown' | 'answered' | 'error';

export interface InitPayload {
  cursor: string;
  unread: Notification[];
  unreadCount: number;
}

export const TRANSPORT_INDEX: Record<ServerTransport, number> = { sse: 0, ws: 1, poll: 2 };

export abstract class Subscriber {
  abstract readonly transport: ServerTransport;
  epoch = '';
  userSeq = 0;
  broadcastSeq = 0;
  closed = false;
  /** Live events that arrived before the subscription went live; undefined once live. */
  private queued: StreamEvent[] | undefined = [];
  private batch: StreamEvent[] = [];
  private batchTimer: NodeJS.Timeout | undefined;
  /** > 0 while writes are grouped (cork): the send buffer is checked once they have been flushed, not per write. */
  private corked = 0;
  /** Send-buffer bytes the catch-up (replay or snapshot) left waiting; see `catchUp`. */
  private backlog = 0;

  constructor(
    readonly user: string | undefined,
    protected readonly options: SubscriberOptions,
  ) {}

  get cursor(): string {
    return `${this.epoch}.${this.userSeq}.${this.broadcastSeq}`;
  }

  setPosition(c: Cursor): void {
    this.epoch = c.epoch;
    this.userSeq = c.user;
    this.broadcastSeq = c.broadcast;
  }

  /** A live event on one of this subscriber's streams. Returns true when it was taken (written or batched). */
  deliver(ev: StreamEvent): boolean {
    if (this.closed) return false;
    if (this.queued) {
      this.queued.push(ev);
      return true;
    }
    if (!this.advance(ev)) return false;
    if (this.options.batchMs > 0) {
      this.batch.push(ev);
      this.batchTimer ??= setTimeout(() => this.flushBatch(), this.options.batchMs);
    } else {
      this.sendOne(ev, this.cursor);
    }
    return true;
  }

  /** Sends history events (oldest first) on resume; returns how many were new to this subscriber. */
  replay(events: StreamEvent[]): number {
    let n = 0;
    this.catchUp(() => {
      if (this.options.batchMs > 0) {
        const fresh = events.filter((ev) => this.advance(ev));
        if (fresh.length) this.sendBatch(fresh, this.cursor);
        n = fresh.length;
        return;
      }
      for (const ev of events) {
        if (this.advance(ev)) {
          this.sendOne(ev, this.cursor);
          n++;
        }
      }
    });
    return n;
  }

  /**
   * Sends what a subscription starts with (the replay, or the init snapshot) in one go. That burst is bounded by the
   * history window, not by the client's pace, so it may exceed --max-buffer without making the client slow: the cap
   * counts on top of what the burst left waiting, and that allowance shrinks as the client reads it.
   */
  catchUp(send: () => void): void {
    this.cork();
    try {
      send();
    } finally {
      this.backlog = Infinity;
      this.uncork();
    }
  }

  /** Ends the set-up phase: what arrived meanwhile goes out, minus what replay or the snapshot already covered. */
  goLive(): void {
    const queued = this.queued;
    this.queued = undefined;
    if (queued) for (const ev of queued) this.deliver(ev);
  }

  /** Moves the position past `ev`; false when the subscriber already has it. */
  private advance(ev: StreamEvent): boolean {
    if (ev.stream === BROADCAST) {
      if (ev.seq <= this.broadcastSeq) return false;
      this.broadcastSeq = ev.seq;
    } else {
      if (ev.seq <= this.userSeq) return false;
      this.userSeq = ev.seq;
    }
    return true;
  }

  private flushBatch(): void {
    this.batchTimer = undefined;
    const events = this.batch;
    this.batch = [];
    if (events.length && !this.closed) this.sendBatch(events, this.cursor);
  }

  /** Marks closed and tells the owner once. Transports call it from their close paths. */
  protected finish(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.options.onClose(this, reason);
  }

  /** Bytes waiting in this connection's send buffer (transports with one override it). */
  protected bufferedBytes(): number {
    return 0;
  }

  /** Transports call it after each write: past --max-buffer (beyond a catch-up's backlog) the client is too slow. */
  protected checkBuffer(): void {
    if (this.corked > 0 || this.closed) return;
    const waiting = this.bufferedBytes();
    if (waiting < this.backlog) this.backlog = waiting;
    if (waiting > this.options.maxBuffer + this.backlog) this.closeSlow();
  }

  /**
   * Coalesce several writes into one syscall where the transport can. Corked bytes wait in the buffer because the
   * server holds them, not because the client is slow, so the buffer is checked at `uncork`, after the flush.
   */
  cork(): void {
    this.corked++;
  }

  uncork(): void {
    if (--this.corked === 0) this.checkBuffer();
  }

  abstract sendInit(payload: InitPayload): void;
  abstract sendReset(reason: string, givenCursor: string): void;
  abstract sendOne(ev: StreamEvent, cursor: string): void;
  abstract sendBatch(events: StreamEvent[], cursor: string): void;
  abstract sendRead(id: string, readAt: string): void;
  /** Keep-alive tick (SSE comment, WS ping and dead-peer check). */
  abstract heartbeat(): void;
  /** Server going away: tell the client when to come back, then close. */
  abstract shutdown(retryMs: number): void;
  /** Close for exceeding `maxBuffer`. */
  abstract closeSlow(): void;
}
