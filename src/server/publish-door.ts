/**
 * Publishers' keep-alive connections served on their raw sockets, from a first `POST /publish` the front door read
 * (front-door.ts). Each request is read with the front door's head reader and its Content-Length, answered in order,
 * one at a time, with what node:http would have sent (the same status, headers and keep-alive). The first request
 * that is not such a publish (another route or method, a chunked body, `Connection: close`, a head cut across reads,
 * a body past --max-body) hands the connection, with every byte it sent that was not answered, to node:http.
 *
 * Why: at a publisher's pace (a request every few ms) node:http's own JavaScript per request cost more CPU than the
 * whole of nginx's publish (nchan). Figures: BENCHMARKS.md.
 */
import type { Socket } from 'node:net';
import { readHead, type RawRequest } from './front-door.js';
import { jsonHead } from './http-error.js';

/** What a publish is answered: a status, a JSON body, the route's own headers. */
export interface PublishAnswer {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

export interface PublishDoorOptions {
  /** The request-target path served here, e.g. `/publish`. */
  path: string;
  /** --max-body: a larger body is node:http's to refuse (413). */
  maxBody: number;
  /** node:http's keepAliveTimeout: a connection idle this long is closed. */
  keepAliveMs: number;
  /** node:http's requestTimeout: a body not in by then is answered 408 and the connection closed. */
  requestTimeoutMs: number;
  /** Answers one request (its head and whole body); never rejects (errors are answers too). */
  answer(req: RawRequest, body: Buffer): Promise<PublishAnswer>;
  /** What node:http's `clientError` is answered for `err` (a body cut by EOF, or not in by requestTimeoutMs). */
  refused(err: NodeJS.ErrnoException): PublishAnswer;
}

export interface PublishDoor {
  /**
   * Serves the connection from `req` on and returns true, or returns false (not a publish served here; the caller
   * hands it on). `toHttp` gives it to node:http with the bytes not answered.
   */
  take(req: RawRequest, socket: Socket, rest: Buffer, toHttp: (unread: Buffer) => void): boolean;
  /** Closes the connections that wait for a request; the others once their answer is written (shutdown). */
  closeIdle(): void;
}

const EMPTY = Buffer.alloc(0);
/** The errors node:http's parser raises for the same two cases. */
const nodeError = (code: string, message: string): NodeJS.ErrnoException => Object.assign(new Error(message), { code });

export function publishDoor(options: PublishDoorOptions): PublishDoor {
  const open = new Set<PublishConnection>();
  return {
    take(req, socket, rest, toHttp) {
      if (!serves(options, req)) return false;
      const conn = new PublishConnection(options, socket, toHttp, open);
      open.add(conn);
      conn.start(req, rest);
      return true;
    },
    closeIdle() {
      for (const conn of open) conn.closeWhenIdle();
    },
  };
}

function serves(options: PublishDoorOptions, req: RawRequest): boolean {
  return req.method === 'POST' && req.path === options.path && req.contentLength <= options.maxBody;
}

class PublishConnection {
  /** Bytes read and not yet answered. */
  private pending: Buffer = EMPTY;
  /** The request whose body is awaited, if any. */
  private req: RawRequest | undefined;
  /** An answer is being made: what comes meanwhile waits in `pending`, so answers go out in order. */
  private busy = false;
  private closing = false;
  /** The publisher half-closed: node:http can no longer be handed the connection (its bytes cannot be put back). */
  private ended = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onData = (chunk: Buffer) => {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.pump();
  };
  private readonly onClose = () => this.forget();
  /** The publisher is done sending: what it sent is answered (a body cut short as node:http does), then it closes. */
  private readonly onEnd = () => {
    this.closing = true;
    this.ended = true;
    if (this.idle()) this.socket.end();
    else if (!this.busy && this.req !== undefined) this.refuse(nodeError('HPE_INVALID_EOF_STATE', 'the body ended early'));
  };

  constructor(
    private readonly options: PublishDoorOptions,
    private readonly socket: Socket,
    private readonly toHttp: (unread: Buffer) => void,
    private readonly open: Set<PublishConnection>,
  ) {}

  start(req: RawRequest, rest: Buffer): void {
    this.req = req;
    this.pending = rest;
    this.socket.on('data', this.onData);
    this.socket.on('end', this.onEnd);
    this.socket.on('close', this.onClose);
    this.pump();
  }

  closeWhenIdle(): void {
    this.closing = true;
    if (this.idle()) this.socket.destroy();
  }

  private idle(): boolean {
    return !this.busy && this.req === undefined && this.pending.length === 0;
  }

  /** Answers what `pending` holds, in order, until it needs more bytes or an answer is being made. */
  private pump(): void {
    while (!this.busy && !this.socket.destroyed) {
      if (this.req === undefined) {
        if (this.pending.length === 0) {
          this.arm(this.options.keepAliveMs);
          return;
        }
        const got = readHead(this.pending);
        if (got === undefined || !serves(this.options, got.req)) {
          // After its EOF: answered as node:http answers a request cut by one (a whole request of another kind too).
          if (this.ended) return this.refuse(nodeError('HPE_INVALID_EOF_STATE', 'the request ended early'));
          return this.handOver();
        }
        this.req = got.req;
        this.pending = got.rest;
      }
      const length = this.req.contentLength;
      if (this.pending.length < length) {
        this.arm(this.options.requestTimeoutMs);
        return;
      }
      const req = this.req;
      const body = this.pending.subarray(0, length);
      this.pending = this.pending.subarray(length);
      this.req = undefined;
      this.busy = true;
      this.arm(0);
      void this.options.answer(req, body).then((answer) => this.respond(answer));
    }
  }

  private respond(answer: PublishAnswer): void {
    this.busy = false;
    if (this.socket.destroyed) return;
    const text = JSON.stringify(answer.body);
    const close = this.closing && this.pending.length === 0;
    this.socket.write(jsonHead(answer.status, text, answer.headers, close ? undefined : this.options.keepAliveMs) + text);
    if (close) this.socket.end();
    else this.pump();
  }

  /** (Re)starts the one timer: idle for a request (keep-alive), or waiting for a body; 0 stops it. */
  private arm(ms: number): void {
    clearTimeout(this.timer);
    this.timer = ms > 0 ? setTimeout(() => this.timedOut(), ms).unref() : undefined;
  }

  private timedOut(): void {
    if (this.req === undefined) this.socket.destroy();
    else this.refuse(nodeError('ERR_HTTP_REQUEST_TIMEOUT', 'the request did not arrive in time'));
  }

  /** The awaited body will not come whole: answered as node:http answers the same, and the connection closed. */
  private refuse(err: NodeJS.ErrnoException): void {
    this.arm(0);
    this.req = undefined;
    this.pending = EMPTY;
    this.closing = true;
    this.respond(this.options.refused(err));
  }

  private handOver(): void {
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('end', this.onEnd);
    this.forget();
    this.toHttp(this.pending);
  }

  private forget(): void {
    this.socket.removeListener('close', this.onClose);
    this.arm(0);
    this.open.delete(this);
  }
}
