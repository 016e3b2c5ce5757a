/**
 * WebSocket subscriber connections: the opening handshake by hand on a socket of the attempt's own (ws-handshake.ts),
 * then each read of that socket cut into frames by ws-frames.ts's reader. Profiled on ws@8 (BENCHMARKS.md, "swarm WS
 * receive path"), the client's Receiver stream and its per-frame events cost more than everything the swarm does
 * with a message; this path is a loop over each read, which plain sockets make into one buffer shared by all of them
 * (`onread`: no Buffer, stream layer or 'data' event per read). Listeners are shared functions that find their
 * attempt through the socket, so a connection costs a socket, one attempt and one small state object, no closures.
 */
import type { Socket } from 'node:net';
import { isObject, unreadCount } from './json.js';
import { ProbeScanner } from './probe-scan.js';
import { GenericDecoder, type Receiver } from './decode-generic.js';
import { resumeWith, subscribeRequest } from './target-url.js';
import { CLOSE, clientFrame, closePayload, FrameReader, OPCODE, type FrameHandler } from './ws-frames.js';
import { Handshake, type HandshakeOwner } from './ws-handshake.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  type ReadReceipts,
  type ReceivedNotification,
  type SubscribeTarget,
  type Transport,
  type TransportOptions,
  type TransportSink,
} from './transport.js';
import { EVENT } from '../protocol/events.js';

/** How long a polite close waits for the server's close frame and FIN before dropping the socket. */
const CLOSE_WAIT_MS = 5000;

const kAttempt = Symbol('notify.ws.attempt');
type TaggedSocket = Socket & { [kAttempt]?: WsAttempt };

class WsConn implements Receiver {
  cursor: string | undefined;
  /** The live attempt; events of any other attempt are stale and ignored. */
  attempt: WsAttempt | undefined;
  /** The attempt whose frame is being decoded. */
  decoding: WsAttempt | undefined;
  /** Text frames to send once open (a target profile's `send`). */
  send: string[] | undefined;

  live(): boolean {
    return this.decoding !== undefined && this.attempt === this.decoding;
  }

  constructor(
    readonly transport: WsTransport,
    readonly conn: number,
  ) {}
}

/** One connection attempt: the handshake, then the open socket and its frame reader. */
class WsAttempt extends FrameReader implements FrameHandler, HandshakeOwner {
  handshake: Handshake | undefined;
  socket: TaggedSocket | undefined;
  /** Receive time of the chunk being read. */
  at = 0;
  /** Paused by the swarm's `slow` phase: reads stop until `resume`. */
  paused = false;

  constructor(readonly st: WsConn) {
    super();
  }

  private live(): boolean {
    return this.st.attempt === this;
  }

  upgraded(socket: Socket, head: Buffer): void {
    this.handshake = undefined;
    const s = socket as TaggedSocket;
    s[kAttempt] = this;
    s.on('close', onSocketClose);
    s.on('error', onSocketError);
    s.on('timeout', onSocketTimeout);
    this.socket = s;
    if (!this.live()) return void s.destroy();
    const st = this.st;
    st.transport.sink.opened(st.conn, performance.now());
    if (st.send !== undefined) for (const text of st.send) if (this.live()) this.sendText(text);
    if (head.length > 0 && this.live()) this.chunk(head);
  }

  refused(code: string, retryMs?: number): void {
    this.handshake = undefined;
    if (!this.live()) return;
    this.st.attempt = undefined;
    this.st.transport.sink.error(this.st.conn, code, retryMs);
  }

  chunk(data: Buffer): void {
    this.at = performance.now();
    this.read(data, this);
  }

  /** A read after the upgrade: the frames of the first `n` bytes of `buf`, a view valid only during the call. */
  socketRead(buf: Buffer, n: number): boolean {
    if (this.st.attempt !== this) return false;
    this.chunk(n === buf.length ? buf : buf.subarray(0, n));
    return !this.paused;
  }

  reading(): boolean {
    return this.live();
  }

  message(data: Buffer): void {
    this.st.transport.onFrame(this.st, this, data, this.at);
  }

  ping(payload: Buffer): void {
    this.socket!.write(clientFrame(OPCODE.pong, payload));
  }

  closeFrame(code: number, _reason: string): void {
    // Answer the close (RFC 6455 5.5.1) and let the server end the TCP connection.
    this.end(code === CLOSE.noStatus ? Buffer.alloc(0) : closePayload(code));
    this.st.transport.ended(this.st, `ws-${code}`);
  }

  protocolError(code: number): void {
    this.end(closePayload(code));
    this.st.transport.ended(this.st, `ws-${code}`);
  }

  sendText(text: string): void {
    this.socket!.write(clientFrame(OPCODE.text, Buffer.from(text)));
  }

  /**
   * Sends a close frame with `payload` and half-closes; the socket is dropped if the server does not finish. A
   * closing socket no longer holds the process (a worker exiting after its polite closes does not wait for them).
   */
  end(payload: Buffer): void {
    const s = this.socket!;
    s.end(clientFrame(OPCODE.close, payload));
    s.setTimeout(CLOSE_WAIT_MS);
    s.unref();
  }
}

function onSocketClose(this: TaggedSocket): void {
  const a = this[kAttempt]!;
  if (a.st.attempt === a) a.st.transport.ended(a.st, `ws-${CLOSE.abnormal}`);
}

function onSocketError(): void {
  // After the upgrade an error is always followed by 'close' (ws-1006): the close is what the swarm counts.
}

function onSocketTimeout(this: TaggedSocket): void {
  // Only set while a close handshake is under way (WsAttempt.end).
  this.destroy();
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
    } else if (st.attempt !== undefined) {
      this.stop(st, 'aborted');
    }
    if (cursor !== undefined) st.cursor = cursor;
    st.send = target.send;
    const attempt = new WsAttempt(st);
    let handshake: Handshake;
    try {
      const resume = resumeWith(target, cursor, 'query:cursor');
      const req = subscribeRequest(target, '/ws', resume.query ? [resume.query] : []);
      if (resume.header !== undefined) req.headers['last-event-id'] = resume.header;
      handshake = new Handshake(attempt, req, {
        protocols: target.protocols ?? [],
        localAddress: target.localAddress,
        timeoutMs: this.connectTimeoutMs,
        rejectUnauthorized: !this.insecureTls,
      });
    } catch {
      // A target that is not an http(s)/ws(s) URL: reported like any failed attempt rather than thrown into a timer.
      return this.sink.error(conn, 'bad-url');
    }
    attempt.handshake = handshake;
    st.attempt = attempt;
  }

  abort(conn: number): void {
    const st = this.conns.get(conn);
    if (st?.attempt !== undefined) this.stop(st, 'aborted');
  }

  close(conn: number): void {
    const st = this.conns.get(conn);
    if (st?.attempt !== undefined) this.stop(st, 'client-closed');
  }

  cursor(conn: number): string | undefined {
    return this.conns.get(conn)?.cursor;
  }

  /** The open socket of `conn`, or undefined. */
  private openSocket(conn: number): Socket | undefined {
    const s = this.conns.get(conn)?.attempt?.socket;
    return s !== undefined && s.writable ? s : undefined;
  }

  /** @public Pausable (the swarm's `slow` phase calls it through isPausable). */
  pause(conn: number): boolean {
    const s = this.openSocket(conn);
    if (s === undefined) return false;
    this.conns.get(conn)!.attempt!.paused = true;
    s.pause();
    return true;
  }

  /** @public Pausable. */
  resume(conn: number): void {
    const attempt = this.conns.get(conn)?.attempt;
    if (attempt?.socket === undefined || !attempt.paused) return;
    attempt.paused = false;
    attempt.socket.resume();
  }

  /** Sends a read receipt (`{"type":"read","id"}`); false when the connection is not open. */
  markRead(conn: number, id: string): boolean {
    const attempt = this.conns.get(conn)?.attempt;
    if (attempt === undefined || this.openSocket(conn) === undefined) return false;
    attempt.sendText(JSON.stringify({ type: EVENT.read, id }));
    return true;
  }

  async dispose(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const st of this.conns.values()) {
      const attempt = st.attempt;
      st.attempt = undefined;
      if (attempt === undefined) continue;
      const s = attempt.socket;
      if (s !== undefined) {
        if (!s.closed) closing.push(new Promise((resolve) => s.once('close', () => resolve())));
        s.destroy();
      } else if (attempt.handshake !== undefined) closing.push(attempt.handshake.cancel());
    }
    this.conns.clear();
    await Promise.all(closing);
  }

  /** One message, text or binary (read the same way, as ws@8's client was): the hot path. */
  onFrame(st: WsConn, attempt: WsAttempt, data: Buffer, at: number): void {
    const text = data.toString('utf8');
    if (this.generic !== undefined) {
      st.decoding = attempt;
      this.generic.text(st, text, at);
      st.decoding = undefined;
      return;
    }
    if (this.scanner !== undefined && this.probesOnly(st, attempt, text, at)) return;
    let m: unknown;
    try {
      m = JSON.parse(text);
    } catch {
      return this.badFrame(st, attempt);
    }
    if (!isObject(m)) return this.badFrame(st, attempt);
    const sink = this.sink;
    const cursor = typeof m.cursor === 'string' ? m.cursor : undefined;
    switch (m.type) {
      case EVENT.notification:
        if (!isObject(m.notification)) return this.badFrame(st, attempt);
        if (cursor !== undefined) st.cursor = cursor;
        sink.notification(st.conn, m.notification as ReceivedNotification, cursor, at);
        return;
      case EVENT.batch: {
        const list = m.notifications;
        if (!Array.isArray(list)) return this.badFrame(st, attempt);
        if (cursor !== undefined) st.cursor = cursor;
        const last = list.length - 1;
        for (let i = 0; i <= last && st.attempt === attempt; i++) {
          sink.notification(st.conn, list[i] as ReceivedNotification, i === last ? cursor : undefined, at);
        }
        return;
      }
      case EVENT.init: {
        if (cursor === undefined) return this.badFrame(st, attempt);
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

  /** The attempt ended from the server's side or the network's (close frame, protocol error, dropped socket). */
  ended(st: WsConn, cause: string): void {
    st.attempt = undefined;
    this.sink.closed(st.conn, cause);
  }

  /** `probeOnly`: delivers a notification or batch frame by its probes alone; false when it must be parsed in full. */
  private probesOnly(st: WsConn, attempt: WsAttempt, text: string, at: number): boolean {
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
    for (let i = 0; i <= last && st.attempt === attempt; i++) {
      this.sink.notification(st.conn, { data: { probe: found[i] } }, i === last ? cursor : undefined, at);
    }
    return true;
  }

  private badFrame(st: WsConn, attempt: WsAttempt): void {
    st.attempt = undefined;
    attempt.socket?.destroy();
    this.sink.closed(st.conn, 'bad-event');
  }

  private stop(st: WsConn, cause: 'aborted' | 'client-closed'): void {
    const attempt = st.attempt!;
    st.attempt = undefined;
    const s = attempt.socket;
    if (s === undefined) {
      void attempt.handshake?.cancel();
      return this.sink.error(st.conn, cause);
    }
    if (cause === 'aborted' || !s.writable) s.destroy();
    else attempt.end(closePayload(CLOSE.normal));
    this.sink.closed(st.conn, cause);
  }
}
