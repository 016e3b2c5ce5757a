/**
 * HTTP client for `notify serve`'s `POST /publish` (docs/protocol.md, "Publishing").
 *
 * One undici Pool per client, keep-alive, created once: the swarm's scheduled publisher calls `publish` on its hot
 * path, so a call costs one JSON.stringify (or none with `publishRaw`), one pooled request and one small JSON parse.
 * Failures are returned as data with a stable `cause` (`http-400`, `http-401`, `ECONNREFUSED`, `timeout`, ...) and
 * never thrown, so a load run can count them; `acceptedOrThrow` turns one into a `PublishError` for one-shot callers.
 */
import { Pool } from 'undici';
import { ExitCode, NotifyError } from '../errors.js';
import { errorCode, failedBeforeSending } from '../transports/codes.js';
import type { PublishRequest } from '../protocol/notification.js';

/** `202 {ids, delivered}`: one id per event in request order; `delivered` = live connections written to. */
export interface PublishAccepted {
  ok: true;
  ids: string[];
  delivered: number;
}

/** A publish that did not get its 202. */
export interface PublishFailure {
  ok: false;
  /** Stable cause to count by: `http-<status>` (e.g. `http-400`, `http-401`, `http-413`), `ECONNREFUSED`, `timeout`, ... */
  cause: string;
  /** HTTP status when the server answered. */
  status?: number;
  /** The server's `error.code` (e.g. `E_INVALID`, `E_PUBLISH_KEY`) when it sent one. */
  code?: string;
  /** The server's `error.message`, or the network error's message. */
  message: string;
  /**
   * False when the server certainly did not store it: it answered with an error, or no connection was made
   * (ECONNREFUSED, DNS, connect timeout). Absent when unknown: a timeout or reset after sending may follow a store.
   */
  stored?: false;
}

export type PublishOutcome = PublishAccepted | PublishFailure;

export interface PublishClientOptions {
  /** Base URL of the gateway, e.g. `http://127.0.0.1:8080`; a path prefix is kept (`http://h/api` -> `/api/publish`). */
  url: string;
  /** Sent as `X-Publish-Key` when given. */
  publishKey?: string;
  /** Connect timeout and time to the response headers, ms. Default 10000. */
  timeoutMs?: number;
  /** Most sockets the pool opens (each carries one request at a time). Default 16. */
  connections?: number;
}

export interface PublishClient {
  /** The normalised base URL (no trailing slash). */
  readonly url: string;
  /** POSTs one request or a batch (an array). Resolves with the outcome; never rejects. */
  publish(request: PublishRequest | readonly PublishRequest[]): Promise<PublishOutcome>;
  /** Same as `publish` with a body already serialised by the caller (reuse one string, or a Buffer, per send). */
  publishRaw(body: string | Buffer): Promise<PublishOutcome>;
  /** Waits for in-flight requests, then closes the sockets. */
  close(): Promise<void>;
  /** Aborts in-flight requests (they resolve as failures with cause `aborted`) and closes the sockets. */
  destroy(): Promise<void>;
}

/** A failure as an error, for callers that publish once and stop on failure (exit 1, message from `describeFailure`). */
export class PublishError extends NotifyError {
  constructor(
    readonly failure: PublishFailure,
    url: string,
  ) {
    const { message, hint } = describeFailure(failure, url);
    super(`E_PUBLISH_${failure.cause.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}`, message, { hint, exitCode: ExitCode.runtime });
    this.name = 'PublishError';
  }
}

/**
 * Splits a base URL into origin and path prefix (no trailing slash); `href` is how messages show it
 * (`http://127.0.0.1:8080`). Throws TypeError when it is not an http(s) URL.
 */
export function normaliseBaseUrl(url: string): { origin: string; prefix: string; href: string } {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError('not an http:// or https:// URL');
  const prefix = u.pathname.replace(/\/+$/, '');
  return { origin: u.origin, prefix, href: u.origin + prefix };
}

export function createPublishClient(options: PublishClientOptions): PublishClient {
  const base = normaliseBaseUrl(options.url);
  const url = base.href;
  const path = `${base.prefix}/publish`;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pool = new Pool(base.origin, {
    connections: options.connections ?? 16,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: { timeout: timeoutMs },
  });
  // Built once and shared by every request: undici does not mutate it.
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.publishKey !== undefined) headers['x-publish-key'] = options.publishKey;

  async function publishRaw(body: string | Buffer): Promise<PublishOutcome> {
    let status: number;
    let text: string;
    try {
      const res = await pool.request({ path, method: 'POST', headers, body });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      const failure: PublishFailure = { ok: false, cause: errorCode(err), message: (err as Error)?.message ?? String(err) };
      if (failedBeforeSending(err)) failure.stored = false;
      return failure;
    }
    return interpret(status, text);
  }

  return {
    url,
    publish: (request) => publishRaw(JSON.stringify(request)),
    publishRaw,
    close: () => pool.close(),
    destroy: () => pool.destroy(),
  };
}

/** The outcome of an HTTP answer. Exported for tests and for other publishers speaking the same protocol. */
export function interpret(status: number, text: string): PublishOutcome {
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (status === 202 || status === 200) {
    const r = json as { ids?: unknown; delivered?: unknown } | undefined;
    if (r && Array.isArray(r.ids) && typeof r.delivered === 'number') return { ok: true, ids: r.ids as string[], delivered: r.delivered };
    // A 2xx with a body not understood: the server may well have stored it.
    return { ok: false, cause: 'bad-response', status, message: `${status} without {ids, delivered}: ${text.slice(0, 200)}` };
  }
  const e = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const failure: PublishFailure = {
    ok: false,
    cause: `http-${status}`,
    status,
    message: typeof e?.message === 'string' ? e.message : text.slice(0, 200) || `HTTP ${status}`,
    stored: false,
  };
  if (typeof e?.code === 'string') failure.code = e.code;
  return failure;
}

/** Unwraps a 202 or throws the failure as a `PublishError` (exit 1). */
export function acceptedOrThrow(outcome: PublishOutcome, url: string): PublishAccepted {
  if (outcome.ok) return outcome;
  throw new PublishError(outcome, url);
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'socket-closed']);

/** A message a person can act on, naming the URL and the cause, plus a hint. */
export function describeFailure(f: PublishFailure, url: string): { message: string; hint?: string } {
  const server = f.code ? `${f.status} ${f.code}` : `${f.status}`;
  if (f.cause === 'http-401' || f.cause === 'http-403') {
    return {
      message: `${url} refused the publish key (${server}): ${f.message}`,
      hint: 'pass the key notify serve was started with: --publish-key K or NOTIFY_PUBLISH_KEY=K',
    };
  }
  if (f.cause === 'http-400') return { message: `${url} rejected the notification (${server}): ${f.message}` };
  if (f.cause === 'http-413')
    return {
      message: `${url} says the notification is too large (${server}): ${f.message}`,
      hint: 'shorten --body or --data, or start notify serve with a larger --max-body',
    };
  if (f.cause === 'http-404' || f.cause === 'http-405') {
    return {
      message: `${url} has no POST /publish (${server}): is it a notify serve gateway?`,
      hint: "--url is the gateway's base URL, e.g. http://127.0.0.1:8080",
    };
  }
  if (f.status !== undefined) return { message: `${url}/publish answered ${server}: ${f.message}` };
  if (f.cause === 'timeout') {
    return {
      message: `no answer from ${url} in time (timeout): is notify serve running and not overloaded?`,
      hint: 'notify publish waits --timeout (default 10s) per request',
    };
  }
  if (UNREACHABLE.has(f.cause))
    return {
      message: `cannot reach ${url} (${f.cause}): is notify serve running?`,
      hint: 'start it with `notify serve`, or point --url (or NOTIFY_URL) at it',
    };
  return { message: `publishing to ${url} failed (${f.cause}): ${f.message}` };
}
