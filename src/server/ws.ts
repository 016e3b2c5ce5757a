/** `GET /ws`: WebSocket subscriptions (ws library). JSON text frames; the client may send `{"type":"read","id"}`. */
import type { Socket } from 'node:net';
import type { RawData, WebSocket } from 'ws';
import { EVENT, SLOW_CONSUMER_REASON, WS_CLOSE, WS_FRAME_HEAD } from '../protocol/events.js';
import type { StreamEvent } from './brokers/broker.js';
import { SLOW_CUT_GRACE_MS } from './sse.js';
import { Subscriber, type InitPayload, type SubscriberOptions } from './subscriber.js';

export class WsSubscriber extends Subscriber {
  readonly transport = 'ws' as const;
  private alive = true;

  constructor(
    user: string | undefined,
    options: SubscriberOptions,
    private readonly ws: WebSocket,
    onRead: (sub: WsSubscriber, id: string) => void,
  ) {
    super(user, options);
    ws.on('pong', () => (this.alive = true));
    ws.on('close', () => this.finish('client'));
    ws.on('error', () => this.finish('error'));
    ws.on('message', (data: RawData, isBinary) => {
      let msg: { type?: unknown; id?: unknown } | null;
      try {
        msg = JSON.parse(isBinary ? '' : frameText(data)) as { type?: unknown; id?: unknown } | null;
      } catch {
        this.sendError('E_JSON', 'frame is not valid JSON');
        return;
      }
      if (msg?.type === EVENT.read && typeof msg.id === 'string') onRead(this, msg.id);
      else this.sendError('E_INVALID', 'expected {"type":"read","id":"<notification id>"}');
    });
  }

  private send(text: string): void {
    this.emit(text);
  }

  protected override writeNow(frame: string | Buffer): void {
    this.ws.send(frame);
  }

  protected override socketBuffered(): number {
    return this.ws.bufferedAmount;
  }

  protected override onceDrained(fn: () => void): void {
    // ws sends straight to its socket (no permessage-deflate here), so the socket's drain is the frames' drain.
    this.socket?.once('drain', fn);
  }

  /** ws's own socket: corked around grouped writes as the SSE one is (ws writes each frame to it at once). */
  private get socket(): Socket | undefined {
    return (this.ws as WebSocket & { _socket?: Socket })._socket;
  }

  protected override corkableSocket(): Socket | undefined {
    return this.socket;
  }

  sendError(code: string, message: string): void {
    this.send(JSON.stringify({ type: EVENT.error, error: { code, message } }));
  }

  sendInit(p: InitPayload): void {
    this.send(JSON.stringify({ type: EVENT.init, ...p }));
  }

  sendReset(reason: string, givenCursor: string): void {
    this.send(JSON.stringify({ type: EVENT.reset, reason, cursor: givenCursor }));
  }

  sendOne(ev: StreamEvent, cursor: string): void {
    this.send(`${WS_FRAME_HEAD.notification}${cursor}","notification":${ev.json}}`);
  }

  sendBatch(events: StreamEvent[], cursor: string): void {
    let data = '[';
    for (let i = 0; i < events.length; i++) data += (i ? ',' : '') + events[i]!.json;
    this.send(`${WS_FRAME_HEAD.batch}${cursor}","notifications":${data}]}`);
  }

  sendRead(id: string, readAt: string): void {
    this.send(JSON.stringify({ type: EVENT.read, id, readAt }));
  }

  /** Ping; a peer that did not answer the previous ping is gone. */
  heartbeat(): void {
    if (!this.alive) {
      this.ws.terminate();
      this.finish('client');
      return;
    }
    this.alive = false;
    this.ws.ping();
  }

  shutdown(): void {
    if (this.closed) return;
    this.finish('shutdown');
    this.ws.close(WS_CLOSE.restart, 'server restarting; resume with your cursor');
  }

  /** The close frame follows only what the socket already holds (the outbox was dropped); see SseSubscriber.closeSlow. */
  protected closeSlow(): void {
    if (this.closed) return;
    this.finish('slow-consumer');
    this.ws.close(WS_CLOSE.slowConsumer, SLOW_CONSUMER_REASON);
    // A peer that does not read will not read the close frame either.
    setTimeout(() => this.ws.terminate(), SLOW_CUT_GRACE_MS).unref();
  }
}

function frameText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
}
