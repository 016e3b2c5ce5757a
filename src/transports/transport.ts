/**
 * The client side contract of the swarm: one `Transport` per kind (sse, ws, poll) holds many subscriber
 * connections, each named by a number the caller picks, and reports only through a `TransportSink`.
 * A transport never aggregates, prints or decides to reconnect; the swarm scheduler does that.
 */

import type { TransportName } from '../protocol/transports.js';
import type { GenericSpec } from './decode-generic.js';
import type { H2Sessions } from './h2-sessions.js';

/**
 * Where and as whom to subscribe. One object can be shared by all connections of a run. Two forms: notify serve's
 * (a base `url`, `user` and `token`, and the endpoint path by transport), or a target profile's subscribe block
 * rendered for one connection (`path: ''`, the whole `url` and `headers` given, and `resume`).
 */
export interface SubscribeTarget {
  /** Base URL of the server, e.g. `http://127.0.0.1:8080` (a path prefix such as `/gw` is kept). */
  url: string;
  /** Endpoint path below `url`; defaults to `/events`, `/ws` or `/poll` by transport; `''` when `url` is whole. */
  path?: string;
  /**
   * How a resumed attempt hands back its cursor: `last-event-id` (request header), `query:NAME`, or `none` (a
   * fresh subscription every time). Default: notify serve's (SSE the header, WS and poll `?cursor=`).
   */
  resume?: string;
  /** WebSocket: subprotocols to offer; text frames to send once open. */
  protocols?: string[];
  send?: string[];
  /** Socket.IO: the handshake (`path` of the engine, `auth`, `query`) and events to emit once connected. */
  socketio?: { path: string; auth?: Record<string, string>; query?: Record<string, string>; emit?: string[][] };
  /** Sent as `?user=`. */
  user?: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Extra request headers (HTTP request or WebSocket upgrade). */
  headers?: Record<string, string>;
  /** Source address of the socket (spread connections over 127.0.0.x when ephemeral ports run out). */
  localAddress?: string;
}

/**
 * A notification as received: the parsed JSON object the server sent (DESIGN.md `Notification`), not copied.
 * Only `id` and `data` are relied on by the audit; other servers may send other fields.
 * With `TransportOptions.probeOnly` it may instead be just `{data: {probe}}` (see there).
 */
export interface ReceivedNotification {
  id?: string;
  userId?: string;
  data?: Record<string, unknown>;
  [field: string]: unknown;
}

/**
 * What a transport reports. Called synchronously from I/O callbacks, so methods must be cheap and must not throw.
 * `at` values are `performance.now()` (see `epochMs` in probe.ts to compare with a probe's `t`).
 *
 * Lifecycle of each `open()`: exactly one of
 * - `error(conn, code)` (the attempt failed, the stream never opened), or
 * - `opened(conn, at)`, then any number of `init` / `reset` / `notification` / `read`, then exactly one `closed`.
 * `abort()` and `close()` report synchronously (`closed` with 'aborted' / 'client-closed', or `error` with the same
 * codes when the stream was not open yet), so the connection is free for `open()` as soon as they return.
 */
export interface TransportSink {
  /** The stream is open: SSE 200 headers, WS upgrade done, first long-poll answer. */
  opened(conn: number, at: number): void;
  /** Fresh snapshot: `init` on a fresh subscription or after a `reset`. */
  init(conn: number, cursor: string, unreadCount: number): void;
  /**
   * One notification (batches are unrolled, oldest first; all items of one read share `at`).
   * `cursor` is the position after this notification when the server said so: the event's cursor for single
   * events and for the last item of a batch; `undefined` for earlier batch items.
   */
  notification(conn: number, n: ReceivedNotification, cursor: string | undefined, at: number): void;
  /** The server could not resume from the cursor given (`epoch`, `window`, `ahead`); an `init` follows. */
  reset(conn: number, reason: string): void;
  /** Another connection of the same user marked a notification read. */
  read?(conn: number, id: string, readAt: string | undefined): void;
  /**
   * The open stream carried something that is not the protocol and was skipped without closing: an SSE line that is
   * no SSE field, an unnamed SSE event whose data is not JSON. (What breaks a known event closes with 'bad-event'.)
   */
  unparsable?(conn: number): void;
  /**
   * An open stream ended. `cause`: 'server-closed' (clean end), 'ECONNRESET' and other socket codes,
   * 'ws-<close code>', 'http-<status>' (poll), 'close-<reason>' (SSE `close` event, e.g. 'close-slow-consumer'),
   * 'idle-timeout', 'bad-event' (unparsable event; the transport dropped the connection), 'bad-response' (SSE over
   * HTTP/1.1: broken chunked framing), 'aborted', 'client-closed'.
   * `retryMs`: the server's advice (SSE `retry:`, `Retry-After`) when it gave one.
   */
  closed(conn: number, cause: string, retryMs?: number): void;
  /**
   * An attempt failed before the stream opened: 'ECONNREFUSED' and other socket codes, 'http-<status>',
   * 'timeout' (connect or response head), 'bad-content-type', 'socket-closed', 'bad-url', 'bad-header' (a target
   * header with CR/LF or a bad name), 'bad-response' (SSE over HTTP/1.1: not HTTP/1.x, a head over 64 KB, a bad
   * Content-Length), 'bad-handshake' (WS: wrong accept key, Upgrade, extension or subprotocol), 'aborted',
   * 'client-closed'. `retryMs` from `Retry-After` (503).
   */
  error(conn: number, code: string, retryMs?: number): void;
}

export interface Transport {
  readonly name: TransportName;
  /**
   * Starts a subscription for `conn`. Without `cursor` it is fresh (an `init` comes); with one it resumes after it.
   * To resume where the connection was: `open(conn, target, transport.cursor(conn))`.
   * Opening a connection that is still active aborts it first (reported as 'aborted').
   */
  open(conn: number, target: SubscribeTarget, cursor?: string): void;
  /** Drops the connection abruptly (socket destroyed, no WS close frame): what a storm does. */
  abort(conn: number): void;
  /** Ends the connection politely (WS close 1000); SSE and poll have no polite form and drop the socket. */
  close(conn: number): void;
  /** The last cursor the server gave this connection (kept across closes), for resuming. */
  cursor(conn: number): string | undefined;
  /** Closes everything silently (no sink calls) and releases sockets and agents. */
  dispose(): Promise<void>;
}

/** Optional capability (WS only): send a read receipt on the subscription itself. */
export interface ReadReceipts {
  /** Sends `{"type":"read","id"}`; false when the connection is not open. */
  markRead(conn: number, id: string): boolean;
}

/**
 * Optional capability: stop reading a connection's socket and start again (a scenario's `slow` phase). While paused
 * the server's writes pile up in the kernel buffers and then in its own, which is what its slow-consumer policy acts on.
 */
export interface Pausable {
  /** Stops reading; false when the connection is not open or cannot be paused. */
  pause(conn: number): boolean;
  /** Reads again (a no-op when not paused). */
  resume(conn: number): void;
}

export function isPausable(t: Transport): t is Transport & Pausable {
  return typeof (t as Partial<Pausable>).pause === 'function';
}

export function hasReadReceipts(t: Transport): t is Transport & ReadReceipts {
  return typeof (t as Partial<ReadReceipts>).markRead === 'function';
}

export interface TransportOptions {
  /** Connect plus response head (WS: opening handshake), ms. Default 10000. Past it: `error(conn, 'timeout')`. */
  connectTimeoutMs?: number;
  /** SSE: close a stream that received nothing for this long, ms; 0 (default) never. Server `:hb` keeps it alive. */
  idleTimeoutMs?: number;
  /** Long-poll: seconds the server may hold a poll (`timeout=`). Default 25. */
  pollTimeoutS?: number;
  /**
   * For sinks that read nothing but each notification's probe (`probeOf`), such as the swarm. Default false.
   * When true, a notification whose probe can be read from the JSON text without parsing the whole notification
   * reaches `notification()` as `{data: {probe}}` with no other field, the probe already passing probeOf's shape
   * rules; every other notification (no probe, escapes in the text, another layout: see probe-scan.ts) is parsed in
   * full and passed as usual. `probeOf(n)` is the same either way; `n.id` and other fields may be missing.
   * Cursors, and every other sink call, are unchanged.
   */
  probeOnly?: boolean;
  /**
   * Decode with the generic decoder (decode-generic.ts) instead of notify serve's dialect: a target profile with
   * `dialect: generic`. Its events filter and frame layout.
   */
  generic?: GenericSpec;
  /**
   * `--http2`: SSE and long-poll requests go as streams over these sessions (shared by the transports of one worker)
   * instead of one connection each. WebSocket and Socket.IO stay on HTTP/1.1 and ignore it.
   */
  h2?: H2Sessions;
  /** `--insecure-tls`: accept any certificate on https:// and wss:// (self-signed test servers). */
  insecureTls?: boolean;
}

export type TransportFactory = (sink: TransportSink, options: TransportOptions) => Transport;

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_POLL_TIMEOUT_S = 25;
