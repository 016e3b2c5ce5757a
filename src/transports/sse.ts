/**
 * SSE subscriber connections. HTTP/1.1 (the default, http:// and https://): a socket per connection, the HTTP
 * written and parsed by hand (sse-http1.ts), measured cheaper than undici's per-connection Client. `--http2`:
 * streams over shared sessions (h2-sessions.ts) through undici's dispatch interface. Either way the body bytes feed
 * one SSE parser per connection (sse-parser.ts, sse-attempt.ts), whose events are dispatched here.
 */
import type { Dispatcher } from 'undici';
import { errorCode } from './codes.js';
import { isObject, unreadCount } from './json.js';
import { ProbeScanner } from './probe-scan.js';
import { GenericDecoder } from './decode-generic.js';
import { requestHead } from './http1-wire.js';
import { resumeWith, subscribeRequest, type SubscribeRequest } from './target-url.js';
import { ConnTransport } from './undici-client.js';
import { SseAttempt, SseConn, type SseHost } from './sse-attempt.js';
import { SseSocketAttempt, type Http1Timeouts } from './sse-http1.js';
import type { H2Sessions } from './h2-sessions.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  type ReceivedNotification,
  type SubscribeTarget,
  type Transport,
  type TransportOptions,
  type TransportSink,
} from './transport.js';
import { EVENT, SSE_EVENT_NAMES } from '../protocol/events.js';

/** Over HTTP/2 sessions (h2-sessions.ts), which speak undici's controller interface. */
class SseH2Attempt extends SseAttempt implements Dispatcher.DispatchHandler {
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    this.start(status, headers);
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.data(chunk, performance.now());
  }

  onResponseEnd(): void {
    if (this.st.attempt === this) this.st.transport.finish(this.st, this, this.cleanEnd());
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.st.attempt === this) this.st.transport.finish(this.st, this, errorCode(err));
  }
}

export class SseTransport extends ConnTransport<SseConn> implements Transport, SseHost {
  readonly name = 'sse' as const;
  private readonly http1: Http1Timeouts;
  /** Set with `probeOnly` (notify dialect only). */
  private readonly scanner: ProbeScanner | undefined;
  /** Set with `generic`: a target profile's server, whose events are searched for probes. */
  private readonly generic: GenericDecoder | undefined;
  /** Set with `h2`: streams over shared HTTP/2 sessions instead of a socket per connection. */
  private readonly h2: H2Sessions | undefined;

  constructor(
    readonly sink: TransportSink,
    options: TransportOptions = {},
  ) {
    super();
    this.http1 = {
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      idleTimeoutMs: options.idleTimeoutMs ?? 0,
      insecureTls: options.insecureTls ?? false,
    };
    this.generic = options.generic ? new GenericDecoder(sink, options.generic) : undefined;
    this.scanner = options.probeOnly && !this.generic ? new ProbeScanner() : undefined;
    this.h2 = options.h2;
  }

  open(conn: number, target: SubscribeTarget, cursor?: string): void {
    const st = this.connFor(conn, () => new SseConn(this, conn));
    st.reset();
    let req: SubscribeRequest;
    let url: URL;
    const resume = resumeWith(target, cursor, 'last-event-id');
    try {
      req = subscribeRequest(target, '/events', resume.query ? [resume.query] : []);
      url = new URL(req.path, req.origin);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('bad-url');
    } catch {
      // A target that is not an http(s) URL: reported like any failed attempt rather than thrown into a timer.
      return this.sink.error(conn, 'bad-url');
    }
    req.headers.accept = 'text/event-stream';
    req.headers['cache-control'] = 'no-cache';
    if (resume.header !== undefined) req.headers['last-event-id'] = resume.header;
    if (cursor !== undefined) st.cursor = cursor;
    if (this.h2 !== undefined) {
      const attempt = new SseH2Attempt(st);
      st.attempt = attempt;
      const timeouts = { headersTimeoutMs: this.http1.connectTimeoutMs, bodyTimeoutMs: this.http1.idleTimeoutMs };
      this.h2.dispatch(req.origin, target.localAddress, { path: req.path, method: 'GET', headers: req.headers, ...timeouts }, attempt);
      return;
    }
    let head: string;
    try {
      head = requestHead('GET', url, req.headers);
    } catch {
      return this.sink.error(conn, 'bad-header');
    }
    try {
      st.attempt = new SseSocketAttempt(st, url, head, target.localAddress, this.http1);
    } catch (err) {
      // net.connect throws at once on an option it rejects, such as a local address that is not an IP.
      return this.sink.error(conn, errorCode(err));
    }
  }

  /** Event dispatch: the hot path. */
  onEvent(st: SseConn, id: string | undefined, name: string | undefined, data: string): void {
    const attempt = st.feeding;
    if (attempt === undefined || st.attempt !== attempt) return;
    if (this.generic !== undefined) return this.generic.sse(st, name, data, id, st.at);
    if (this.scanner !== undefined && this.probesOnly(st, attempt, id, name, data)) return;
    const sink = this.sink;
    let body: unknown;
    try {
      body = JSON.parse(data);
    } catch {
      if (SSE_EVENT_NAMES.has(name ?? '')) this.badEvent(st, attempt);
      // Unnamed events are where a server's stray text lands; other names are some other protocol's business.
      else if (name === undefined || name === '' || name === 'message') sink.unparsable?.(st.conn);
      return;
    }
    if (id !== undefined && id !== '') st.cursor = id;
    switch (name) {
      case EVENT.notification:
        if (!isObject(body)) return this.badEvent(st, attempt);
        sink.notification(st.conn, body as ReceivedNotification, id, st.at);
        return;
      case EVENT.batch: {
        if (!Array.isArray(body)) return this.badEvent(st, attempt);
        const last = body.length - 1;
        for (let i = 0; i <= last && st.attempt === attempt; i++) {
          sink.notification(st.conn, body[i] as ReceivedNotification, i === last ? id : undefined, st.at);
        }
        return;
      }
      case EVENT.init: {
        if (!isObject(body)) return this.badEvent(st, attempt);
        const cursor = typeof body.cursor === 'string' ? body.cursor : id;
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
  private probesOnly(st: SseConn, attempt: SseAttempt, id: string | undefined, name: string | undefined, data: string): boolean {
    if (name === EVENT.notification) {
      const probe = this.scanner!.notification(data);
      if (probe === undefined) return false;
      if (id !== undefined && id !== '') st.cursor = id;
      this.sink.notification(st.conn, { data: { probe } }, id, st.at);
      return true;
    }
    if (name === EVENT.batch) {
      const probes = this.scanner!.list(data);
      if (probes === undefined) return false;
      if (id !== undefined && id !== '') st.cursor = id;
      const last = probes.length - 1;
      for (let i = 0; i <= last && st.attempt === attempt; i++) {
        this.sink.notification(st.conn, { data: { probe: probes[i] } }, i === last ? id : undefined, st.at);
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

  /** Client-side end: detach first so the attempt's own callbacks are ignored, then drop the request. */
  protected stop(st: SseConn, cause: 'aborted' | 'client-closed'): void {
    const attempt = st.attempt!;
    st.attempt = undefined;
    // Both kinds have their controller from the start (h2-sessions calls onRequestStart within dispatch).
    attempt.controller?.abort(new Error(cause));
    if (attempt.opened) this.sink.closed(st.conn, cause, st.retryMs);
    else this.sink.error(st.conn, cause);
  }

  protected release(all: SseConn[]): Promise<void> {
    for (const st of all) {
      const attempt = st.attempt;
      st.attempt = undefined;
      attempt?.controller?.abort(new Error('client-closed'));
    }
    return Promise.resolve();
  }
}
