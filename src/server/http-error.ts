/** Errors the gateway answers with (an HTTP status and `{error: {code, message}}`), and the JSON answers and heads it writes. */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** `{error: {code, message}}`: the body of every refusal, however it is written. */
export function errorBody(err: HttpError): { error: { code: string; message: string } } {
  return { error: { code: err.code, message: err.message } };
}

let dateSecond = -1;
let dateText = '';
/** The Date header's value for heads written on raw sockets, made once a second (node:http caches its own so). */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** The headers of every JSON answer, written by node:http or on a raw socket. */
function jsonHeaders(text: string, headers: Record<string, string>): Record<string, string | number> {
  return { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store', ...headers };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, jsonHeaders(text, headers));
  res.end(text);
}

/**
 * The head of a JSON answer (`text`) written on a raw socket, as node:http writes sendJson's: the same fields, then
 * its Date and Connection, and with `keepAliveMs` (the connection stays open) its Keep-Alive; without, `close`.
 */
export function jsonHead(status: number, text: string, headers: Record<string, string>, keepAliveMs?: number): string {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n`;
  for (const [name, value] of Object.entries(jsonHeaders(text, headers))) head += `${name}: ${value}\r\n`;
  head += `Date: ${httpDate()}\r\n`;
  head += keepAliveMs === undefined ? 'Connection: close\r\n' : `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(keepAliveMs / 1000)}\r\n`;
  return `${head}\r\n`;
}

export function sendError(res: ServerResponse, err: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, err.status, errorBody(err), err.headers);
}

/** The bytes of a refusal written on a raw socket (WebSocket upgrade requests have no ServerResponse). */
export function rawErrorResponse(err: HttpError): string {
  const body = JSON.stringify(errorBody(err));
  return jsonHead(err.status, body, err.headers) + body;
}

/**
 * Refuses on a raw socket (an upgrade request, or one Node's parser rejected) and closes it. The peer may already
 * have reset the connection: the socket's error is then expected and must not reach the process.
 */
export function refuseSocket(socket: Duplex, err: HttpError): void {
  socket.on('error', ignore);
  if (socket.destroyed) return;
  if (socket.writable) socket.end(rawErrorResponse(err));
  else socket.destroy();
  // A peer that never reads the refusal must not hold the socket.
  setTimeout(() => socket.destroy(), 5000).unref();
}

function ignore(): void {}

/** Reads a request body up to `limit` bytes; past it, 413 (the rest is not buffered). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(tooLarge(declared, limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(size, limit));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function tooLarge(size: number, limit: number): HttpError {
  return new HttpError(413, 'E_TOO_LARGE', `request body is ${size} bytes; the limit is ${limit} (--max-body)`);
}
