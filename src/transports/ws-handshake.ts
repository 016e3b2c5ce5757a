/**
 * The client's opening handshake (RFC 6455 4.1), written and read by hand on a socket of the connection's own (as
 * sse-http1.ts does for SSE), and the socket's reads after it. Checks what ws@8's client checks: the accept key, the
 * Upgrade header, no extension we did not ask for, a subprotocol among those offered.
 * Plain TCP sockets read through `onread` into one buffer all of them share (reads are handled one at a time; what
 * a reader keeps past a read, it copies), which skips the stream machinery and a Buffer per read: on the swarm's WS
 * path that machinery cost more per message than the audit (BENCHMARKS.md, "swarm WS CPU per message"). TLS sockets
 * emit 'data'. The socket's handlers are functions shared by all sockets, which find their reader through a symbol.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { errorCode, retryAfterMs } from './codes.js';
import { openSocket, requestHead, ResponseHeadReader, type ResponseHead } from './http1-wire.js';
import type { SubscribeRequest } from './target-url.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** `Sec-WebSocket-Accept` for `key` (RFC 6455 4.2.2): what the server answers and the client checks. */
export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

/** Who reads a socket: the handshake until the 101, then its owner. */
export interface SocketReader {
  /**
   * The first `n` bytes of `buf`, which is only valid during the call (plain sockets share one read buffer: copy
   * what must outlive it). False stops reading (a paused socket; `socket.resume()` starts it again).
   */
  socketRead(buf: Buffer, n: number): boolean;
}

/** Who waits for the handshake's outcome: exactly one call, unless `cancel()` came first. */
export interface HandshakeOwner extends SocketReader {
  /**
   * 101 and valid: the socket is ours and its reads go to `socketRead` from now on; `head` holds bytes read past
   * the response head (a view valid only during the call).
   */
  upgraded(socket: Socket, head: Buffer): void;
  /** 'http-<status>', 'timeout', 'bad-handshake', 'bad-response', or a socket error code (errorCode). */
  refused(code: string, retryMs?: number): void;
}

export interface HandshakeOptions {
  /** Subprotocols to offer (`Sec-WebSocket-Protocol`); the server must pick one of them, or none when empty. */
  protocols: string[];
  localAddress?: string;
  /** Connect, then the response head, each at most this long (ms), as node:http's `timeout` was. */
  timeoutMs: number;
  rejectUnauthorized: boolean;
}

const kReader = Symbol('notify.ws.reader');
type ReadSocket = Socket & { [kReader]?: SocketReader };

const readBuffer = Buffer.allocUnsafe(64 * 1024);
const onread = { buffer: readBuffer, callback: onRead };

function onRead(this: ReadSocket, n: number, buf: Buffer): boolean {
  const reader = this[kReader];
  return reader !== undefined && reader.socketRead(buf, n);
}

function onData(this: ReadSocket, chunk: Buffer): void {
  if (this[kReader]?.socketRead(chunk, chunk.length) === false) this.pause();
}

function onConnect(this: ReadSocket): void {
  (this[kReader] as Handshake | undefined)?.connected();
}

function onError(this: ReadSocket, err: Error): void {
  (this[kReader] as Handshake | undefined)?.refuse(errorCode(err));
}

function onClose(this: ReadSocket): void {
  // Closed before the response head without an error of its own: what node:http called "socket hang up".
  (this[kReader] as Handshake | undefined)?.refuse('ECONNRESET');
}

function onTimeout(h: Handshake): void {
  h.refuse('timeout');
}

export class Handshake implements SocketReader {
  private socket: ReadSocket | undefined;
  private readonly accept: string;
  private timer: NodeJS.Timeout | undefined;
  /** The 101 being read (an upgrade: 101 is the answer, not an interim one). */
  private readonly head = new ResponseHeadReader(true);

  /** Connects and sends the upgrade request; throws on a URL that is not http(s)/ws(s) or a header that is bad. */
  constructor(
    private readonly owner: HandshakeOwner,
    r: SubscribeRequest,
    private readonly options: HandshakeOptions,
  ) {
    const given = new URL(r.origin + r.path);
    const secure = given.protocol === 'https:' || given.protocol === 'wss:';
    if (!secure && given.protocol !== 'http:' && given.protocol !== 'ws:') throw new Error(`not a WebSocket URL: ${given.href}`);
    // openSocket and requestHead speak http(s): the same host, port and path.
    const url = new URL(given.href.replace(/^ws/, 'http'));
    const key = randomBytes(16).toString('base64');
    this.accept = acceptKey(key);
    const headers: Record<string, string> = {
      ...r.headers,
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': key,
    };
    if (options.protocols.length > 0) headers['sec-websocket-protocol'] = options.protocols.join(',');
    const request = requestHead('GET', url, headers);
    const socket: ReadSocket = openSocket(url, {
      localAddress: options.localAddress,
      insecureTls: !options.rejectUnauthorized,
      onread: secure ? undefined : onread,
    });
    socket[kReader] = this;
    socket.on('error', onError);
    socket.on('close', onClose);
    if (secure) socket.on('data', onData);
    socket.once(secure ? 'secureConnect' : 'connect', onConnect);
    socket.write(request);
    this.socket = socket;
    this.timer = setTimeout(onTimeout, options.timeoutMs, this);
  }

  /** Connected: the response head has its own timeoutMs from now. */
  connected(): void {
    this.timer?.refresh();
  }

  /** Stops the attempt without telling the owner; resolves once the socket has closed. */
  cancel(): Promise<void> {
    const socket = this.drop();
    if (socket === undefined || socket.closed) return Promise.resolve();
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.destroy();
    return closed;
  }

  /** Fails the attempt with `code` (once; nothing after the upgrade or a cancel). */
  refuse(code: string, retryMs?: number): void {
    const socket = this.drop();
    if (socket === undefined) return;
    socket.destroy();
    this.owner.refused(code, retryMs);
  }

  /** Collects the response head; once complete, hands the socket over (or refuses). */
  socketRead(buf: Buffer, n: number): boolean {
    const got = this.head.read(buf.subarray(0, n));
    if (got === 'more') return true;
    if (got === 'bad-response') {
      this.refuse('bad-response');
      return false;
    }
    const { head, rest } = got;
    if (head.status !== 101 || !this.valid(head)) {
      if (head.status !== 101) this.refuse(`http-${head.status}`, retryAfterMs(head.headers['retry-after']));
      else this.refuse('bad-handshake');
      return false;
    }
    const socket = this.drop()!;
    socket.off('error', onError);
    socket.off('close', onClose);
    socket.setNoDelay(true);
    socket[kReader] = this.owner;
    this.owner.upgraded(socket, rest);
    return true;
  }

  /** Detaches from the socket (once): the timer stops, and the socket's events no longer reach this handshake. */
  private drop(): ReadSocket | undefined {
    const socket = this.socket;
    if (socket === undefined) return undefined;
    this.socket = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (socket[kReader] === this) socket[kReader] = undefined;
    return socket;
  }

  private valid(res: ResponseHead): boolean {
    const h = res.headers;
    if (h['sec-websocket-accept'] !== this.accept) return false;
    if (typeof h.upgrade !== 'string' || h.upgrade.toLowerCase() !== 'websocket') return false;
    if (h['sec-websocket-extensions'] !== undefined) return false;
    const chosen = h['sec-websocket-protocol'];
    if (chosen === undefined) return this.options.protocols.length === 0;
    return this.options.protocols.includes(chosen);
  }
}
