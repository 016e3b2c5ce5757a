/**
 * The front door of an HTTP/1.1 port: the first bytes of each plain-TCP connection are looked at before node:http
 * sees them. A subscribe request (`GET /events`, a WebSocket upgrade to `/ws`) whose head arrived whole in that first
 * read, and that is plain enough to read with certainty, is handed to the gateway on its raw socket: no HTTP parser,
 * IncomingMessage, ServerResponse or a dozen listeners are set up for a connection that will only ever carry one
 * stream. Everything else (other paths and methods, heads cut across reads, pipelining, bodies, duplicate or unusual
 * headers, anything node:http would refuse) goes to node:http untouched, as if it had been there from the start.
 *
 * Why: a subscriber's set-up is where notify serve costs more than nginx (nchan); node:http's per-connection
 * JavaScript is a large share of it. Figures: BENCHMARKS.md.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';

/** What the subscribe routes read of a request, in node:http's shape (header names in lower case). */
export interface RawRequest {
  readonly method: 'GET';
  /** The request-target as sent, e.g. `/events?user=42`. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly httpVersionMajor: 1;
}

/**
 * Takes the connection (and returns true) or leaves it alone (false): `rest` is what followed the head in the same
 * read (frames of a WebSocket client that did not wait for the 101). A socket taken keeps the listener that destroys
 * it on an error, for its life.
 */
export type FrontDoorHandler = (req: RawRequest, socket: Socket, rest: Buffer) => boolean;

/** node:http's default --max-http-header-size: a larger head is node:http's to refuse (431). */
const MAX_HEAD = 16 * 1024;
/** The one request line taken here: GET, an origin-form target of visible ASCII, HTTP/1.1. */
const REQUEST_LINE = /^GET (\/[!-~]*) HTTP\/1\.1$/;
/** A header field (RFC 9110 token name), its value visible ASCII, blanks and tabs; anything else is node:http's. */
const FIELD = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e]*?)[ \t]*$/;
/** Headers that make a request more than a head: a body, or an expectation to answer. */
const NOT_PLAIN = new Set(['content-length', 'transfer-encoding', 'expect']);

/**
 * The head of a GET, when `chunk` starts with a whole one that can be read without doubt; undefined otherwise (the
 * caller then hands the bytes to node:http, which decides). Duplicate header names are left to node:http, which
 * joins or drops them by name.
 */
export function readHead(chunk: Buffer): { req: RawRequest; rest: Buffer } | undefined {
  // 'G' of GET: anything else (another method, the HTTP/2 preface, TLS) is not looked at further.
  if (chunk.length < 18 || chunk[0] !== 0x47) return undefined;
  const end = chunk.indexOf('\r\n\r\n', 0, 'latin1');
  if (end < 0 || end + 4 > MAX_HEAD) return undefined;
  const lines = chunk.toString('latin1', 0, end).split('\r\n');
  const line = REQUEST_LINE.exec(lines[0]!);
  if (line === null) return undefined;
  const headers: IncomingHttpHeaders = {};
  for (let i = 1; i < lines.length; i++) {
    const field = FIELD.exec(lines[i]!);
    if (field === null) return undefined;
    const name = field[1]!.toLowerCase();
    if (name in headers || NOT_PLAIN.has(name)) return undefined;
    headers[name] = field[2]!;
  }
  // node:http answers a request without Host 400 (requireHostHeader).
  if (headers.host === undefined) return undefined;
  return { req: { method: 'GET', url: line[1]!, headers, httpVersionMajor: 1 }, rest: chunk.subarray(end + 4) };
}

/** True when the request asks for an upgrade as node:http would see one (`Connection: upgrade` and `Upgrade`). */
export function asksUpgrade(req: RawRequest): boolean {
  const connection = req.headers.connection;
  return req.headers.upgrade !== undefined && connection !== undefined && /(?:^|,)[ \t]*upgrade[ \t]*(?:,|$)/i.test(connection);
}
