/** Errors the gateway answers with: an HTTP status and `{error: {code, message}}`. */
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

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, err.status, { error: { code: err.code, message: err.message } }, err.headers);
}

/** The bytes of a refusal written on a raw socket (WebSocket upgrade requests have no ServerResponse). */
export function rawErrorResponse(err: HttpError): string {
  const body = JSON.stringify({ error: { code: err.code, message: err.message } });
  const extra = Object.entries(err.headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return (
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`
  );
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
