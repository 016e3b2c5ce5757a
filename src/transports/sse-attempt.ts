/**
 * What the SSE transport's two ways of carrying a stream share: the per-connection state (cursor, retry, the
 * connection's SSE parser) and one request's protocol handling (status and content type, body bytes to
 * events, how it ended). HTTP/1.1 attempts run on a socket of their own (sse-http1.ts); HTTP/2 ones on shared
 * sessions (sse.ts, h2-sessions.ts).
 */
import { retryAfterMs, slug } from './codes.js';
import type { Receiver } from './decode-generic.js';
import { SseParser, type SseEvents } from './sse-parser.js';
import type { TransportSink } from './transport.js';
import { completeLength } from './utf8.js';

/** What an attempt needs of its transport (SseTransport). */
export interface SseHost {
  readonly sink: TransportSink;
  onEvent(st: SseConn, id: string | undefined, name: string | undefined, data: string): void;
  /** The server answered but not with a stream: drop the response, report the attempt failed. */
  refuse(st: SseConn, code: string, retryMs?: number): void;
  /** The attempt ended by itself: `closed` when it had opened, else `error`. */
  finish(st: SseConn, attempt: SseAttempt, cause: string): void;
}

/** Per-connection state; lives as long as the connection number is in use. It is its parser's sink. */
export class SseConn implements Receiver, SseEvents {
  cursor: string | undefined;
  retryMs: number | undefined;
  /** The live attempt; callbacks of any other attempt are stale and ignored. */
  attempt: SseAttempt | undefined;
  /** The attempt whose bytes the parser is being fed right now (events of an attempt aborted mid-chunk drop). */
  feeding: SseAttempt | undefined;
  closeReason: string | undefined;
  /** Bytes of a UTF-8 character cut by a chunk boundary. */
  held: Buffer | undefined;
  /** Receive time of the chunk being parsed. */
  at = 0;
  readonly parser = new SseParser(this);

  constructor(
    readonly transport: SseHost,
    readonly conn: number,
  ) {}

  /** The decoder's view: events of the attempt being fed count only while it is the live one. */
  live(): boolean {
    return this.feeding !== undefined && this.attempt === this.feeding;
  }

  sseEvent(id: string | undefined, name: string | undefined, data: string): void {
    this.transport.onEvent(this, id, name, data);
  }

  sseRetry(ms: number): void {
    this.retryMs = ms;
  }

  /** A line that is no SSE field is not the protocol. */
  sseUnknownField(): void {
    if (this.live()) this.transport.sink.unparsable?.(this.conn);
  }

  /** A fresh attempt starts from a clean parser. */
  reset(): void {
    this.parser.reset();
    this.held = undefined;
    this.closeReason = undefined;
  }
}

/** What the transport does to an attempt in flight: undici's controller (HTTP/2) or the HTTP/1.1 attempt itself. */
export interface AttemptControl {
  /** Drops the request without reporting anything (the transport has detached the attempt, or reports itself). */
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

/** One request. Methods, not closures, so an attempt costs one small object. */
export abstract class SseAttempt {
  controller: AttemptControl | undefined;
  opened = false;

  constructor(readonly st: SseConn) {}

  /** The response head: a 200 event stream opens, anything else is refused. */
  start(status: number, headers: Record<string, string | string[] | undefined>): void {
    const st = this.st;
    if (st.attempt !== this) return;
    if (status !== 200) return st.transport.refuse(st, `http-${status}`, retryAfterMs(headers['retry-after']));
    const type = headers['content-type'];
    if (typeof type !== 'string' || !type.toLowerCase().startsWith('text/event-stream')) {
      return st.transport.refuse(st, 'bad-content-type');
    }
    this.opened = true;
    st.transport.sink.opened(st.conn, performance.now());
  }

  /**
   * Body bytes (the first `n` of `chunk`) received at `at`. They are decoded before this returns and never kept (a
   * cut UTF-8 character is copied), so `chunk` may be a buffer the caller reuses.
   */
  data(chunk: Buffer, at: number, n = chunk.length): void {
    const st = this.st;
    if (st.attempt !== this) return;
    st.at = at;
    let buf = chunk;
    if (st.held !== undefined) {
      buf = Buffer.concat([st.held, chunk.subarray(0, n)]);
      n = buf.length;
      st.held = undefined;
    }
    const end = completeLength(buf, n);
    if (end !== n) st.held = Buffer.from(buf.subarray(end, n));
    st.feeding = this;
    st.parser.feed(buf.toString('utf8', 0, end));
    st.feeding = undefined;
    // Aborted (or reopened) from inside a sink call: the rest of this chunk must not leak into the next stream.
    if (st.attempt !== this) st.parser.reset();
  }

  /** Why a body that ended cleanly ended: the server's `close` event when it sent one. */
  protected cleanEnd(): string {
    const reason = this.st.closeReason;
    return reason !== undefined ? `close-${slug(reason)}` : 'server-closed';
  }
}
