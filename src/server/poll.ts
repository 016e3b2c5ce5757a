/**
 * `GET /poll`: long-poll. A poll is a subscriber that lives for one answer: events already after its cursor
 * answer it at once, otherwise it waits for the next event or its timeout.
 */
import type { ServerResponse } from 'node:http';
import type { StreamEvent } from './brokers/broker.js';
import { Subscriber, type InitPayload, type SubscriberOptions } from './subscriber.js';

export class PollSubscriber extends Subscriber {
  readonly transport = 'poll' as const;
  private pending: StreamEvent[] = [];
  private pendingBytes = 0;
  private reads: { id: string; readAt: string }[] = [];
  private scheduled = false;
  private reset: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    user: string | undefined,
    options: SubscriberOptions,
    private readonly res: ServerResponse,
    private readonly timeoutMs: number,
  ) {
    super(user, options);
    res.on('close', () => {
      // A poll the client dropped must not leave its timer behind: it would hold the process up to `timeout` after SIGTERM.
      clearTimeout(this.timer);
      this.finish('client');
    });
  }

  private respond(body: string): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.finish('answered');
    this.res.writeHead(200, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
      'Access-Control-Allow-Origin': '*',
    });
    this.res.end(body);
  }

  /**
   * The hold starts once the position is known (replay sent or nothing to replay): started earlier, a `timeout=0`
   * poll could be answered before its replay, with no cursor, whenever the broker answers asynchronously.
   */
  override goLive(): void {
    super.goLive();
    if (!this.closed) this.timer ??= setTimeout(() => this.answer(), this.timeoutMs);
  }

  /** Answers with what is pending (possibly nothing) and the cursor after it. */
  private answer(): void {
    let list = '';
    for (let i = 0; i < this.pending.length; i++) list += (i ? ',' : '') + this.pending[i]!.json;
    const reads = this.reads.length ? `,"read":${JSON.stringify(this.reads)}` : '';
    this.respond(`{"cursor":"${this.cursor}","notifications":[${list}]${reads}}`);
  }

  sendInit(p: InitPayload): void {
    const reset = this.reset === undefined ? {} : { reset: { reason: this.reset } };
    this.respond(JSON.stringify({ cursor: p.cursor, ...reset, unread: p.unread, unreadCount: p.unreadCount, notifications: [] }));
  }

  sendReset(reason: string): void {
    this.reset = reason; // answered together with the fresh snapshot that follows
  }

  /** One answer carries at most about --max-buffer of replay; the client asks again from the cursor it got. */
  protected override replayRoom(): number {
    return this.options.maxBuffer - this.pendingBytes;
  }

  /** A long-poll answers once: the rest of a replay is for its next request. */
  override whenWritable(): Promise<boolean> {
    return Promise.resolve(false);
  }

  sendOne(ev: StreamEvent): void {
    this.pending.push(ev);
    this.pendingBytes += ev.json.length;
    // Events published together (a batch publish, a replay) go in the same answer.
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.answer());
    }
  }

  sendBatch(events: StreamEvent[]): void {
    for (const ev of events) this.pending.push(ev);
    this.answer();
  }

  /** A held poll is answered with the receipt (`read: [{id, readAt}]`), like the other transports' `read` event. */
  sendRead(id: string, readAt: string): void {
    this.reads.push({ id, readAt });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.answer());
    }
  }

  heartbeat(): void {}

  shutdown(): void {
    this.answer();
  }

  protected closeSlow(): void {}
}
