/**
 * HTTP/1.1 by hand on a net.Socket: the request is whatever bytes the test writes (lying Content-Length, NUL in a
 * header, a request line no client library would send), and the answer is parsed here, so a response without a
 * status line, a body that is not JSON or no answer at all is seen as such. Every exchange is bounded in time.
 */
import { connect, type Socket } from 'node:net';
import { parseHeaderLines } from '../../src/check/raw-http.js';

export interface RawResponse {
  /** 0 when nothing parsable came back. */
  status: number;
  /** Lower-cased header names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
  /** Every byte the server wrote, latin1. */
  raw: string;
  /** The server closed (or reset) the connection. */
  closed: boolean;
  /** The answer was not complete when the time ran out. */
  timedOut: boolean;
  /** A 200 text/event-stream: the head arrived and the stream stays open (not waited for). */
  streaming: boolean;
  /** Socket error code seen (ECONNRESET ...), if any. */
  error?: string;
  /** It answered a HEAD: no body, whatever the headers say. */
  head: boolean;
}

export interface RawOptions {
  /** Gives up after this long; the answer so far is returned with `timedOut`. */
  timeoutMs?: number;
  /** The request is HEAD: the response has no body whatever its headers say. */
  head?: boolean;
  /** Half-close the socket after writing (the peer sees EOF: a body or head that will never finish). */
  endAfterWrite?: boolean;
  /** Reset the connection (TCP RST) this many ms after writing, without waiting for an answer. */
  rstAfterMs?: number;
  /** Leave the socket open after a complete answer (the caller closes it); used to check keep-alive state. */
  keepOpen?: (socket: Socket) => void;
}

/** Parses what is in `raw` so far; `complete` is false while more bytes are expected. */
export function parseResponse(
  raw: Buffer,
  head: boolean,
  closed: boolean,
): { res: Omit<RawResponse, 'closed' | 'timedOut' | 'raw' | 'error' | 'head'>; complete: boolean } {
  const none = { res: { status: 0, headers: {}, body: '', streaming: false }, complete: closed };
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return none;
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0]!);
  if (!m) return none;
  const headers = parseHeaderLines(lines.slice(1));
  const status = Number(m[1]);
  const rest = raw.subarray(end + 4);
  const noBody = head || status === 204 || status === 304 || status === 101 || (status >= 100 && status < 200);
  if (noBody) return { res: { status, headers, body: '', streaming: false }, complete: true };
  if (status === 200 && /^text\/event-stream/.test(headers['content-type'] ?? '')) {
    return { res: { status, headers, body: rest.toString('utf8'), streaming: true }, complete: true };
  }
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    const body = rest.subarray(0, n).toString('utf8');
    return { res: { status, headers, body, streaming: false }, complete: rest.length >= n || closed };
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = rest.indexOf('\r\n', at);
      if (eol < 0) break;
      const size = parseInt(rest.subarray(at, eol).toString('latin1'), 16);
      if (!Number.isFinite(size)) break;
      if (size === 0) return { res: { status, headers, body: Buffer.concat(parts).toString('utf8'), streaming: false }, complete: true };
      if (rest.length < eol + 2 + size + 2) break;
      parts.push(rest.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    return { res: { status, headers, body: Buffer.concat(parts).toString('utf8'), streaming: false }, complete: closed };
  }
  return { res: { status, headers, body: rest.toString('utf8'), streaming: false }, complete: closed };
}

/** Writes `request` (all at once, or chunk by chunk when given an array) and collects the answer. */
export function rawExchange(port: number, request: string | Buffer | (string | Buffer)[], opts: RawOptions = {}): Promise<RawResponse> {
  const { timeoutMs = 3000, head = false } = opts;
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let closed = false;
    let error: string | undefined;
    let settled = false;
    const finish = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      const { res } = parseResponse(raw, head, closed);
      if (opts.keepOpen && !closed && !timedOut) opts.keepOpen(socket);
      else socket.destroy();
      resolve({ ...res, raw: raw.toString('latin1'), closed, timedOut, error, head });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    const check = () => {
      if (parseResponse(Buffer.concat(chunks), head, closed).complete) finish(false);
    };
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      check();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    socket.on('close', () => {
      closed = true;
      check();
    });
    socket.once('connect', () => {
      for (const part of Array.isArray(request) ? request : [request]) socket.write(part);
      if (opts.endAfterWrite) socket.end();
      if (opts.rstAfterMs !== undefined) {
        setTimeout(() => {
          socket.resetAndDestroy();
          closed = true;
          finish(false);
        }, opts.rstAfterMs);
      }
    });
  });
}

/** `METHOD target HTTP/1.1` with the headers given (Host added unless present) and an optional body. */
export function buildRequest(method: string, target: string, headers: [string, string][] = [], body?: string | Buffer): Buffer {
  const hs = headers.some(([k]) => k.toLowerCase() === 'host') ? headers : [['Host', '127.0.0.1'] as [string, string], ...headers];
  const head = `${method} ${target} HTTP/1.1\r\n${hs.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')]);
}

/** Why `r` breaks the error contract (a 4xx with a JSON body `{error: {code, message}}`), or undefined when it keeps it. */
export function contractBreach(r: RawResponse, allowed: (status: number) => boolean = (s) => s >= 400 && s < 500): string | undefined {
  if (r.timedOut) return `no complete answer within the time limit (got ${JSON.stringify(r.raw.slice(0, 200))})`;
  if (r.status === 0) return `no HTTP status line in the answer (got ${JSON.stringify(r.raw.slice(0, 200))}${r.error ? `, ${r.error}` : ''})`;
  if (!allowed(r.status)) return `status ${r.status} (${JSON.stringify(r.raw.slice(0, 300))})`;
  if (r.status >= 400) {
    if (!/^application\/json/.test(r.headers['content-type'] ?? '')) return `${r.status} without a JSON content-type (${JSON.stringify(r.raw.slice(0, 300))})`;
    // A HEAD answer has the headers of the error, not its body.
    if (r.head) return undefined;
    let body: any;
    try {
      body = JSON.parse(r.body);
    } catch {
      return `${r.status} with a body that is not JSON: ${JSON.stringify(r.body.slice(0, 200))}`;
    }
    const e = body?.error;
    if (!e || typeof e.code !== 'string' || !e.code || typeof e.message !== 'string' || !e.message || Object.keys(body).length !== 1) {
      return `${r.status} body is not {error: {code, message}}: ${r.body.slice(0, 200)}`;
    }
  }
  return undefined;
}
