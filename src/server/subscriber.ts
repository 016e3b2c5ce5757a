/**
 * One live subscription, whatever its transport. It owns the subscriber's position (the cursor), drops events it
 * already has (so replay + live never duplicate), queues live events while its replay or snapshot is being
 * prepared, and batches when `--batch` is set. Transports only turn events into bytes.
 */
import type { Socket } from 'node:net';
import { formatCursor, type Cursor } from '../protocol/cursor.js';
import type { Notification } from '../protocol/notification.js';
import { BROADCAST } from '../protocol/streams.js';
import type { ServeTransport } from '../protocol/transports.js';
import type { StreamEvent } from './brokers/broker.js';
import type { BufferBudget } from './buffer-budget.js';

/**
 * Past this many bytes waiting in the socket, frames wait in the subscriber's own outbox instead, where a slow-consumer
 * cut can still drop them so that its reason is the next thing the client reads. It must exceed the socket's own
 * high-water mark (16 KB), so that a write has returned false and the socket will emit 'drain'.
 */
const SOCKET_HIGH_WATER = 64 * 1024;
/** How often a replay that filled the connection looks whether the client has read enough to send the next page. */
const REPLAY_POLL_MS = 20;
/** A subscription being set up that has no live event queued yet: one shared empty list, never added to. */
const NOTHING_QUEUED: StreamEvent[] = [];

export interface SubscriberOptions {
  batchMs: number;
  maxBuffer: number;
  /** Where every connection's buffered bytes are added up and held to --max-buffer-total. */
  budget?: BufferBudget;
  /** Called once when the subscription ends, for whatever reason. */
  onClose: (sub: Subscriber, reason: CloseReason) => void;
}

export type CloseReason = 'client' | 'slow-consumer' | 'shutdown' | 'answered' | 'error';
/** Why a slow consumer was cut: its own --max-buffer, or its share of --max-buffer-total. */
export type SlowCause = 'max-buffer' | 'max-buffer-total';

export interface InitPayload {
  cursor: string;
  unread: Notification[];
  unreadCount: number;
}

export abstract class Subscriber {
  abstract readonly transport: ServeTransport;
  epoch = '';
  userSeq = 0;
  broadcastSeq = 0;
  closed = false;
  /** Live events that arrived before the subscription went live (NOTHING_QUEUED until the first); undefined once live. */
  private queued: StreamEvent[] | undefined = NOTHING_QUEUED;
  /** Between two replay pages: live events are not queued, the next page reads them from the history. */
  private skipping = false;
  /** Events waiting for the --batch timer; allocated by the first (most connections never batch). */
  private batch: StreamEvent[] | undefined;
  private batchTimer: NodeJS.Timeout | undefined;
  /** > 0 while writes are grouped (cork): the send buffer is checked once they have been flushed, not per write. */
  private corked = 0;
  /** Send-buffer bytes the catch-up (replay or snapshot) left waiting; see `catchUp`. */
  private backlog = 0;
  /** Frames the socket has not taken yet (see SOCKET_HIGH_WATER); undefined while the socket keeps up. */
  private outbox: (string | Buffer)[] | undefined;
  private outboxHead = 0;
  private outboxBytes = 0;
  /** Buffered bytes as last added to the budget (the budget owns this number). */
  accountedBytes = 0;
  /** Set when the subscriber was cut as a slow consumer. */
  slowCause: SlowCause | undefined;

  constructor(
    readonly user: string | undefined,
    protected readonly options: SubscriberOptions,
  ) {}

  get cursor(): string {
    return formatCursor(this.epoch, this.userSeq, this.broadcastSeq);
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
      if (this.skipping) return false;
      if (this.queued === NOTHING_QUEUED) this.queued = [ev];
      else this.queued.push(ev);
      return true;
    }
    if (!this.advance(ev)) return false;
    if (this.options.batchMs > 0) {
      (this.batch ??= []).push(ev);
      this.batchTimer ??= setTimeout(() => this.flushBatch(), this.options.batchMs);
    } else {
      this.sendOne(ev, this.cursor);
    }
    return true;
  }

  /**
   * Sends history events (oldest first) on resume while the connection has room for them (--max-buffer): a client that
   * does not read holds one page of its replay, not the whole window. Returns how many were new to this subscriber and
   * whether it got them all; if not, `whenWritable` says when to read the history again from `cursor`.
   */
  replayPage(events: StreamEvent[]): { sent: number; done: boolean } {
    let sent = 0;
    let i = 0;
    this.catchUp(() => {
      let room = this.replayRoom();
      const batch: StreamEvent[] = [];
      for (; i < events.length && room > 0; i++) {
        const ev = events[i]!;
        if (!this.advance(ev)) continue;
        room -= ev.json.length + 64;
        sent++;
        if (this.options.batchMs > 0) batch.push(ev);
        else this.sendOne(ev, this.cursor);
      }
      if (batch.length) this.sendBatch(batch, this.cursor);
    });
    return { sent, done: i >= events.length };
  }

  /** Bytes of replay the connection may take now. */
  protected replayRoom(): number {
    return this.options.maxBuffer - this.buffered;
  }

  /**
   * Resolves true once the client has read its buffer down to half of --max-buffer (time for the next replay page),
   * false when the subscription ended or its transport answers once (a long-poll: the client asks again).
   */
  whenWritable(): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.closed) resolve(false);
        else if (this.buffered <= this.options.maxBuffer / 2) resolve(true);
        else setTimeout(check, REPLAY_POLL_MS).unref();
      };
      check();
    });
  }

  /**
   * Between replay pages: live events are not kept (a client that never reads would collect them for as long as it
   * stalls); they are in the history, where the next page reads them. `holdLive` before reading it again.
   */
  skipLive(): void {
    if (!this.queued) return;
    this.queued = NOTHING_QUEUED;
    this.skipping = true;
  }

  /** Before each read of the history during set-up: live events from now on are queued, so none falls in between. */
  holdLive(): void {
    if (!this.queued) return;
    this.skipping = false;
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
    this.batch = undefined;
    if (events !== undefined && events.length && !this.closed) this.sendBatch(events, this.cursor);
  }

  /** Marks closed and tells the owner once. Transports call it from their close paths. */
  protected finish(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.dropOutbox();
    this.options.budget?.note(this, 0);
    this.options.onClose(this, reason);
  }

  /** Bytes waiting for this client: in the outbox and in the socket. */
  get buffered(): number {
    return this.outboxBytes + this.socketBuffered();
  }

  /** Bytes waiting in the connection's socket (transports with one override it). */
  protected socketBuffered(): number {
    return 0;
  }

  /** Writes a frame to the socket now (transports that stream override it). */
  protected writeNow(_frame: string | Buffer): void {}

  /** Calls `fn` once the socket has flushed what it holds. */
  protected onceDrained(_fn: () => void): void {}

  /** Every frame of a streaming transport goes through here: to the socket while it keeps up, else to the outbox. */
  protected emit(frame: string | Buffer): void {
    if (this.closed) return;
    if (this.outbox === undefined && this.socketBuffered() < SOCKET_HIGH_WATER) {
      this.writeNow(frame);
    } else {
      if (this.outbox === undefined) {
        this.outbox = [];
        this.onceDrained(() => this.flushOutbox());
      }
      this.outbox.push(frame);
      this.outboxBytes += frame.length;
    }
    this.checkBuffer();
  }

  private flushOutbox(): void {
    const box = this.outbox;
    if (box === undefined || this.closed) return;
    while (this.outboxHead < box.length && this.socketBuffered() < SOCKET_HIGH_WATER) {
      const frame = box[this.outboxHead]!;
      box[this.outboxHead++] = '';
      this.outboxBytes -= frame.length;
      this.writeNow(frame);
    }
    if (this.outboxHead < box.length) this.onceDrained(() => this.flushOutbox());
    else this.dropOutbox();
  }

  /** Forgets what the socket has not taken: a cut client resumes by cursor, and it reads the reason sooner. */
  protected dropOutbox(): void {
    this.outbox = undefined;
    this.outboxHead = 0;
    this.outboxBytes = 0;
  }

  /** Transports call it after each write: past --max-buffer (beyond a catch-up's backlog) the client is too slow. */
  protected checkBuffer(): void {
    if (this.corked > 0 || this.closed) return;
    const waiting = this.buffered;
    if (waiting < this.backlog) this.backlog = waiting;
    if (waiting > this.options.maxBuffer + this.backlog) this.cut('max-buffer');
    else this.options.budget?.note(this, waiting);
  }

  /** Closes as a slow consumer: what waits in the outbox is dropped, the reason follows what the socket already has. */
  cut(cause: SlowCause): void {
    if (this.closed) return;
    this.slowCause = cause;
    this.dropOutbox();
    this.closeSlow();
  }

  /**
   * Coalesce several writes into one syscall where the transport can. Corked bytes wait in the buffer because the
   * server holds them, not because the client is slow, so the buffer is checked at `uncork`, after the flush.
   */
  cork(): void {
    this.corked++;
    this.corkableSocket()?.cork();
  }

  uncork(): void {
    this.corkableSocket()?.uncork();
    if (--this.corked === 0) this.checkBuffer();
  }

  /** The socket this connection alone writes to, corked around grouped writes; undefined where there is none. */
  protected corkableSocket(): Pick<Socket, 'cork' | 'uncork'> | undefined {
    return undefined;
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
  /** Close as a slow consumer (see `cut`), telling the client why where the transport can. */
  protected abstract closeSlow(): void;
}
