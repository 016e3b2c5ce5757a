/**
 * The listening socket of the gateway and the HTTP versions it speaks (--tls-cert/--tls-key, --h2c):
 * - `http1`: node:http, behind the front door (below).
 * - `tls`: node:http2's secure server with `allowHTTP1`, so ALPN picks h2 or HTTP/1.1 per connection. HTTP/1.1
 *   connections go through Node's own HTTP/1 code on the same server object, which emits `upgrade` for them: that is
 *   how WebSocket works on this port (RFC 8441, WebSocket over an h2 stream, is not offered: `ws` has no h2 side).
 * - `h2c`: the same, and the HTTP/2 connection preface goes to a cleartext node:http2 server (prior knowledge, what a
 *   proxy speaking h2c to its backend sends), so health checks, HTTP/1.1 clients and WebSocket still work on the port.
 * Without TLS, a plain TCP listener looks at the first bytes of each connection: a subscribe request that the front
 * door (front-door.ts) can read whole goes to the gateway on its raw socket, anything else to node:http.
 * HTTP/2 requests reach the routes through node:http2's compatibility API (Http2ServerRequest/Response), which the
 * handlers use as they use node:http's; the few places that differ look at `httpVersionMajor`.
 */
import { createServer as createHttp1Server, type IncomingMessage, type Server as Http1Server, type ServerResponse } from 'node:http';
import { createSecureServer, createServer as createH2cServer, type Http2Session } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { ServeConfig } from './config.js';
import { readHead, type FrontDoorHandler } from './front-door.js';

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

/** Counts the gateway's metrics keep of what the port accepted. */
export interface ListenerEvents {
  /** A TCP connection was accepted (whatever it then speaks). */
  connection(): void;
  /** An HTTP/2 session began (`h2` over TLS or h2c); its streams are the subscribers. */
  session(open: number): void;
  /** An HTTP/2 session ended. */
  sessionClosed(open: number): void;
}

export interface HttpListener {
  /** What `listen` and `address` are called on. */
  readonly server: NetServer;
  /** The objects that emit `upgrade` and `clientError` for HTTP/1.1 connections. */
  readonly http1: NodeJS.EventEmitter[];
  /** URL scheme clients use: `https` with TLS. */
  readonly scheme: 'http' | 'https';
  /** Stops accepting; resolves once every connection is gone. */
  close(): Promise<void>;
  /** Closes idle keep-alive connections and asks HTTP/2 sessions to finish (GOAWAY). */
  closeIdle(): void;
  /** Drops every connection that is left. */
  closeAll(): void;
}

/** How long an idle keep-alive connection is kept (node:http's keepAliveTimeout, and the front door's publishers'). */
export const KEEP_ALIVE_MS = 65_000;

/** The connection preface an HTTP/2 client with prior knowledge sends first (RFC 9113 section 3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** A head that has not come this long after the accept is node:http's headers timeout, answered the same way. */
function headersTimedOut(): NodeJS.ErrnoException {
  return Object.assign(new Error('the request did not arrive in time'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
}

export function createListener(config: ServeConfig, onRequest: RequestListener, events: ListenerEvents, front?: FrontDoorHandler): HttpListener {
  // Node looks for requests past their timeouts every connectionsCheckingInterval (30 s by default).
  const http1Options = { connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs) };
  const sockets = new Set<Socket>();
  // Plain TCP: connections whose first bytes have not come yet, with the time of their accept (node:http, which would
  // time out a silent one, does not know them yet).
  const waiting = new Map<Socket, number>();
  const sessions = new Set<Http2Session>();
  // One function for every socket, and `on` rather than `once` ('close' comes once): no closure and no once-wrapper
  // held per connection for its life.
  function untrack(this: Socket) {
    sockets.delete(this);
    waiting.delete(this);
  }
  const track = (socket: Socket) => {
    events.connection();
    sockets.add(socket);
    socket.on('close', untrack);
  };
  const trackSessions = (h2: NodeJS.EventEmitter) =>
    h2.on('session', (session: Http2Session) => {
      sessions.add(session);
      events.session(sessions.size);
      session.once('close', () => {
        sessions.delete(session);
        events.sessionClosed(sessions.size);
      });
      // A peer that breaks the session is the peer's problem; an unhandled 'error' would end the process.
      session.on('error', () => session.destroy());
    });
  const timeouts = (s: Http1Server | NodeJS.EventEmitter) => {
    const t = s as Http1Server;
    t.keepAliveTimeout = KEEP_ALIVE_MS;
    // Headers or a body that never finish are answered 408 instead of holding the socket for Node's 60 s / 300 s.
    t.headersTimeout = config.headersTimeoutMs;
    t.requestTimeout = config.requestTimeoutMs;
  };
  const asHttp1 = onRequest as unknown as (req: unknown, res: unknown) => void;

  let server: NetServer;
  let http1: NodeJS.EventEmitter[];
  if (config.http === 'tls') {
    const h2 = createSecureServer({ ...config.tls!, allowHTTP1: true }, asHttp1);
    timeouts(h2);
    trackSessions(h2);
    h2.on('connection', track);
    server = h2;
    http1 = [h2];
  } else {
    const h1 = createHttp1Server(http1Options, onRequest);
    timeouts(h1);
    let h2: NodeJS.EventEmitter | undefined;
    if (config.http === 'h2c') {
      h2 = createH2cServer({}, asHttp1);
      trackSessions(h2);
    }
    server = plainListener(config.headersTimeoutMs, http1Options.connectionsCheckingInterval, { h1, h2, front }, track, waiting);
    http1 = [h1];
  }

  return {
    server,
    http1,
    scheme: config.http === 'tls' ? 'https' : 'http',
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    closeIdle() {
      for (const s of http1) (s as Partial<Http1Server>).closeIdleConnections?.();
      for (const session of sessions) session.close();
    },
    closeAll() {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
    },
  };
}

/**
 * Plain TCP (`http1`, `h2c`): each connection's first bytes decide who serves it, the HTTP/2 preface node:http2 (h2c
 * only), a request the front door takes the gateway, anything else node:http. `waiting` holds the connections whose
 * first bytes have not come, with the time of their accept (whoever tracks sockets deletes them on close).
 */
function plainListener(
  headersTimeoutMs: number,
  checkMs: number,
  servers: { h1: Http1Server; h2: NodeJS.EventEmitter | undefined; front: FrontDoorHandler | undefined },
  track: (socket: Socket) => void,
  waiting: Map<Socket, number>,
): NetServer {
  const { h1, h2, front } = servers;
  // node:http, which would time out a silent connection, does not know it yet.
  const sweep = setInterval(() => {
    const limit = Date.now() - headersTimeoutMs;
    for (const [socket, since] of waiting) {
      if (since > limit) continue;
      // Answered as node:http answers its own timeouts; the early error listener stays.
      forget(socket);
      if (!h1.emit('clientError', headersTimedOut(), socket)) socket.destroy();
    }
  }, checkMs);
  sweep.unref();
  const forget = (socket: Socket) => {
    waiting.delete(socket);
    socket.removeListener('readable', onFirstBytes);
  };
  /** To a server that listens for the socket's errors itself. */
  const handOver = (socket: Socket, to: NodeJS.EventEmitter) => {
    socket.removeListener('error', destroyEarly);
    to.emit('connection', socket);
  };
  /** A connection the front door served until now, and the bytes it read and did not answer, to node:http. */
  const toHttp = (socket: Socket, unread: Buffer) => {
    if (unread.length > 0) socket.unshift(unread);
    handOver(socket, h1);
  };
  function onFirstBytes(this: Socket) {
    const head = this.read() as Buffer | null;
    // Nothing yet (or the peer left): the next bytes are looked at, or the close forgets the socket.
    if (head === null) return;
    forget(this);
    const n = Math.min(head.length, PREFACE.length);
    if (h2 !== undefined && head.subarray(0, n).equals(PREFACE.subarray(0, n))) {
      // node:http2 takes over what is buffered on the socket.
      this.unshift(head);
      handOver(this, h2);
      return;
    }
    const got = front === undefined ? undefined : readHead(head);
    if (got !== undefined && front!(got.req, this, got.rest, (unread) => toHttp(this, unread))) return;
    // node:http reads what is buffered first, then the rest as it comes.
    this.unshift(head);
    handOver(this, h1);
  }
  // The options node:http gives its own listener: the connections it is handed behave as if it had accepted them.
  const server = createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    track(socket);
    waiting.set(socket, Date.now());
    // Until a server owns it, a reset must not reach the process as an unhandled 'error'.
    socket.on('error', destroyEarly);
    socket.on('readable', onFirstBytes);
  });
  // node:http starts its own timeout checks (headersTimeout, requestTimeout) when it listens; it never does here.
  server.on('listening', () => h1.emit('listening'));
  server.on('close', () => {
    clearInterval(sweep);
    h1.close();
  });
  return server;
}

function destroyEarly(this: Socket): void {
  this.destroy();
}
