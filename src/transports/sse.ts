/**
 * SSE subscriber connections: undici `dispatch` (raw Buffers, measured cheaper than body streams in PERF-NOTES)
 * on one `Client` per connection (see undici-client.ts), feeding one eventsource-parser per connection.
 */
import type { Socket } from 'node:net';
import { buildConnector, Client, type Dispatcher } from 'undici';
import { createParser, type EventSourceMessage, type EventSourceParser } from 'eventsource-parser';
import { errorCode, retryAfterMs, slug } from './codes.js';
import { isObject, unreadCount } from './json.js';
import { ProbeScanner } from './probe-scan.js';
import { GenericDecoder, type Receiver } from './decode-generic.js';
import { resumeWith, subscribeRequest, type SubscribeRequest } from './target-url.js';
import { clientFor, dropClient, UndiciTransport } from './undici-client.js';
import type { H2Sessions } from './h2-sessions.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  type ReceivedNotification,
  type SubscribeTarget,
  type Transport,
  type TransportOptions,
  type TransportSink,
} from './transport.js';
import { completeLength } from './utf8.js';
import { EVENT, SSE_EVENT_NAMES } from '../protocol/events.js';

const kConn = Symbol('notify.sse.conn');
type TaggedSocket = Socket & { [kConn]?: SseConn };

/** Per-connection state; lives as long as the connection number is in use. */
class SseConn implements Receiver {
  cursor: string | undefined;
  retryMs: number | undefined;
  /** The live attempt; callbacks of any other attempt are stale and ignored. */
  attempt: SseAttempt | undefined;
  /** The attempt whose bytes the parser is being fed right now (events of an attempt aborted mid-chunk drop). */
  feeding: SseAttempt | undefined;
  client: Client | undefined;
  clientKey = '';
  socket: Socket | undefined;
  /** Set by the socket's own error: undici ends a read-until-close body on ECONNRESET as if it were clean. */
  socketError: string | undefined;
  closeReason: string | undefined;
  /** Bytes of a UTF-8 character cut by a chunk boundary. */
  held: Buffer | undefined;
  /** Receive time of the chunk being parsed. */
  at = 0;
  readonly parser: EventSourceParser;

  /** The decoder's view: events of the attempt being fed count only while it is the live one. */
  live(): boolean {
    return this.feeding !== undefined && this.attempt === this.feeding;
  }

  constructor(
    readonly transport: SseTransport,
    readonly conn: number,
  ) {
    // Two closures per connection, made once; the per-message path allocates none.
    this.parser = createParser({
      onEvent: (ev) => transport.onEvent(this, ev),
      onRetry: (ms) => {
        this.retryMs = ms;
      },
      // A line that is no SSE field (`event:`, `data:`, `id:`, `retry:`, a `:` comment) is not the protocol.
      onError: (err) => {
        if (err.type === 'unknown-field' && this.feeding !== undefined && this.attempt === this.feeding) transport.sink.unparsable?.(conn);
      },
    });
  }
}

function onSocketError(this: TaggedSocket, err: NodeJS.ErrnoException): void {
  const st = this[kConn];
  // Our own destroy() reports undici's informational error; only the network's errors are a cause.
  if (st !== undefined && st.socket === this && typeof err.code === 'string' && !err.code.startsWith('UND_ERR')) {
    st.socketError = err.code;
  }
}

/** What the transport does to an attempt in flight: undici's controller (HTTP/2) or the HTTP/1.1 attempt itself. */
interface AttemptControl {
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

/**
 * One request. Methods, not closures, so an attempt costs one small object. The protocol handling is here; the
 * subclasses only adapt undici's two handler interfaces to it.
 */
abstract class SseAttempt {
  controller: AttemptControl | undefined;
  opened = false;

  constructor(readonly st: SseConn) {}

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

  data(chunk: Buffer): void {
    const st = this.st;
    if (st.attempt !== this) return;
    st.at = performance.now();
    let buf = chunk;
    if (st.held !== undefined) {
      buf = Buffer.concat([st.held, chunk]);
      st.held = undefined;
    }
    const end = completeLength(buf);
    if (end !== buf.length) st.held = Buffer.from(buf.subarray(end));
    st.feeding = this;
    st.parser.feed(buf.toString('utf8', 0, end));
    st.feeding = undefined;
    // Aborted (or reopened) from inside a sink call: the rest of this chunk must not leak into the next stream.
    if (st.attempt !== this) st.parser.reset();
  }

  end(): void {
    const st = this.st;
    if (st.attempt !== this) return;
    const cause = st.socketError ?? (st.closeReason !== undefined ? `close-${slug(st.closeReason)}` : 'server-closed');
    st.transport.finish(st, this, cause);
  }

  fail(err: Error): void {
    const st = this.st;
    if (st.attempt !== this) return;
    st.transport.finish(st, this, st.socketError ?? errorCode(err));
  }
}

/** Over HTTP/2 sessions (h2-sessions.ts), which speak undici's controller interface. */
class SseH2Attempt extends SseAttempt implements Dispatcher.DispatchHandler {
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    this.start(status, headers);
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.data(chunk);
  }

  onResponseEnd(): void {
    this.end();
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.fail(err);
  }
}

/**
 * On an undici Client, through its core handler interface (onConnect, onHeaders, onData, ...), as undici itself
 * runs every handler: one with `onRequestStart` gets wrapped in undici's UnwrapHandler and UnwrapController, a layer
 * of calls and private-field reads on every chunk. The attempt is its own controller, as UnwrapController would be.
 */
class SseH1Attempt extends SseAttempt implements AttemptControl {
  private abortRequest: ((err?: Error) => void) | undefined;
  private resumeReading: (() => void) | undefined;
  private paused = false;
  private aborted = false;

  onConnect(abort: (err?: Error) => void): void {
    this.abortRequest = abort;
    this.controller = this;
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    this.resumeReading = resume;
    // The two headers start() reads, as undici's parseHeaders gives them (latin1; a repeated one as an array).
    const headers: Record<string, string | string[]> = {};
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!.toString('latin1').toLowerCase();
      if (name !== 'content-type' && name !== 'retry-after') continue;
      const value = raw[i + 1]!.toString('latin1');
      const had = headers[name];
      headers[name] = had === undefined ? value : typeof had === 'string' ? [had, value] : [...had, value];
    }
    this.start(status, headers);
    return !this.paused;
  }

  onData(chunk: Buffer): boolean {
    this.data(chunk);
    return !this.paused;
  }

  onComplete(): void {
    this.end();
  }

  onError(err: Error): void {
    this.fail(err);
  }

  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortRequest?.(reason);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.resumeReading?.();
  }
}

export class SseTransport extends UndiciTransport<SseConn> implements Transport {
  readonly name = 'sse' as const;
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly connector: buildConnector.connector;
  /** Set with `probeOnly` (notify dialect only). */
  private readonly scanner: ProbeScanner | undefined;
  /** Set with `generic`: a target profile's server, whose events are searched for probes. */
  private readonly generic: GenericDecoder | undefined;
  /** Set with `h2`: streams over shared HTTP/2 sessions instead of a Client per connection. */
  private readonly h2: H2Sessions | undefined;

  constructor(
    readonly sink: TransportSink,
    options: TransportOptions = {},
  ) {
    super();
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 0;
    this.generic = options.generic ? new GenericDecoder(sink, options.generic) : undefined;
    this.scanner = options.probeOnly && !this.generic ? new ProbeScanner() : undefined;
    this.connector = buildConnector({ timeout: this.connectTimeoutMs, rejectUnauthorized: !options.insecureTls });
    this.h2 = options.h2;
  }

  open(conn: number, target: SubscribeTarget, cursor?: string): void {
    const st = this.connFor(conn, () => new SseConn(this, conn));
    st.parser.reset();
    st.held = undefined;
    st.closeReason = undefined;
    st.socketError = undefined;
    let req: SubscribeRequest;
    let client: Client | undefined;
    const resume = resumeWith(target, cursor, 'last-event-id');
    try {
      req = subscribeRequest(target, '/events', resume.query ? [resume.query] : []);
      if (this.h2 === undefined) client = clientFor(st, req.origin, target.localAddress, this.createClient);
      else if (!/^https?:\/\//.test(req.origin)) throw new Error('bad-url');
    } catch {
      // A target that is not an http(s) URL: reported like any failed attempt rather than thrown into a timer.
      return this.sink.error(conn, 'bad-url');
    }
    req.headers.accept = 'text/event-stream';
    req.headers['cache-control'] = 'no-cache';
    if (resume.header !== undefined) req.headers['last-event-id'] = resume.header;
    if (cursor !== undefined) st.cursor = cursor;
    if (client !== undefined) {
      const attempt = new SseH1Attempt(st);
      st.attempt = attempt;
      // The core handler interface on purpose: see SseH1Attempt.
      client.dispatch({ path: req.path, method: 'GET', headers: req.headers }, attempt as Dispatcher.DispatchHandler);
    } else {
      const attempt = new SseH2Attempt(st);
      st.attempt = attempt;
      const timeouts = { headersTimeoutMs: this.connectTimeoutMs, bodyTimeoutMs: this.idleTimeoutMs };
      this.h2!.dispatch(req.origin, target.localAddress, { path: req.path, method: 'GET', headers: req.headers, ...timeouts }, attempt);
    }
  }

  /** Event dispatch: the hot path. */
  onEvent(st: SseConn, ev: EventSourceMessage): void {
    const attempt = st.feeding;
    if (attempt === undefined || st.attempt !== attempt) return;
    if (this.generic !== undefined) return this.generic.sse(st, ev.event, ev.data, ev.id, st.at);
    if (this.scanner !== undefined && this.probesOnly(st, attempt, ev)) return;
    const sink = this.sink;
    let body: unknown;
    try {
      body = JSON.parse(ev.data);
    } catch {
      if (SSE_EVENT_NAMES.has(ev.event ?? '')) this.badEvent(st, attempt);
      // Unnamed events are where a server's stray text lands; other names are some other protocol's business.
      else if (ev.event === undefined || ev.event === '' || ev.event === 'message') sink.unparsable?.(st.conn);
      return;
    }
    if (ev.id !== undefined && ev.id !== '') st.cursor = ev.id;
    switch (ev.event) {
      case EVENT.notification:
        if (!isObject(body)) return this.badEvent(st, attempt);
        sink.notification(st.conn, body as ReceivedNotification, ev.id, st.at);
        return;
      case EVENT.batch: {
        if (!Array.isArray(body)) return this.badEvent(st, attempt);
        const last = body.length - 1;
        for (let i = 0; i <= last && st.attempt === attempt; i++) {
          sink.notification(st.conn, body[i] as ReceivedNotification, i === last ? ev.id : undefined, st.at);
        }
        return;
      }
      case EVENT.init: {
        if (!isObject(body)) return this.badEvent(st, attempt);
        const cursor = typeof body.cursor === 'string' ? body.cursor : ev.id;
        if (cursor === undefined) return this.badEvent(st, attempt);
        st.cursor = cursor;
        sink.init(st.conn, cursor, unreadCount(body));
        return;
      }
      case EVENT.reset:
        sink.reset(st.conn, isObject(body) && typeof body.reason === 'string' ? body.reason : 'unknown');
        return;
      case EVENT.read:
        if (isObject(body) && typeof body.id === 'string') {
          sink.read?.(st.conn, body.id, typeof body.readAt === 'string' ? body.readAt : undefined);
        }
        return;
      case EVENT.close:
        st.closeReason = isObject(body) && typeof body.reason === 'string' ? body.reason : 'unknown';
        return;
      default:
        // Unknown event names are ignored, as EventSource does, so newer servers do not break older swarms.
        return;
    }
  }

  /** `probeOnly`: delivers a notification event by its probes alone; false when it must be parsed in full. */
  private probesOnly(st: SseConn, attempt: SseAttempt, ev: EventSourceMessage): boolean {
    if (ev.event === EVENT.notification) {
      const probe = this.scanner!.notification(ev.data);
      if (probe === undefined) return false;
      if (ev.id !== undefined && ev.id !== '') st.cursor = ev.id;
      this.sink.notification(st.conn, { data: { probe } }, ev.id, st.at);
      return true;
    }
    if (ev.event === EVENT.batch) {
      const probes = this.scanner!.list(ev.data);
      if (probes === undefined) return false;
      if (ev.id !== undefined && ev.id !== '') st.cursor = ev.id;
      const last = probes.length - 1;
      for (let i = 0; i <= last && st.attempt === attempt; i++) {
        this.sink.notification(st.conn, { data: { probe: probes[i] } }, i === last ? ev.id : undefined, st.at);
      }
      return true;
    }
    return false;
  }

  /** @public Pausable (the swarm's `slow` phase calls it through isPausable). */
  pause(conn: number): boolean {
    const attempt = this.conns.get(conn)?.attempt;
    if (attempt?.controller === undefined || !attempt.opened) return false;
    attempt.controller.pause();
    return true;
  }

  /** @public Pausable. */
  resume(conn: number): void {
    this.conns.get(conn)?.attempt?.controller?.resume();
  }

  /** The server answered but not with a stream: drop the response, report the attempt failed. */
  refuse(st: SseConn, code: string, retryMs?: number): void {
    const attempt = st.attempt!;
    st.attempt = undefined;
    attempt.controller?.abort(new Error(code));
    this.sink.error(st.conn, code, retryMs);
  }

  finish(st: SseConn, attempt: SseAttempt, cause: string): void {
    st.attempt = undefined;
    if (attempt.opened) this.sink.closed(st.conn, cause, st.retryMs);
    else this.sink.error(st.conn, cause);
  }

  private badEvent(st: SseConn, attempt: SseAttempt): void {
    st.attempt = undefined;
    attempt.controller?.abort(new Error('bad-event'));
    this.sink.closed(st.conn, 'bad-event', st.retryMs);
  }

  /** Client-side end: detach first so undici's callbacks for this attempt are ignored, then drop the socket. */
  protected stop(st: SseConn, cause: 'aborted' | 'client-closed', release: boolean): void {
    const attempt = st.attempt!;
    st.attempt = undefined;
    st.socket = undefined;
    // Before undici has started the request there is no controller; destroying the client drops the connect.
    if (release || attempt.controller === undefined) dropClient(st);
    else attempt.controller.abort(new Error(cause));
    if (attempt.opened) this.sink.closed(st.conn, cause, st.retryMs);
    else this.sink.error(st.conn, cause);
  }

  /** Tags each socket with its connection so a reset can be told from a clean end (see SseConn.socketError). */
  private readonly createClient = (st: SseConn, origin: string, localAddress: string | undefined): Client => {
    const base = this.connector;
    const connect: buildConnector.connector = (opts, callback) =>
      base(opts, (err, socket) => {
        if (socket) {
          (socket as TaggedSocket)[kConn] = st;
          st.socket = socket;
          socket.on('error', onSocketError);
        }
        (callback as (e: Error | null, s: Socket | null) => void)(err, socket);
      });
    return new Client(origin, { connect, localAddress, headersTimeout: this.connectTimeoutMs, bodyTimeout: this.idleTimeoutMs });
  };
}
