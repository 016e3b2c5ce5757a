/**
 * Socket.IO (v4) subscriber connections over socket.io-client, for target profiles whose server is a Socket.IO app.
 * Each connection has a Manager of its own (`forceNew`): a shared one would multiplex every subscriber over one
 * engine.io socket, and the swarm wants one TCP connection each. WebSocket only, no reconnection: one attempt is one
 * socket, and the swarm decides what follows. Listeners are shared functions that find their connection through the
 * socket (`this.st`), as in ws.ts. What the events carry is searched for probes by the generic decoder.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type WebSocket from 'ws';
import { errorCode, slug } from './codes.js';
import { GenericDecoder, type Receiver } from './decode-generic.js';
import { resumeWith } from './target-url.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, type SubscribeTarget, type Transport, type TransportOptions, type TransportSink } from './transport.js';

const DEFAULT_EVENTS = ['notification'];

class SioConn implements Receiver {
  cursor: string | undefined;
  /** The live socket; events of any other socket are stale and ignored. */
  socket: SioSocket | undefined;
  /** The socket whose event is being decoded. */
  decoding: SioSocket | undefined;
  /** Ends an attempt that has not connected in time (see open). */
  timer: NodeJS.Timeout | undefined;

  constructor(
    readonly transport: SocketioTransport,
    readonly conn: number,
  ) {}

  live(): boolean {
    return this.decoding !== undefined && this.socket === this.decoding;
  }
}

type SioSocket = Socket & { st: SioConn; opened: boolean; emits: string[][] | undefined };

/** socket.io-client's options plus `localAddress`, which engine.io-client hands to ws although its types omit it. */
type Options = Partial<ManagerOptions & SocketOptions> & { localAddress?: string };

// component-emitter calls listeners with the socket as `this`.
function onConnect(this: SioSocket): void {
  const st = this.st;
  if (st.socket !== this) return;
  clearTimeout(st.timer);
  this.opened = true;
  st.transport.sink.opened(st.conn, performance.now());
  if (this.emits === undefined || st.socket !== this) return;
  for (const [name, ...args] of this.emits) this.emit(name, ...args.map(jsonOrString));
}

function onConnectError(this: SioSocket, err: Error): void {
  const st = this.st;
  if (st.socket !== this) return;
  clearTimeout(st.timer);
  st.socket = undefined;
  // Most failures have closed the engine already; a CONNECT answer without a session id (a v2 server) leaves it open.
  this.disconnect();
  st.transport.sink.error(st.conn, connectErrorCode(err));
}

function onDisconnect(this: SioSocket, reason: string): void {
  const st = this.st;
  if (st.socket !== this) return;
  st.socket = undefined;
  st.transport.sink.closed(st.conn, `socketio-${slug(reason)}`);
}

function onNotification(this: SioSocket, ...args: unknown[]): void {
  const st: SioConn = this.st;
  if (st.socket !== this) return;
  const decoder: GenericDecoder = st.transport.decoder;
  st.decoding = this;
  decoder.values(st, args, performance.now());
  st.decoding = undefined;
}

function onConnectTimeout(socket: SioSocket): void {
  const st = socket.st;
  if (st.socket !== socket) return;
  st.socket = undefined;
  drop(socket);
  st.transport.sink.error(st.conn, 'timeout');
}

/**
 * A `connect_error` as a stable code. engine.io-client wraps a failed WebSocket in a TransportError whose
 * `description` is ws's ErrorEvent (the socket error, or ws's "Unexpected server response: <status>"); the Manager's
 * timeout is an Error('timeout'); a refusal by the server's middleware is an Error with the server's message.
 */
function connectErrorCode(err: Error & { description?: { error?: unknown; message?: unknown } }): string {
  if (err.message === 'timeout') return 'timeout';
  const cause = err.description?.error ?? err.description;
  const message = (cause as { message?: unknown } | undefined)?.message;
  const status = typeof message === 'string' ? /^Unexpected server response: (\d+)/.exec(message) : null;
  if (status !== null) return `http-${status[1]}`;
  const code = cause === undefined ? 'error' : errorCode(cause);
  return code !== 'error' ? code : `socketio-${slug(err.message)}`;
}

/** An emitted argument: sent parsed when it is JSON (an object, a number), else as the string it is. */
function jsonOrString(arg: string): unknown {
  try {
    return JSON.parse(arg) as unknown;
  } catch {
    return arg;
  }
}

/**
 * Destroys the socket's TCP connection without a WebSocket close frame, as a storm would: engine.io-client has no
 * abrupt close of its own, so this reaches for its ws socket. Returns that socket, for waiting on its close.
 */
function drop(socket: Socket): WebSocket | undefined {
  const ws = (socket.io.engine?.transport as unknown as { ws?: WebSocket | null } | undefined)?.ws ?? undefined;
  if (ws !== undefined) ws.terminate();
  else socket.disconnect();
  return ws;
}

export class SocketioTransport implements Transport {
  readonly name = 'socketio' as const;
  readonly decoder: GenericDecoder;
  private readonly events: string[];
  private readonly conns = new Map<number, SioConn>();
  private readonly connectTimeoutMs: number;

  constructor(
    readonly sink: TransportSink,
    options: TransportOptions = {},
  ) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.decoder = new GenericDecoder(sink, options.generic ?? {});
    this.events = options.generic?.events ?? DEFAULT_EVENTS;
  }

  open(conn: number, target: SubscribeTarget, cursor?: string): void {
    let st = this.conns.get(conn);
    if (st === undefined) {
      st = new SioConn(this, conn);
      this.conns.set(conn, st);
    } else if (st.socket !== undefined) {
      this.stop(st, 'aborted');
    }
    if (cursor !== undefined) st.cursor = cursor;
    // socket.io-client takes anything as a URL (a bare word is a path on the page's host): only http(s) and ws(s) are.
    if (!/^(?:http|ws)s?:\/\/[^/]/i.test(target.url) || !URL.canParse(target.url)) return this.sink.error(conn, 'bad-url');
    const sio = target.socketio;
    const resume = resumeWith(target, cursor, 'none');
    const query = resume.query ? { ...sio?.query, [resume.query[0]]: resume.query[1] } : sio?.query;
    const headers = resume.header !== undefined ? { ...target.headers, 'last-event-id': resume.header } : target.headers;
    const options: Options = {
      path: sio?.path ?? '/socket.io',
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      auth: sio?.auth,
      query,
      extraHeaders: headers,
      timeout: this.connectTimeoutMs,
      localAddress: target.localAddress,
    };
    let socket: SioSocket;
    try {
      socket = io(target.url, options) as SioSocket;
    } catch {
      // A target that is not a URL: reported like any failed attempt rather than thrown into a timer.
      return this.sink.error(conn, 'bad-url');
    }
    socket.st = st;
    socket.opened = false;
    socket.emits = sio?.emit;
    st.socket = socket;
    // The Manager's own timeout ends at the engine.io handshake; `opened` waits for the namespace CONNECT as well,
    // which a server's auth middleware may hold.
    st.timer = setTimeout(onConnectTimeout, this.connectTimeoutMs, socket);
    socket.on('connect', onConnect);
    socket.on('connect_error', onConnectError);
    socket.on('disconnect', onDisconnect);
    for (const event of this.events) socket.on(event, onNotification);
  }

  abort(conn: number): void {
    const st = this.conns.get(conn);
    if (st?.socket !== undefined) this.stop(st, 'aborted');
  }

  close(conn: number): void {
    const st = this.conns.get(conn);
    if (st?.socket !== undefined) this.stop(st, 'client-closed');
  }

  cursor(conn: number): string | undefined {
    return this.conns.get(conn)?.cursor;
  }

  async dispose(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const st of this.conns.values()) {
      const socket = st.socket;
      st.socket = undefined;
      clearTimeout(st.timer);
      if (socket === undefined) continue;
      const ws = drop(socket);
      if (ws !== undefined && ws.readyState !== ws.CLOSED) closing.push(new Promise((resolve) => ws.once('close', () => resolve())));
    }
    this.conns.clear();
    await Promise.all(closing);
  }

  private stop(st: SioConn, cause: 'aborted' | 'client-closed'): void {
    const socket = st.socket!;
    st.socket = undefined;
    clearTimeout(st.timer);
    // disconnect() sends the namespace DISCONNECT and a WebSocket close frame.
    if (cause === 'aborted') drop(socket);
    else socket.disconnect();
    if (socket.opened) this.sink.closed(st.conn, cause);
    else this.sink.error(st.conn, cause);
  }
}
