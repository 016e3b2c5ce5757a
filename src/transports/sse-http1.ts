/**
 * SSE over HTTP/1.1 (http:// and https://) on a socket of its own per connection: the GET written by hand, the
 * response head and the body's framing (chunked, Content-Length or until close) parsed here, the body bytes handed
 * straight to the connection's SSE parser. undici's per-chunk stack (Client, llhttp, its handler layers) cost about
 * a third of a swarm worker's CPU around this one job (BENCHMARKS.md, "swarm vs bare reader").
 * Plain TCP sockets read through `onread` into one buffer all of them share (reads are handled one at a time and
 * nothing keeps a view of it), which skips the stream machinery and a Buffer per read; TLS sockets emit 'data'.
 * The socket's handlers are functions shared by all sockets, which find their attempt through a symbol: no closures
 * per connection.
 */
import type { Socket } from 'node:net';
import { errorCode } from './codes.js';
import { ChunkedDecoder, type ChunkSink } from './http1-chunked.js';
import { framingOf, openSocket, ResponseHeadReader, type Framing } from './http1-wire.js';
import { SseAttempt, type AttemptControl, type SseConn } from './sse-attempt.js';

export interface Http1Timeouts {
  /** Connect, then the response head, each at most this long (ms): past it the attempt fails with 'timeout'. */
  connectTimeoutMs: number;
  /** An open stream silent this long (ms) closes with 'idle-timeout'; 0: never. */
  idleTimeoutMs: number;
  insecureTls: boolean;
}

const kAttempt = Symbol('notify.sse.attempt');
type OwnedSocket = Socket & { [kAttempt]?: SseSocketAttempt };

const readBuffer = Buffer.allocUnsafe(64 * 1024);
const onread = { buffer: readBuffer, callback: onRead };

function onRead(this: OwnedSocket, n: number, buf: Buffer): boolean {
  const attempt = this[kAttempt];
  if (attempt === undefined) return false;
  attempt.read(buf, n);
  return !attempt.paused;
}

function onData(this: OwnedSocket, chunk: Buffer): void {
  this[kAttempt]?.read(chunk, chunk.length);
}

function onConnect(this: OwnedSocket): void {
  this[kAttempt]?.connected();
}

function onError(this: OwnedSocket, err: Error): void {
  this[kAttempt]?.socketFailed(err);
}

function onClose(this: OwnedSocket): void {
  this[kAttempt]?.closed();
}

function onIdle(this: OwnedSocket): void {
  this[kAttempt]?.end('idle-timeout');
}

function onHeadTimeout(attempt: SseSocketAttempt): void {
  attempt.end('timeout');
}

export class SseSocketAttempt extends SseAttempt implements AttemptControl, ChunkSink {
  paused = false;
  private readonly socket: OwnedSocket;
  private timer: NodeJS.Timeout | undefined;
  /** The response head, until the body starts (`inBody`). */
  private readonly head = new ResponseHeadReader();
  private inBody = false;
  private framing: Framing = 'close';
  /** Content-Length framing: body bytes still to come. */
  private left = 0;
  private chunked: ChunkedDecoder | undefined;
  /** Receive time of the read being decoded (chunked: passed on to each payload piece). */
  private at = 0;
  /** The socket's own error: a reset is told from a clean end by it. */
  private socketError: string | undefined;

  /** Connects and sends `request` (the whole GET head); the caller makes this the connection's attempt. */
  constructor(
    st: SseConn,
    url: URL,
    request: string,
    localAddress: string | undefined,
    private readonly options: Http1Timeouts,
  ) {
    super(st);
    this.controller = this;
    const tls = url.protocol === 'https:';
    const socket: OwnedSocket = openSocket(url, { localAddress, insecureTls: options.insecureTls, onread: tls ? undefined : onread });
    socket[kAttempt] = this;
    socket.on('error', onError);
    socket.on('close', onClose);
    if (tls) socket.on('data', onData);
    socket.once(tls ? 'secureConnect' : 'connect', onConnect);
    socket.write(request);
    this.socket = socket;
    this.timer = setTimeout(onHeadTimeout, options.connectTimeoutMs, this);
  }

  /** Connected: the response head has its own connectTimeoutMs from now, as undici's headersTimeout did. */
  connected(): void {
    this.timer?.refresh();
  }

  /** One read off the socket: the first `n` bytes of `chunk`, which is only valid during the call. */
  read(chunk: Buffer, n: number): void {
    if (this.st.attempt !== this) return;
    if (!this.inBody) {
      const rest = this.readHead(chunk.subarray(0, n));
      if (rest === undefined || rest.length === 0 || this.st.attempt !== this) return;
      chunk = rest;
      n = rest.length;
    }
    // After the head: body bytes that came with it are received once the stream is open.
    const at = performance.now();
    switch (this.framing) {
      case 'close':
        return this.data(chunk, at, n);
      case 'length': {
        const take = Math.min(this.left, n);
        this.left -= take;
        this.data(chunk, at, take);
        if (this.left === 0) this.end(this.cleanEnd());
        return;
      }
      case 'chunked': {
        const chunked = this.chunked!;
        this.at = at;
        chunked.decode(n === chunk.length ? chunk : chunk.subarray(0, n), this);
        if (chunked.done) this.end(this.cleanEnd());
        else if (chunked.failed) this.end('bad-response');
        return;
      }
    }
  }

  /** ChunkSink: one piece of a chunk's payload. */
  chunk(payload: Buffer): void {
    this.data(payload, this.at);
  }

  /** Collects the head; once complete, opens (or refuses) and returns the body bytes that came with it. */
  private readHead(chunk: Buffer): Buffer | undefined {
    const got = this.head.read(chunk);
    if (got === 'more') return undefined;
    if (got === 'bad-response') return void this.end('bad-response');
    const { head, rest } = got;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.start(head.status, head.headers);
    if (this.st.attempt !== this) return undefined;
    this.inBody = true;
    this.framing = framingOf(head.headers);
    if (this.framing === 'chunked') this.chunked = new ChunkedDecoder();
    if (this.framing === 'length') {
      this.left = Number(head.headers['content-length']);
      if (!Number.isSafeInteger(this.left) || this.left < 0) return void this.end('bad-response');
      if (this.left === 0) return void this.end(this.cleanEnd());
    }
    const idle = this.options.idleTimeoutMs;
    if (idle > 0) {
      this.socket.setTimeout(idle);
      this.socket.on('timeout', onIdle);
    }
    return rest;
  }

  socketFailed(err: Error): void {
    this.socketError ??= errorCode(err);
  }

  /** The socket is gone: a stream that ends at close ended cleanly, any other was cut. */
  closed(): void {
    const clean = this.inBody && (this.framing === 'close' || this.st.closeReason !== undefined);
    this.end(this.socketError ?? (clean ? this.cleanEnd() : 'socket-closed'));
  }

  /** The attempt ends by itself with `cause` (reported), unless it is no longer the connection's live one. */
  end(cause: string): void {
    const st = this.st;
    if (st.attempt !== this) return;
    this.drop();
    st.transport.finish(st, this, this.socketError ?? cause);
  }

  /** AttemptControl: the transport has detached this attempt and reports for it. */
  abort(_reason: Error): void {
    this.drop();
  }

  pause(): void {
    this.paused = true;
    this.socket.pause();
    if (this.options.idleTimeoutMs > 0) this.socket.setTimeout(0);
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
    if (this.options.idleTimeoutMs > 0 && this.inBody) this.socket.setTimeout(this.options.idleTimeoutMs);
  }

  private drop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.socket.destroy();
  }
}
