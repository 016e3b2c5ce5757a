/**
 * The front door of an HTTP/1.1 port: the first bytes of each plain-TCP connection are looked at before node:http
 * sees them. A subscribe request (`GET /events`, a WebSocket upgrade to `/ws`) or a publish (`POST /publish` with a
 * Content-Length) whose head arrived whole in that first read, and that is plain enough to read with certainty, is
 * handed to the gateway on its raw socket: no HTTP parser, IncomingMessage, ServerResponse or a dozen listeners are
 * set up for it. Everything else (other paths and methods, heads cut across reads, bodies of a GET, chunked bodies,
 * duplicate or unusual headers, anything node:http would refuse) goes to node:http untouched, as if it had been there
 * from the start; so does a publisher's connection, with what it sent, once it asks for anything but a publish.
 *
 * Why: a subscriber's set-up and a publish are where notify serve cost most beside nginx (nchan); node:http's own
 * JavaScript is a large share of both. Figures: BENCHMARKS.md.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';

/** What the routes served at the front door read of a request, in node:http's shape (header names in lower case). */
export interface RawRequest {
  readonly method: 'GET' | 'POST';
  /** The request-target as sent, e.g. `/events?user=42`. */
  readonly url: string;
  /** Its path, before any `?`, e.g. `/events`. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly httpVersionMajor: 1;
  /** Bytes of the body that follow the head (a POST's Content-Length; 0 for a GET). */
  readonly contentLength: number;
}

/**
 * Takes the connection (and returns true) or leaves it alone (false): `rest` is what followed the head in the same
 * read (frames of a WebSocket client that did not wait for the 101, a POST's body). A socket taken keeps the listener
 * that destroys it on an error, for its life, or until it gives the connection to node:http with `toHttp` (the bytes
 * it read and did not answer, which node:http then reads first).
 */
export type FrontDoorHandler = (req: RawRequest, socket: Socket, rest: Buffer, toHttp: (unread: Buffer) => void) => boolean;

/** node:http's default --max-http-header-size: a larger head is node:http's to refuse (431). */
const MAX_HEAD = 16 * 1024;
/** The request lines taken here: GET or POST, an origin-form target of visible ASCII, HTTP/1.1. */
const REQUEST_LINE = /^(GET|POST) (\/[!-~]*) HTTP\/1\.1$/;
/** A header field (RFC 9110 token name), its value visible ASCII, blanks and tabs; anything else is node:http's. */
const FIELD = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e]*?)[ \t]*$/;
/** Headers that make a GET more than a head: a body, or an expectation to answer. */
const NOT_PLAIN = new Set(['content-length', 'transfer-encoding', 'expect']);
/** Headers a POST read here does without: a body framed otherwise than by Content-Length, an expectation, an upgrade. */
const NOT_PLAIN_POST = new Set(['transfer-encoding', 'expect', 'upgrade']);
/** A Content-Length taken here: digits only, and fewer than 10 of them (node:http answers the rest). */
const LENGTH = /^\d{1,9}$/;
/** The `Connection` of a POST taken here: none, or keep-alive (`close` and the rest are node:http's to honour). */
const KEEP_ALIVE = /^keep-alive$/i;

/**
 * The head of a GET, or of a POST with a Content-Length, when `chunk` starts with a whole one that can be read
 * without doubt; undefined otherwise (the caller then hands the bytes to node:http, which decides). Duplicate header
 * names are left to node:http, which joins or drops them by name.
 */
export function readHead(chunk: Buffer): { req: RawRequest; rest: Buffer } | undefined {
  // 'G' of GET, 'P' of POST: anything else (another method, the HTTP/2 preface, TLS) is not looked at further.
  if (chunk.length < 18 || (chunk[0] !== 0x47 && chunk[0] !== 0x50)) return undefined;
  const end = chunk.indexOf('\r\n\r\n', 0, 'latin1');
  if (end < 0 || end + 4 > MAX_HEAD) return undefined;
  const lines = chunk.toString('latin1', 0, end).split('\r\n');
  const line = REQUEST_LINE.exec(lines[0]!);
  if (line === null) return undefined;
  const method = line[1] as 'GET' | 'POST';
  const notPlain = method === 'GET' ? NOT_PLAIN : NOT_PLAIN_POST;
  const headers: IncomingHttpHeaders = {};
  for (let i = 1; i < lines.length; i++) {
    const field = FIELD.exec(lines[i]!);
    if (field === null) return undefined;
    const name = field[1]!.toLowerCase();
    if (name in headers || notPlain.has(name)) return undefined;
    headers[name] = field[2]!;
  }
  // node:http answers a request without Host 400 (requireHostHeader).
  if (headers.host === undefined) return undefined;
  let contentLength = 0;
  if (method === 'POST') {
    const length = headers['content-length'];
    if (length === undefined || !LENGTH.test(length)) return undefined;
    if (headers.connection !== undefined && !KEEP_ALIVE.test(headers.connection)) return undefined;
    contentLength = Number(length);
  }
  const url = line[2]!;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  return { req: { method, url, path, headers, httpVersionMajor: 1, contentLength }, rest: chunk.subarray(end + 4) };
}

/** True when the request asks for an upgrade as node:http would see one (`Connection: upgrade` and `Upgrade`). */
export function asksUpgrade(req: RawRequest): boolean {
  const connection = req.headers.connection;
  return req.headers.upgrade !== undefined && connection !== undefined && /(?:^|,)[ \t]*upgrade[ \t]*(?:,|$)/i.test(connection);
}
