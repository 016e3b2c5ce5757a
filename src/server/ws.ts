/**
 * `GET /ws`: WebSocket subscriptions (ws library). JSON text frames; the client may send `{"type":"read","id"}`.
 * A live notification, the hot path, does not go through ws's Sender: its frame is built here in one Buffer (the part
 * after the cursor encoded once per event and shared by every subscriber) and written straight to the socket, as
 * SSE does. Before/after figures: BENCHMARKS.md.
 */
import type { Socket } from 'node:net';
import { WebSocket, type RawData } from 'ws';
import { EVENT, SLOW_CONSUMER_REASON, WS_CLOSE, WS_FRAME_HEAD } from '../protocol/events.js';
import type { StreamEvent } from './brokers/broker.js';
import { SLOW_CUT_GRACE_MS } from './sse.js';
import { Subscriber, type InitPayload, type SubscriberOptions } from './subscriber.js';

const NOTIFICATION_HEAD = Buffer.from(WS_FRAME_HEAD.notification);
/** `","notification":<json>}`: the part of an event's frame after the cursor, encoded once and shared. */
const frameTail = new WeakMap<StreamEvent, Buffer>();
function sharedTail(ev: StreamEvent): Buffer {
  let b = frameTail.get(ev);
  if (b === undefined) frameTail.set(ev, (b = Buffer.from(`","notification":${ev.json}}`)));
  return b;
}

/**
 * The notification as one unmasked, final text frame (RFC 6455 section 5.2: a server's frames are not masked), the
 * bytes ws.send would write as a header and a payload: 0x81, the payload length (7 bits, or 126 + 16 bits, or
 * 127 + 64 bits), the payload. The cursor is ASCII.
 */
function notificationFrame(cursor: string, tail: Buffer): Buffer {
  const length = NOTIFICATION_HEAD.length + cursor.length + tail.length;
  const at = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(at + length);
  frame[0] = 0x81;
  if (at === 2) frame[1] = length;
  else if (at === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(length, 6);
  }
  NOTIFICATION_HEAD.copy(frame, at);
  frame.write(cursor, at + NOTIFICATION_HEAD.length, 'latin1');
  tail.copy(frame, at + NOTIFICATION_HEAD.length + cursor.length);
  return frame;
}

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

  /**
   * A string is a message for ws to frame; a Buffer is a frame built here, written to the socket directly. That is
   * safe between ws's own frames because ws (without permessage-deflate) writes each frame to the socket at once.
   * Not once ws is closing: no data frame may follow a close frame (ws.send drops it then too).
   */
  protected override writeNow(frame: string | Buffer): void {
    if (typeof frame === 'string') this.ws.send(frame);
    else if (this.ws.readyState === WebSocket.OPEN) this.socket!.write(frame);
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
    this.emit(notificationFrame(cursor, sharedTail(ev)));
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
