/**
 * `GET /ws`: WebSocket subscriptions, on our own RFC 6455 framing (no ws library: its WebSocket, Receiver stream,
 * Sender and their closures cost ~4.6 KB of heap per idle connection). upgrade.ts answers the handshake and hands
 * over the socket; the client's frames (read receipts `{"type":"read","id"}`, pings, pongs, close) are read with the
 * swarm's FrameReader on its server side (masked frames, unmasked in place). JSON text frames out; a live
 * notification, the hot path, is built here in one Buffer (the part after the cursor encoded once per event and shared
 * by every subscriber) and written straight to the socket, as SSE does. Before/after figures: BENCHMARKS.md.
 */
import type { Socket } from 'node:net';
import { EVENT, SLOW_CONSUMER_REASON, WS_CLOSE, WS_FRAME_HEAD } from '../protocol/events.js';
import { CLOSE, closePayload, frameHeadSize, FrameReader, OPCODE, serverFrame, writeFrameHead, type FrameHandler } from '../transports/ws-frames.js';
import type { StreamEvent } from './brokers/broker.js';
import { SLOW_CUT_GRACE_MS } from './sse.js';
import { Subscriber, type InitPayload, type SubscriberOptions } from './subscriber.js';

/** A larger client message closes the connection with 1009 (the gateway only ever reads short read receipts). */
export const WS_MAX_PAYLOAD = 64 * 1024;
/** After our close frame, how long a peer may take to end the connection (ws's closeTimeout). */
const CLOSE_WAIT_MS = 30_000;
const PING = serverFrame(OPCODE.ping, Buffer.alloc(0));

const NOTIFICATION_HEAD = Buffer.from(WS_FRAME_HEAD.notification);
/** `","notification":<json>}`: the part of an event's frame after the cursor, encoded once and shared. */
const frameTail = new WeakMap<StreamEvent, Buffer>();
function sharedTail(ev: StreamEvent): Buffer {
  let b = frameTail.get(ev);
  if (b === undefined) frameTail.set(ev, (b = Buffer.from(`","notification":${ev.json}}`)));
  return b;
}

/**
 * The notification as one unmasked, final text frame (RFC 6455 section 5.2: a server's frames are not masked), framed
 * as serverFrame frames but copied from the shared parts without building the payload first. The cursor is ASCII.
 */
function notificationFrame(cursor: string, tail: Buffer): Buffer {
  const length = NOTIFICATION_HEAD.length + cursor.length + tail.length;
  const at = frameHeadSize(length);
  const frame = Buffer.allocUnsafe(at + length);
  writeFrameHead(frame, OPCODE.text, length, 0);
  NOTIFICATION_HEAD.copy(frame, at);
  frame.write(cursor, at + NOTIFICATION_HEAD.length, 'latin1');
  tail.copy(frame, at + NOTIFICATION_HEAD.length + cursor.length);
  return frame;
}

/** The subscriber a socket serves (module-level listeners, no closures per connection). */
const kSub = Symbol('wsSubscriber');
type TaggedSocket = Socket & { [kSub]?: WsSubscriber };

/**
 * One WebSocket subscriber. It is its own FrameHandler (`message`, `ping`, `pong`, `closeFrame`, `protocolError`,
 * `reading`): the reader calls back into it, nothing else does.
 */
export class WsSubscriber extends Subscriber implements FrameHandler {
  readonly transport = 'ws' as const;
  private alive = true;
  /** Our close frame is out: no frame may follow it (RFC 6455 5.5.1). */
  private closeSent = false;
  /** The peer's close frame, its FIN or a protocol error came: what it sends from now on is not read. */
  private ended = false;
  private readonly reader = new FrameReader(WS_MAX_PAYLOAD, true);

  /** `socket`: answered 101 already; `head`: what the client sent past its request head. */
  constructor(
    user: string | undefined,
    options: SubscriberOptions,
    private readonly socket: Socket,
    head: Buffer,
    private readonly onRead: (sub: WsSubscriber, id: string) => void,
  ) {
    super(user, options);
    const s = socket as TaggedSocket;
    s[kSub] = this;
    s.setTimeout(0);
    s.setNoDelay(true);
    // Errors: upgrade.ts's listener destroys the socket, and its close ends the subscription.
    s.on('data', onSocketData);
    s.on('end', onSocketEnd);
    s.on('close', onSocketClose);
    // Read as the next chunk, once the subscription has been set up (ws did the same).
    if (head.length > 0) s.unshift(head);
  }

  read(chunk: Buffer): void {
    if (!this.ended) this.reader.read(chunk, this);
  }

  /** The peer half-closed: it sends nothing more, and gets nothing more. */
  peerEnded(): void {
    this.ended = true;
    this.closeSent = true;
    this.socket.end();
  }

  socketClosed(): void {
    this.finish('client');
  }

  reading(): boolean {
    return !this.ended;
  }

  message(data: Buffer, binary: boolean): void {
    if (this.closed) return;
    let msg: { type?: unknown; id?: unknown } | null;
    try {
      msg = JSON.parse(binary ? '' : data.toString('utf8')) as { type?: unknown; id?: unknown } | null;
    } catch {
      this.sendError('E_JSON', 'frame is not valid JSON');
      return;
    }
    if (msg?.type === EVENT.read && typeof msg.id === 'string') this.onRead(this, msg.id);
    else this.sendError('E_INVALID', 'expected {"type":"read","id":"<notification id>"}');
  }

  ping(payload: Buffer): void {
    if (!this.closeSent) this.socket.write(serverFrame(OPCODE.pong, payload));
  }

  pong(): void {
    this.alive = true;
  }

  /** The peer's close: echoed (unless ours went first: then the handshake is complete), then the connection ends. */
  closeFrame(code: number): void {
    this.ended = true;
    this.sendClose(code === CLOSE.noStatus ? Buffer.alloc(0) : closePayload(code));
    this.finish('client');
    this.endSocket();
  }

  protocolError(code: number): void {
    this.ended = true;
    this.sendClose(closePayload(code));
    this.finish('error');
    this.endSocket();
  }

  private sendClose(payload: Buffer): void {
    if (this.closeSent) return;
    this.closeSent = true;
    this.socket.write(serverFrame(OPCODE.close, payload));
  }

  /** Ends our side; a peer that never ends its own is dropped after CLOSE_WAIT_MS. */
  private endSocket(): void {
    this.socket.end();
    setTimeout(destroySocket, CLOSE_WAIT_MS, this.socket).unref();
  }

  private send(text: string): void {
    this.emit(text);
  }

  /** A string is a message to frame; a Buffer is a frame already. Nothing after our close frame. */
  protected override writeNow(frame: string | Buffer): void {
    if (this.closeSent) return;
    this.socket.write(typeof frame === 'string' ? serverFrame(OPCODE.text, frame) : frame);
  }

  protected override socketBuffered(): number {
    return this.socket.writableLength;
  }

  protected override onceDrained(fn: () => void): void {
    this.socket.once('drain', fn);
  }

  /** Corked around grouped writes as the SSE socket is: every frame is one write to it. */
  protected override corkableSocket(): Socket {
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
    if (this.closeSent) return;
    if (!this.alive) {
      this.socket.destroy();
      this.finish('client');
      return;
    }
    this.alive = false;
    this.socket.write(PING);
  }

  /** Close 1012; the client answers with its close frame, and then the connection ends (closeFrame). */
  shutdown(): void {
    if (this.closed) return;
    this.finish('shutdown');
    this.sendClose(closePayload(WS_CLOSE.restart, 'server restarting; resume with your cursor'));
    setTimeout(destroySocket, CLOSE_WAIT_MS, this.socket).unref();
  }

  /** The close frame follows only what the socket already holds (the outbox was dropped); see SseSubscriber.closeSlow. */
  protected closeSlow(): void {
    if (this.closed) return;
    this.finish('slow-consumer');
    this.sendClose(closePayload(WS_CLOSE.slowConsumer, SLOW_CONSUMER_REASON));
    // A peer that does not read will not read the close frame either.
    setTimeout(destroySocket, SLOW_CUT_GRACE_MS, this.socket).unref();
  }
}

function onSocketData(this: TaggedSocket, chunk: Buffer): void {
  this[kSub]!.read(chunk);
}

function onSocketEnd(this: TaggedSocket): void {
  this[kSub]!.peerEnded();
}

function onSocketClose(this: TaggedSocket): void {
  this[kSub]!.socketClosed();
}

function destroySocket(socket: Socket): void {
  socket.destroy();
}
