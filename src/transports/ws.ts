/**
 * WebSocket subscriber connections over ws@8. Listeners are shared functions that find their connection through
 * the socket (`this.st`), so a connection costs its ws objects plus one small state object, and no closures.
 */
import WebSocket from 'ws';
import { errorCode, retryAfterMs } from './codes.js';
import { isObject, unreadCount } from './json.js';
import { ProbeScanner } from './probe-scan.js';
import { GenericDecoder, type Receiver } from './decode-generic.js';
import { resumeWith, subscribeRequest } from './target-url.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  type ReadReceipts,
  type ReceivedNotification,
  type SubscribeTarget,
  type Transport,
  type TransportOptions,
  type TransportSink,
} from './transport.js';
import type { IncomingMessage, ClientRequest } from 'node:http';
import { EVENT } from '../protocol/events.js';

class WsConn implements Receiver {
  cursor: string | undefined;
  /** The live socket; events of any other socket are stale and ignored. */
  ws: WsSocket | undefined;
  /** The socket whose frame is being decoded. */
  decoding: WsSocket | undefined;
  /** Text frames to send once open (a target profile's `send`). */
  send: string[] | undefined;

  live(): boolean {
    return this.decoding !== undefined && this.ws === this.decoding;
  }

  constructor(
    readonly transport: WsTransport,
    readonly conn: number,
  ) {}
}

class WsSocket extends WebSocket {
  st!: WsConn;
  opened = false;
}

// ws types listeners with `this: WebSocket`; every socket this module listens on is a WsSocket.
function onOpen(this: WebSocket): void {
  const ws = this as WsSocket;
  const st = ws.st;
  if (st.ws !== ws) return;
  ws.opened = true;
  st.transport.sink.opened(st.conn, performance.now());
  if (st.send !== undefined && st.ws === ws) for (const frame of st.send) ws.send(frame);
}

function onMessage(this: WebSocket, data: WebSocket.RawData): void {
  const ws = this as WsSocket;
  const st = ws.st;
  if (st.ws === ws) st.transport.onFrame(st, ws, data, performance.now());
}

function onClose(this: WebSocket, code: number): void {
  const ws = this as WsSocket;
  const st = ws.st;
  if (st.ws !== ws) return;
  st.ws = undefined;
  if (ws.opened) st.transport.sink.closed(st.conn, `ws-${code}`);
  else st.transport.sink.error(st.conn, `ws-${code}`);
}

function onError(this: WebSocket, err: Error): void {
  const ws = this as WsSocket;
  const st = ws.st;
  // After the upgrade an error is always followed by 'close', whose code says more; before it, the error is the cause.
  if (st.ws !== ws || ws.opened) return;
  st.ws = undefined;
  st.transport.sink.error(st.conn, errorCode(err));
}

function onUnexpectedResponse(this: WebSocket, _req: ClientRequest, res: IncomingMessage): void {
  const ws = this as WsSocket;
  const st = ws.st;
  if (st.ws === ws) {
    st.ws = undefined;
    st.transport.sink.error(st.conn, `http-${res.statusCode ?? 0}`, retryAfterMs(res.headers['retry-after']));
  }
  res.resume();
  ws.terminate();
}

export class WsTransport implements Transport, ReadReceipts {
  readonly name = 'ws' as const;
  private readonly conns = new Map<number, WsConn>();
  private readonly connectTimeoutMs: number;
  private readonly insecureTls: boolean;
  /** Set with `probeOnly` (notify dialect only). */
  private readonly scanner: ProbeScanner | undefined;
  /** Set with `generic`: a target profile's server, whose frames are searched for probes. */
  private readonly generic: GenericDecoder | undefined;

  constructor(
    readonly sink: TransportSink,
    options: TransportOptions = {},
  ) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.insecureTls = options.insecureTls ?? false;
    this.generic = options.generic ? new GenericDecoder(sink, options.generic) : undefined;
    this.scanner = options.probeOnly && !this.generic ? new ProbeScanner() : undefined;
  }

  open(conn: number, target: SubscribeTarget, cursor?: string): void {
    let st = this.conns.get(conn);
    if (st === undefined) {
      st = new WsConn(this, conn);
      this.conns.set(conn, st);
    } else if (st.ws !== undefined) {
      this.stop(st, 'aborted');
    }
    if (cursor !== undefined) st.cursor = cursor;
    st.send = target.send;
    let ws: WsSocket;
    try {
      const resume = resumeWith(target, cursor, 'query:cursor');
      const req = subscribeRequest(target, '/ws', resume.query ? [resume.query] : [], 'ws');
      if (resume.header !== undefined) req.headers['last-event-id'] = resume.header;
      ws = new WsSocket(req.origin + req.path, target.protocols ?? [], {
        headers: req.headers,
        localAddress: target.localAddress,
        handshakeTimeout: this.connectTimeoutMs,
        rejectUnauthorized: !this.insecureTls,
        // Compression would cost a zlib context per connection; notify serve does not ask for it.
        perMessageDeflate: false,
        followRedirects: false,
      });
    } catch {
      // A target that is not an http(s)/ws(s) URL: reported like any failed attempt rather than thrown into a timer.
      return this.sink.error(conn, 'bad-url');
    }
    ws.st = st;
    st.ws = ws;
    ws.on('open', onOpen);
    ws.on('message', onMessage);
    ws.on('close', onClose);
    ws.on('error', onError);
    ws.on('unexpected-response', onUnexpectedResponse);
  }

  abort(conn: number): void {
    const st = this.conns.get(conn);
    if (st?.ws !== undefined) this.stop(st, 'aborted');
  }

  close(conn: number): void {
    const st = this.conns.get(conn);
    if (st?.ws !== undefined) this.stop(st, 'client-closed');
  }

  cursor(conn: number): string | undefined {
    return this.conns.get(conn)?.cursor;
  }

  /** @public Pausable (the swarm's `slow` phase calls it through isPausable). */
  pause(conn: number): boolean {
    const ws = this.conns.get(conn)?.ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return false;
    ws.pause();
    return true;
  }

  /** @public Pausable. */
  resume(conn: number): void {
    this.conns.get(conn)?.ws?.resume();
  }

  /** Sends a read receipt (`{"type":"read","id"}`); false when the connection is not open. */
  markRead(conn: number, id: string): boolean {
    const ws = this.conns.get(conn)?.ws;
    if (ws === undefined || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify({ type: EVENT.read, id }));
    return true;
  }

  async dispose(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const st of this.conns.values()) {
      const ws = st.ws;
      st.ws = undefined;
      if (ws === undefined || ws.readyState === WebSocket.CLOSED) continue;
      closing.push(new Promise((resolve) => ws.once('close', () => resolve())));
      ws.terminate();
    }
    this.conns.clear();
    await Promise.all(closing);
  }

  /** One frame: the hot path. */
  onFrame(st: WsConn, ws: WsSocket, data: WebSocket.RawData, at: number): void {
    // binaryType stays 'nodebuffer', so a frame is one Buffer; the other RawData forms are read the same way.
    const text = Buffer.isBuffer(data)
      ? data.toString('utf8')
      : Array.isArray(data)
        ? Buffer.concat(data).toString('utf8')
        : Buffer.from(data).toString('utf8');
    if (this.generic !== undefined) {
      st.decoding = ws;
      this.generic.text(st, text, at);
      st.decoding = undefined;
      return;
    }
    if (this.scanner !== undefined && this.probesOnly(st, ws, text, at)) return;
    let m: unknown;
    try {
      m = JSON.parse(text);
    } catch {
      return this.badFrame(st, ws);
    }
    if (!isObject(m)) return this.badFrame(st, ws);
    const sink = this.sink;
    const cursor = typeof m.cursor === 'string' ? m.cursor : undefined;
    switch (m.type) {
      case EVENT.notification:
        if (!isObject(m.notification)) return this.badFrame(st, ws);
        if (cursor !== undefined) st.cursor = cursor;
        sink.notification(st.conn, m.notification as ReceivedNotification, cursor, at);
        return;
      case EVENT.batch: {
        const list = m.notifications;
        if (!Array.isArray(list)) return this.badFrame(st, ws);
        if (cursor !== undefined) st.cursor = cursor;
        const last = list.length - 1;
        for (let i = 0; i <= last && st.ws === ws; i++) {
          sink.notification(st.conn, list[i] as ReceivedNotification, i === last ? cursor : undefined, at);
        }
        return;
      }
      case EVENT.init: {
        if (cursor === undefined) return this.badFrame(st, ws);
        st.cursor = cursor;
        sink.init(st.conn, cursor, unreadCount(m));
        return;
      }
      case EVENT.reset:
        // Its cursor is the one we gave, not a new position: the `init` that follows brings that.
        sink.reset(st.conn, typeof m.reason === 'string' ? m.reason : 'unknown');
        return;
      case EVENT.read:
        if (typeof m.id === 'string') sink.read?.(st.conn, m.id, typeof m.readAt === 'string' ? m.readAt : undefined);
        return;
      default:
        // 'error' frames precede a close whose code is the cause; unknown types are ignored for forward compatibility.
        return;
    }
  }

  /** `probeOnly`: delivers a notification or batch frame by its probes alone; false when it must be parsed in full. */
  private probesOnly(st: WsConn, ws: WsSocket, text: string, at: number): boolean {
    const scanner = this.scanner!;
    const found = scanner.wsFrame(text);
    if (found === undefined) return false;
    const cursor = scanner.cursor;
    st.cursor = cursor;
    if (!Array.isArray(found)) {
      this.sink.notification(st.conn, { data: { probe: found } }, cursor, at);
      return true;
    }
    const last = found.length - 1;
    for (let i = 0; i <= last && st.ws === ws; i++) {
      this.sink.notification(st.conn, { data: { probe: found[i] } }, i === last ? cursor : undefined, at);
    }
    return true;
  }

  private badFrame(st: WsConn, ws: WsSocket): void {
    st.ws = undefined;
    ws.terminate();
    this.sink.closed(st.conn, 'bad-event');
  }

  private stop(st: WsConn, cause: 'aborted' | 'client-closed'): void {
    const ws = st.ws!;
    st.ws = undefined;
    if (cause === 'aborted') ws.terminate();
    else ws.close(1000);
    if (ws.opened) this.sink.closed(st.conn, cause);
    else this.sink.error(st.conn, cause);
  }
}
