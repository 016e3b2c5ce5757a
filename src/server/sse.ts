/**
 * `GET /events`: Server-Sent Events. The response is written without chunked encoding (the stream ends when the
 * connection closes), straight to the socket once the head is out, and the part of a notification frame that is the
 * same for every subscriber is encoded once per event; only the `id:` line (the cursor) differs per connection.
 * Before/after figures: BENCHMARKS.md.
 */
import type { ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { EVENT, SLOW_CONSUMER_REASON } from '../protocol/events.js';
import type { StreamEvent } from './brokers/broker.js';
import { writeHeld } from './held-write.js';
import { httpDate } from './http-error.js';
import { Subscriber, type InitPayload, type SubscriberOptions } from './subscriber.js';

const HEARTBEAT = ':hb\n\n';
const SENT_HEAD = 'HTTP/1.1 200 OK\r\n\r\n';

/** `event: notification` + `data:` + `id: ` prefix of an event's frame, encoded once and shared by every subscriber. */
const framePrefix = new WeakMap<StreamEvent, Buffer>();
function sharedFrame(ev: StreamEvent): Buffer {
  let b = framePrefix.get(ev);
  if (b === undefined) framePrefix.set(ev, (b = Buffer.from(`event: ${EVENT.notification}\ndata: ${ev.json}\nid: `)));
  return b;
}
const SLOW_CLOSE = `event: ${EVENT.close}\ndata: ${JSON.stringify({ reason: SLOW_CONSUMER_REASON })}\n\n`;
/** How long a cut connection may take to read what it was still owed, up to its close note. */
export const SLOW_CUT_GRACE_MS = 10_000;

export const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
  'Access-Control-Allow-Origin': '*',
};

/** The head on a front-door socket (front-door.ts), as node:http wrote it: SSE_HEADERS, Date, `Connection: close`. */
const RAW_HEAD_FIELDS = Object.entries(SSE_HEADERS)
  .map(([k, v]) => `${k}: ${v}\r\n`)
  .join('');

export class SseSubscriber extends Subscriber {
  readonly transport = 'sse' as const;
  /**
   * Set when the head is on the wire and the socket is this response's alone: node:http has let go of it (see
   * `detach`), writes go straight to it and its close ends the subscription.
   */
  private readonly socket: Socket | undefined;
  /** The HTTP/1.1 socket, corked around grouped writes; undefined over HTTP/2. */
  private readonly corkable: Socket | undefined;
  /** The response, while the stream goes through it (HTTP/2, or a socket shared with a pipelined response). */
  private readonly res: ServerResponse | undefined;

  /**
   * `res`: node:http's response; or the raw socket of a request the front door took (front-door.ts), which already
   * has an 'error' listener that destroys it.
   */
  constructor(user: string | undefined, options: SubscriberOptions, res: ServerResponse | Socket, retryMs: number) {
    super(user, options);
    if (res instanceof Socket) {
      this.socket = this.corkable = res;
      res.setNoDelay(true);
      res.setKeepAlive(true, 30_000);
      res.on('end', endSocket);
      res.on('close', () => this.finish('client'));
      writeHeld(res, `HTTP/1.1 200 OK\r\n${RAW_HEAD_FIELDS}Date: ${httpDate()}\r\nConnection: close\r\n\r\nretry: ${retryMs}\n\n`);
      // What a client sends on a stream is not looked at; read so that its end and close are seen.
      res.resume();
      return;
    }
    // No Content-Length and no chunking: the body is the stream, delimited by the connection's close.
    res.useChunkedEncodingByDefault = false;
    res.writeHead(200, SSE_HEADERS);
    // Over HTTP/2 (the compatibility API) the socket is the session's, shared by every stream: writes, flow control
    // and the send-buffer figures are the stream's, through res; cork would hold up the other streams.
    const h2 = res.req.httpVersionMajor === 2;
    const socket = res.socket!;
    if (!h2) {
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
    }
    res.write(`retry: ${retryMs}\n\n`);
    this.corkable = h2 ? undefined : socket;
    // A socket still owned by an earlier pipelined response, or bytes still held by res, would interleave: then
    // everything goes through res.
    if (!h2 && (socket as Socket & { _httpMessage?: unknown })._httpMessage === res && res.writableLength === socket.writableLength && detach(socket, res)) {
      this.socket = socket;
      // Module-level listeners and `on` ('end' and 'close' come once): no closure or once-wrapper per connection.
      socket.on('error', destroySocket);
      // A client that half-closes is done reading as far as a stream is concerned.
      socket.on('end', endSocket);
      socket.on('close', () => this.finish('client'));
      return;
    }
    this.res = res;
    // The head is on the wire now; node:http keeps it only to know that it was sent, as a rope of ~25 string pieces
    // (~0.9 KB a connection for the stream's life). A short flat string says the same.
    if (!h2) (res as ServerResponse & { _header: string })._header = SENT_HEAD;
    res.on('close', () => this.finish('client'));
  }

  private write(data: string | Buffer): void {
    this.emit(data);
  }

  protected override writeNow(frame: string | Buffer): void {
    (this.socket ?? this.res!).write(frame);
  }

  protected override socketBuffered(): number {
    return (this.socket ?? this.res!).writableLength;
  }

  protected override onceDrained(fn: () => void): void {
    (this.socket ?? this.res!).once('drain', fn);
  }

  protected override corkableSocket(): Socket | undefined {
    return this.corkable;
  }

  sendInit(p: InitPayload): void {
    this.write(`id: ${p.cursor}\nevent: ${EVENT.init}\ndata: ${JSON.stringify(p)}\n\n`);
  }

  sendReset(reason: string, givenCursor: string): void {
    this.write(`event: ${EVENT.reset}\ndata: ${JSON.stringify({ reason, cursor: givenCursor })}\n\n`);
  }

  sendOne(ev: StreamEvent, cursor: string): void {
    // One Buffer, one write: the shared prefix copied, the cursor appended (ASCII).
    const prefix = sharedFrame(ev);
    const frame = Buffer.allocUnsafe(prefix.length + cursor.length + 2);
    prefix.copy(frame, 0);
    frame.write(cursor, prefix.length, 'latin1');
    frame[frame.length - 2] = 10;
    frame[frame.length - 1] = 10;
    this.write(frame);
  }

  sendBatch(events: StreamEvent[], cursor: string): void {
    let data = '[';
    for (let i = 0; i < events.length; i++) data += (i ? ',' : '') + events[i]!.json;
    this.write(`id: ${cursor}\nevent: ${EVENT.batch}\ndata: ${data}]\n\n`);
  }

  sendRead(id: string, readAt: string): void {
    this.write(`event: ${EVENT.read}\ndata: ${JSON.stringify({ id, readAt })}\n\n`);
  }

  heartbeat(): void {
    this.write(HEARTBEAT);
  }

  shutdown(retryMs: number): void {
    if (this.closed) return;
    (this.socket ?? this.res!).end(`retry: ${retryMs}\n\n`);
    this.finish('shutdown');
  }

  /**
   * The note follows only what the socket already holds (at most ~64 KB plus the kernel's buffer; the outbox was
   * dropped), so a client that reads again within SLOW_CUT_GRACE_MS reads why it was cut. One that never reads gets
   * nothing more: the socket is destroyed then.
   */
  protected closeSlow(): void {
    if (this.closed) return;
    // HTTP/2: the stream, not the session's socket that other subscribers share.
    const socket = this.socket ?? (this.res as ServerResponse & { stream?: { destroy(): void } }).stream ?? this.res!.socket;
    this.finish('slow-consumer');
    (this.socket ?? this.res!).end(SLOW_CLOSE);
    setTimeout(() => socket?.destroy(), SLOW_CUT_GRACE_MS).unref();
  }
}

function destroySocket(this: Socket): void {
  this.destroy();
}

/** Unless ours is already ended (a shutdown or a slow-consumer cut): end() again would build an error (~15 us). */
function endSocket(this: Socket): void {
  if (!this.writableEnded) this.end();
}

/** node:http's listeners on a connection it parses, by name (Node 20's lib/_http_server.js). */
const HTTP_LISTENERS = new Set([
  'bound socketOnData',
  'bound socketOnEnd',
  'bound socketOnClose',
  'bound socketOnDrain',
  'socketOnError',
  'socketOnTimeout',
  'onSocketPause',
  'onSocketResume',
]);

interface ParsedSocket extends Socket {
  parser?: { _consumed?: boolean; unconsume(): void; remove?(): void; close?(): void; socket: unknown; incoming: unknown; onIncoming: unknown } | null;
}

/**
 * Takes an SSE stream's connection out of node:http, as node:http does itself for an upgrade: its listeners and HTTP
 * parser are released and the response detached, so the IncomingMessage, the ServerResponse, the parser and a dozen
 * bound listeners (~5 KB a connection) are not kept for the stream's life. Nothing more is read as HTTP on it; its
 * close, end and errors are the subscriber's from now on. False (nothing changed) when node:http's listeners are
 * not the ones this Node version is known to add.
 */
function detach(socket: ParsedSocket, res: ServerResponse): boolean {
  // Another Node whose listeners are named otherwise: a parser-less socketOnData would throw on the next byte, so the
  // stream stays with node:http (and costs its ~5 KB).
  if (!socket.listeners('data').every((fn) => HTTP_LISTENERS.has(fn.name))) return false;
  for (const ev of ['data', 'end', 'close', 'drain', 'error', 'timeout', 'pause', 'resume'])
    for (const fn of socket.listeners(ev)) if (HTTP_LISTENERS.has(fn.name)) socket.removeListener(ev, fn as (...a: unknown[]) => void);
  res.detachSocket(socket);
  const parser = socket.parser;
  socket.parser = null;
  if (parser) {
    if (parser._consumed) parser.unconsume();
    parser._consumed = false;
    parser.socket = parser.incoming = parser.onIncoming = null;
    // Out of the server's list of connections that headersTimeout / requestTimeout watch, then freed once this
    // stack (which may be the parser's own) has unwound.
    parser.remove?.();
    setImmediate(() => parser.close?.());
  }
  // The socket reads again (node:http's parser read it until now): what a client sends on a stream is not looked at.
  socket.resume();
  return true;
}
