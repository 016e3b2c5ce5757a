/**
 * `notify swarm --http2`: SSE and long-poll subscribers as streams multiplexed over a few node:http2 sessions (at most
 * `streamsPerConn` open streams each), instead of one TCP connection per subscriber. It speaks undici's
 * `DispatchHandler` contract, so the SSE and long-poll transports drive a stream exactly as they drive an undici
 * request (`onRequestStart` with a controller, `onResponseStart`, `onResponseData`, `onResponseEnd`, `onResponseError`),
 * and their audit does not know which one carries them. `https://` URLs negotiate h2 by ALPN; `http://` ones speak
 * h2c by prior knowledge. Aborting a subscriber resets its stream (RST_STREAM), never the session the others share.
 */
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type SecureClientSessionOptions } from 'node:http2';
import type { Dispatcher } from 'undici';

/** Connection-level receive window: a paused stream holds its own window (64 KB), not every stream's. */
const SESSION_WINDOW = 16 * 1024 * 1024;

export interface H2SessionOptions {
  /** Streams open at once on one session before another session is opened. */
  streamsPerConn: number;
  /** Accept any certificate (self-signed test servers). */
  insecureTls: boolean;
  /** Session connect plus TLS handshake, ms. */
  connectTimeoutMs: number;
}

export interface H2Request {
  path: string;
  method: 'GET';
  headers: Record<string, string>;
  /** No response head within this: `timeout`. 0 = no limit. */
  headersTimeoutMs: number;
  /** No body bytes for this long: `idle-timeout`. 0 = no limit. */
  bodyTimeoutMs: number;
}

interface Session {
  readonly h2: ClientHttp2Session;
  active: number;
  /** Closing or gone: no new streams on it. */
  done: boolean;
}

/** An error carrying a code the transports' `errorCode` maps (undici's, so both paths count the same causes). */
function coded(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

/** One request on a stream: the controller undici's handlers expect, and the stream's callbacks. */
class H2Attempt implements Dispatcher.DispatchController {
  aborted = false;
  paused = false;
  reason: Error | null = null;
  settled = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    /** Undefined when the session refused the request outright. */
    readonly stream: ClientHttp2Stream | undefined,
    readonly handler: Dispatcher.DispatchHandler,
    private readonly release: () => void,
  ) {}

  abort(reason: Error): void {
    if (this.settled) return;
    this.aborted = true;
    this.reason = reason;
    this.settle();
    this.stream?.close(constants.NGHTTP2_CANCEL);
  }

  pause(): void {
    this.paused = true;
    this.stream?.pause();
  }

  resume(): void {
    this.paused = false;
    this.stream?.resume();
  }

  startTimer(ms: number): void {
    if (ms > 0) this.timer = setTimeout(() => this.fail(coded('UND_ERR_HEADERS_TIMEOUT')), ms);
  }

  head(headers: IncomingHttpHeaders): void {
    clearTimeout(this.timer);
    if (this.settled) return;
    const status = Number(headers[':status']);
    this.handler.onResponseStart?.(this, status, headers);
  }

  data(chunk: Buffer): void {
    if (!this.settled) this.handler.onResponseData?.(this, chunk);
  }

  end(): void {
    if (this.settled) return;
    this.settle();
    this.handler.onResponseEnd?.(this, {});
  }

  fail(err: Error): void {
    if (this.settled) return;
    this.settle();
    this.stream?.close(constants.NGHTTP2_CANCEL);
    this.handler.onResponseError?.(this, err);
  }

  private settle(): void {
    this.settled = true;
    clearTimeout(this.timer);
    this.release();
  }
}

export class H2Sessions {
  private readonly byOrigin = new Map<string, Session[]>();
  /** Sessions opened so far (the result's `config.http2.sessions`). */
  opened = 0;

  constructor(private readonly options: H2SessionOptions) {}

  /** Opens a stream for the request on a session to `origin` with room for it, and drives `handler` from it. */
  dispatch(origin: string, localAddress: string | undefined, req: H2Request, handler: Dispatcher.DispatchHandler): void {
    const s = this.sessionFor(origin, localAddress);
    let stream: ClientHttp2Stream;
    try {
      stream = s.h2.request({ ':method': req.method, ':path': req.path, ...req.headers });
    } catch (err) {
      // The session went away between the pick and the request (e.g. a GOAWAY just arrived).
      s.done = true;
      const attempt = new H2Attempt(undefined, handler, () => {});
      handler.onRequestStart?.(attempt, {});
      return attempt.fail(err as Error);
    }
    s.active++;
    const attempt = new H2Attempt(stream, handler, () => s.active--);
    handler.onRequestStart?.(attempt, {});
    attempt.startTimer(req.headersTimeoutMs);
    if (req.bodyTimeoutMs > 0) stream.setTimeout(req.bodyTimeoutMs, () => attempt.fail(coded('UND_ERR_BODY_TIMEOUT')));
    stream.on('response', (headers) => attempt.head(headers));
    stream.on('data', (chunk: Buffer) => attempt.data(chunk));
    stream.on('end', () => attempt.end());
    stream.on('error', (err: Error) => attempt.fail(err));
    // A stream reset by the server, or lost with its session, ends without 'end'.
    stream.on('close', () => attempt.fail(coded(stream.rstCode === constants.NGHTTP2_NO_ERROR ? 'UND_ERR_SOCKET' : `h2-rst-${stream.rstCode}`)));
  }

  private sessionFor(origin: string, localAddress: string | undefined): Session {
    const key = localAddress === undefined ? origin : `${origin}|${localAddress}`;
    let list = this.byOrigin.get(key);
    if (list === undefined) this.byOrigin.set(key, (list = []));
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      if (s.done) {
        list.splice(i--, 1);
        continue;
      }
      if (s.active < this.options.streamsPerConn) return s;
    }
    const s = this.open(origin, localAddress);
    list.push(s);
    return s;
  }

  private open(origin: string, localAddress: string | undefined): Session {
    // ALPN h2 for https://, prior knowledge (h2c) for http://. node:http2 hands its options on to net/tls.connect,
    // localAddress included (its types leave that out).
    const options: SecureClientSessionOptions & { localAddress?: string } = { rejectUnauthorized: !this.options.insecureTls, localAddress };
    const h2 = connect(origin, options);
    const s: Session = { h2, active: 0, done: false };
    this.opened++;
    const timer = setTimeout(() => h2.destroy(coded('UND_ERR_CONNECT_TIMEOUT')), this.options.connectTimeoutMs);
    h2.once('connect', () => {
      clearTimeout(timer);
      h2.setLocalWindowSize(SESSION_WINDOW);
    });
    // Its streams report the failure; the session itself is only retired.
    h2.on('error', () => (s.done = true));
    h2.once('goaway', () => (s.done = true));
    h2.once('close', () => {
      clearTimeout(timer);
      s.done = true;
    });
    return s;
  }

  /** Closes every session at once (the streams' callbacks are the transports' to ignore). */
  dispose(): void {
    for (const list of this.byOrigin.values()) for (const s of list) s.h2.destroy();
    this.byOrigin.clear();
  }
}
