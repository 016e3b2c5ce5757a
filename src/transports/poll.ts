/**
 * Long-poll subscriber connections: a loop of `GET /poll?cursor=&timeout=` over one keep-alive undici `Client`
 * per connection. A "connection" here is the loop: opened at its first answer, closed when a poll fails.
 *
 * With `generic` (a target profile's server) the loop is a plain `GET <url>`: a 200 body is searched for probes
 * and its `Last-Event-ID` or `Etag` header (else the body's cursor or last id) is the cursor for the next poll; 204,
 * 304 and 408 mean "nothing yet" and poll again. Such servers may hold even the first poll until a message exists
 * (nchan does), so the loop counts as open once its first request is on a connected socket, and a hold has no
 * client-side limit.
 */
import { Client, type Dispatcher } from 'undici';
import { errorCode, retryAfterMs } from './codes.js';
import { isObject, unreadCount } from './json.js';
import { ProbeScanner } from './probe-scan.js';
import { GenericDecoder, type Receiver } from './decode-generic.js';
import { resumeWith, subscribeRequest, type SubscribeRequest } from './target-url.js';
import { clientFor, dropClient, UndiciTransport } from './undici-client.js';
import type { H2Sessions } from './h2-sessions.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_POLL_TIMEOUT_S,
  type ReceivedNotification,
  type SubscribeTarget,
  type Transport,
  type TransportOptions,
  type TransportSink,
} from './transport.js';

class PollConn implements Receiver {
  cursor: string | undefined;
  /** Paused (`pause`): the poll in flight stops reading, and the next one waits for `resume`. */
  paused = false;
  /** The next poll, held while paused. */
  held: (() => void) | undefined;
  /** The poll whose answer is being decoded. */
  answering: PollAttempt | undefined;
  target: SubscribeTarget | undefined;
  /** The poll in flight; callbacks of any other poll are stale and ignored. */
  attempt: PollAttempt | undefined;
  /** Whether this open() has had its first answer. */
  opened = false;
  client: Client | undefined;
  clientKey = '';

  constructor(
    readonly transport: PollTransport,
    readonly conn: number,
  ) {}

  live(): boolean {
    return this.answering !== undefined && this.attempt === this.answering;
  }
}

class PollAttempt implements Dispatcher.DispatchHandler {
  controller: Dispatcher.DispatchController | undefined;
  /** Response head time: what `opened` reports for the first answer. */
  headAt = 0;
  chunks: Buffer[] = [];
  /** Generic: the answer said there is nothing new (204, 304, 408). */
  empty = false;
  /** Generic: the answer's `Last-Event-ID` or `Etag`. */
  headerCursor: string | undefined;

  constructor(
    readonly st: PollConn,
    /** Sent without a cursor, so the answer is a snapshot (`init`). */
    readonly fresh: boolean,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    const st = this.st;
    if (st.attempt === this && !st.opened && st.transport.holdsFirstPoll) st.transport.openedAt(st, performance.now());
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    const st = this.st;
    if (st.attempt !== this) return;
    if (st.transport.holdsFirstPoll && status !== 200) {
      if (status === 204 || status === 304 || status === 408) this.empty = true;
      else return st.transport.fail(st, `http-${status}`, retryAfterMs(headers['retry-after']), true);
    } else if (status !== 200) return st.transport.fail(st, `http-${status}`, retryAfterMs(headers['retry-after']), true);
    this.headAt = performance.now();
    const id = headers['last-event-id'] ?? headers.etag;
    if (typeof id === 'string' && id !== '') this.headerCursor = id;
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.st.attempt === this) this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.st.attempt === this) this.st.transport.answer(this.st, this, performance.now());
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    if (this.st.attempt === this) this.st.transport.fail(this.st, errorCode(err), undefined, false);
  }
}

export class PollTransport extends UndiciTransport<PollConn> implements Transport {
  readonly name = 'poll' as const;
  private readonly connectTimeoutMs: number;
  private readonly pollTimeoutS: number;
  /** Set with `probeOnly` (notify dialect only). */
  private readonly scanner: ProbeScanner | undefined;
  /** Set with `generic`: a target profile's server, whose answers are searched for probes. */
  private readonly generic: GenericDecoder | undefined;
  /** Set with `h2`: polls go as streams over shared HTTP/2 sessions instead of a Client per connection. */
  private readonly h2: H2Sessions | undefined;
  private readonly insecureTls: boolean;

  constructor(
    readonly sink: TransportSink,
    options: TransportOptions = {},
  ) {
    super();
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.pollTimeoutS = options.pollTimeoutS ?? DEFAULT_POLL_TIMEOUT_S;
    this.generic = options.generic ? new GenericDecoder(sink, options.generic) : undefined;
    this.scanner = options.probeOnly && !this.generic ? new ProbeScanner() : undefined;
    this.h2 = options.h2;
    this.insecureTls = options.insecureTls ?? false;
  }

  /** Generic servers may hold the first poll until a message exists: the loop is open once that poll is sent. */
  get holdsFirstPoll(): boolean {
    return this.generic !== undefined;
  }

  openedAt(st: PollConn, at: number): void {
    st.opened = true;
    this.sink.opened(st.conn, at);
  }

  open(conn: number, target: SubscribeTarget, cursor?: string): void {
    const st = this.connFor(conn, () => new PollConn(this, conn));
    st.target = target;
    st.opened = false;
    st.paused = false;
    st.held = undefined;
    if (cursor !== undefined) st.cursor = cursor;
    // A resume asks for an immediate answer (timeout=0) so that `opened` measures the connect, not the hold.
    this.poll(st, cursor, cursor === undefined ? undefined : 0);
  }

  /** One answer: report what it carries, then poll again from its cursor. */
  answer(st: PollConn, attempt: PollAttempt, at: number): void {
    const raw = attempt.chunks.length === 1 ? attempt.chunks[0]! : Buffer.concat(attempt.chunks);
    const text = raw.toString();
    if (this.generic !== undefined) return this.genericAnswer(st, attempt, text, at);
    if (this.scanner !== undefined && !attempt.fresh && this.probesOnly(st, attempt, text, at)) return;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return this.fail(st, 'bad-event', undefined, false);
    }
    if (!isObject(body) || typeof body.cursor !== 'string') return this.fail(st, 'bad-event', undefined, false);
    const sink = this.sink;
    const cursor = body.cursor;
    if (!st.opened) {
      st.opened = true;
      sink.opened(st.conn, attempt.headAt);
    }
    const reset = body.reset;
    const wasReset = isObject(reset);
    if (wasReset && st.attempt === attempt) {
      sink.reset(st.conn, typeof reset.reason === 'string' ? reset.reason : 'unknown');
    }
    st.cursor = cursor;
    if ((attempt.fresh || wasReset) && st.attempt === attempt) sink.init(st.conn, cursor, unreadCount(body));
    const list = body.notifications;
    if (Array.isArray(list)) {
      const last = list.length - 1;
      for (let i = 0; i <= last && st.attempt === attempt; i++) {
        sink.notification(st.conn, list[i] as ReceivedNotification, i === last ? cursor : undefined, at);
      }
    }
    // Read receipts ride along in the answer (`read: [{id, readAt}]`), as SSE and WS send `read` events.
    const reads = body.read;
    if (Array.isArray(reads) && sink.read !== undefined) {
      for (let i = 0; i < reads.length && st.attempt === attempt; i++) {
        const r: unknown = reads[i];
        if (isObject(r) && typeof r.id === 'string') sink.read(st.conn, r.id, typeof r.readAt === 'string' ? r.readAt : undefined);
      }
    }
    // A sink call may have aborted or reopened the connection; then this loop is over.
    if (st.attempt === attempt) this.poll(st, cursor, this.pollTimeoutS);
  }

  private genericAnswer(st: PollConn, attempt: PollAttempt, text: string, at: number): void {
    if (!attempt.empty) {
      st.answering = attempt;
      this.generic!.text(st, text, at, attempt.headerCursor);
      st.answering = undefined;
    }
    if (st.attempt === attempt) this.poll(st, st.cursor, undefined);
  }

  /** `probeOnly`: handles an answer that carries only notifications by their probes; false when it must be parsed in full. */
  private probesOnly(st: PollConn, attempt: PollAttempt, text: string, at: number): boolean {
    const scanner = this.scanner!;
    const probes = scanner.pollAnswer(text);
    if (probes === undefined) return false;
    const sink = this.sink;
    const cursor = scanner.cursor;
    if (!st.opened) {
      st.opened = true;
      sink.opened(st.conn, attempt.headAt);
    }
    st.cursor = cursor;
    const last = probes.length - 1;
    for (let i = 0; i <= last && st.attempt === attempt; i++) {
      sink.notification(st.conn, { data: { probe: probes[i] } }, i === last ? cursor : undefined, at);
    }
    if (st.attempt === attempt) this.poll(st, cursor, this.pollTimeoutS);
    return true;
  }

  /** A poll failed: the loop ends. `drop` discards the response (its body is of no use and may be large). */
  fail(st: PollConn, code: string, retryMs: number | undefined, drop: boolean): void {
    const attempt = st.attempt!;
    st.attempt = undefined;
    if (drop) attempt.controller?.abort(new Error(code));
    if (st.opened) this.sink.closed(st.conn, code, retryMs);
    else this.sink.error(st.conn, code, retryMs);
  }

  /** @public Pausable (the swarm's `slow` phase calls it through isPausable). */
  pause(conn: number): boolean {
    const st = this.conns.get(conn);
    if (st?.attempt === undefined || !st.opened) return false;
    st.paused = true;
    st.attempt.controller?.pause();
    return true;
  }

  /** @public Pausable. */
  resume(conn: number): void {
    const st = this.conns.get(conn);
    if (st === undefined || !st.paused) return;
    st.paused = false;
    st.attempt?.controller?.resume();
    const next = st.held;
    st.held = undefined;
    next?.();
  }

  private poll(st: PollConn, cursor: string | undefined, timeoutS: number | undefined): void {
    if (st.paused) {
      st.held = () => this.poll(st, cursor, timeoutS);
      return;
    }
    const target = st.target!;
    const attempt = new PollAttempt(st, cursor === undefined);
    st.attempt = attempt;
    let req: SubscribeRequest;
    let client: Client | undefined;
    try {
      const resume = resumeWith(target, cursor, 'query:cursor');
      const params: [string, string | undefined][] = resume.query ? [[resume.query[0], resume.query[1]]] : [];
      // notify serve's hold time; a generic server holds as long as it likes.
      if (!this.generic) params.push(['timeout', timeoutS === undefined ? undefined : String(timeoutS)]);
      req = subscribeRequest(target, '/poll', params);
      if (resume.header !== undefined) req.headers['last-event-id'] = resume.header;
      if (this.h2 === undefined) client = clientFor(st, req.origin, target.localAddress, this.createClient);
      else if (!/^https?:\/\//.test(req.origin)) throw new Error('bad-url');
    } catch {
      // A target that is not an http(s) URL: reported like any failed attempt rather than thrown into a timer.
      return this.fail(st, 'bad-url', undefined, false);
    }
    if (client !== undefined) client.dispatch({ path: req.path, method: 'GET', headers: req.headers }, attempt);
    else this.h2!.dispatch(req.origin, target.localAddress, { path: req.path, method: 'GET', headers: req.headers, ...this.timeouts() }, attempt);
  }

  /** How long a poll may take to answer (a held poll answers within its timeout) and to send its body. */
  private timeouts(): { headersTimeoutMs: number; bodyTimeoutMs: number } {
    return { headersTimeoutMs: this.generic ? 0 : this.pollTimeoutS * 1000 + this.connectTimeoutMs, bodyTimeoutMs: this.connectTimeoutMs };
  }

  protected stop(st: PollConn, cause: 'aborted' | 'client-closed', release: boolean): void {
    const attempt = st.attempt!;
    st.attempt = undefined;
    st.paused = false;
    st.held = undefined;
    // Before undici has started the request there is no controller; destroying the client drops the connect.
    if (release || attempt.controller === undefined) dropClient(st);
    else attempt.controller.abort(new Error(cause));
    if (st.opened) this.sink.closed(st.conn, cause);
    else this.sink.error(st.conn, cause);
  }

  private readonly createClient = (_st: PollConn, origin: string, localAddress: string | undefined): Client =>
    new Client(origin, {
      connect: { timeout: this.connectTimeoutMs, rejectUnauthorized: !this.insecureTls },
      localAddress,
      // A held poll answers within its timeout; past that plus the connect allowance the server is gone.
      headersTimeout: this.timeouts().headersTimeoutMs,
      bodyTimeout: this.timeouts().bodyTimeoutMs,
    });
}
