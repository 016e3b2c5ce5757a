/**
 * HTTP/1.1 by hand on a socket, for what a client library hides: when each TCP read arrives and what it held, how the
 * body is framed (chunked, Content-Length or to-close), the status line's version. The body is de-chunked and
 * decompressed here, so a compressed stream is still read, and every piece keeps the time and index of the read
 * that brought it.
 */
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { ChunkedDecoder } from './chunked.js';
import { framingOf, openSocket, parseResponseHead, requestHead, type Framing, type ResponseHead } from '../transports/http1-wire.js';
import { describeTlsError } from './tls.js';

export { parseHeaderLines, type Framing } from '../transports/http1-wire.js';

export interface Head extends ResponseHead {
  /** performance.now() when the head was complete. */
  at: number;
  /** The bytes of the head, CRLFs included. */
  bytes: number;
}

/** Decoded body bytes from one socket read. */
export interface BodyPiece {
  text: string;
  /** performance.now() of the socket read. */
  at: number;
  /** Which socket read (0 = the first after the head). */
  read: number;
  /** Bytes that read brought from the wire (framing and compression included). */
  wireBytes: number;
}

export interface RawRequest {
  url: URL;
  method?: string;
  headers?: Record<string, string>;
  /** Gives up on the head after this long. */
  headTimeoutMs: number;
  /** `--insecure-tls`: accept any certificate. */
  insecureTls?: boolean;
}

export interface RawStream {
  readonly openedAt: number;
  /** Resolves with the head; rejects when the connection fails or closes before it, or on the head timeout. */
  readonly head: Promise<Head>;
  readonly pieces: BodyPiece[];
  /** Resolves when the connection ends, with the time and the socket error code if any. */
  readonly ended: Promise<{ at: number; error?: string }>;
  framing(): Framing | undefined;
  onPiece(fn: (p: BodyPiece) => void): void;
  close(): void;
}

function parseHead(text: string, at: number): Head | undefined {
  const h = parseResponseHead(text);
  return h && { ...h, at, bytes: Buffer.byteLength(text) + 4 };
}

function decompressor(encoding: string | undefined): Transform | undefined {
  const e = (encoding ?? '').toLowerCase();
  if (e.includes('gzip')) return createGunzip();
  if (e.includes('deflate')) return createInflate();
  if (e.includes('br')) return createBrotliDecompress();
  return undefined;
}

/** Opens the request and reads until `close()` or the server ends it. */
export function openRaw(req: RawRequest): RawStream {
  const socket = openSocket(req.url, { insecureTls: req.insecureTls });
  const openedAt = performance.now();
  const pieces: BodyPiece[] = [];
  const listeners: ((p: BodyPiece) => void)[] = [];
  let framing: Framing | undefined;
  let headBuf = Buffer.alloc(0);
  let head: Head | undefined;
  let body: ((data: Buffer, at: number, read: number) => void) | undefined;
  let reads = 0;
  let resolveHead!: (h: Head) => void;
  let rejectHead!: (e: Error) => void;
  const headPromise = new Promise<Head>((res, rej) => ((resolveHead = res), (rejectHead = rej)));
  headPromise.catch(() => {});
  const timer = setTimeout(() => {
    rejectHead(new Error(`no response head within ${req.headTimeoutMs} ms`));
    socket.destroy();
  }, req.headTimeoutMs);
  const emit = (p: BodyPiece) => {
    pieces.push(p);
    for (const fn of listeners) fn(p);
  };
  const onHead = (h: Head, rest: Buffer, at: number) => {
    head = h;
    clearTimeout(timer);
    framing = framingOf(h.headers);
    body = bodyReader(framing, h, emit);
    resolveHead(h);
    if (rest.length > 0) body(rest, at, reads++);
  };
  socket.on('data', (data: Buffer) => {
    const at = performance.now();
    if (body) return body(data, at, reads++);
    headBuf = Buffer.concat([headBuf, data]);
    const end = headBuf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const h = parseHead(headBuf.subarray(0, end).toString('latin1'), at);
    if (!h) return void (rejectHead(new Error(`not an HTTP/1.x answer: ${JSON.stringify(headBuf.subarray(0, 80).toString('latin1'))}`)), socket.destroy());
    onHead(h, headBuf.subarray(end + 4), at);
  });
  const ended = new Promise<{ at: number; error?: string }>((resolve) => {
    let error: string | undefined;
    socket.on('error', (e: NodeJS.ErrnoException) => (error = describeTlsError(e)));
    socket.on('close', () => {
      clearTimeout(timer);
      if (!head) rejectHead(new Error(error ? `connection failed: ${error}` : 'connection closed before a response head'));
      resolve({ at: performance.now(), error });
    });
  });
  socket.once(req.url.protocol === 'https:' ? 'secureConnect' : 'connect', () => socket.write(requestHead(req.method ?? 'GET', req.url, req.headers ?? {})));
  return {
    openedAt,
    head: headPromise,
    pieces,
    ended,
    framing: () => framing,
    onPiece: (fn) => void listeners.push(fn),
    close: () => socket.destroy(),
  };
}

function bodyReader(framing: Framing, h: Head, emit: (p: BodyPiece) => void): (data: Buffer, at: number, read: number) => void {
  const chunked = framing === 'chunked' ? new ChunkedDecoder() : undefined;
  const inflate = decompressor(h.headers['content-encoding']);
  let current = { at: 0, read: 0, wireBytes: 0 };
  inflate?.on('data', (out: Buffer) => emit({ text: out.toString('utf8'), ...current }));
  inflate?.on('error', () => {});
  return (data, at, read) => {
    current = { at, read, wireBytes: data.length };
    const decoded = chunked ? chunked.push(data) : data;
    if (inflate) inflate.write(decoded, () => {});
    else emit({ text: decoded.toString('utf8'), ...current });
  };
}
