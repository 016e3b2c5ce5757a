/**
 * HTTP/1.1 by hand, the parts the SSE transport and `notify check` share: the socket (plain or TLS, from a chosen
 * source address), the request head, the response head, and how the body is framed.
 */
import { isIP, connect as netConnect, type OnReadOpts, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

export interface SocketOptions {
  /** Source address (127.0.0.x on loopback when one address runs out of ephemeral ports). */
  localAddress?: string;
  /** `--insecure-tls`: accept any certificate. */
  insecureTls?: boolean;
  /**
   * Plain TCP only: reads go into this buffer and to its callback, skipping the socket's stream machinery (no Buffer
   * per read, no 'data' event). TLS sockets ignore it and emit 'data' as usual.
   */
  onread?: OnReadOpts;
}

/** A TCP or TLS socket to `url`'s host (HTTP/1.1 offered by ALPN), connecting; write the request at once. */
export function openSocket(url: URL, options: SocketOptions = {}): Socket {
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const { localAddress } = options;
  if (url.protocol === 'https:') {
    // servername must not be an IP address (RFC 6066); the certificate is still checked against it.
    const servername = isIP(host) ? undefined : host;
    // tls.connect takes net.connect's options too; its types leave localAddress out.
    const tlsOptions: ConnectionOptions & { localAddress?: string } = {
      host,
      port,
      localAddress,
      servername,
      ALPNProtocols: ['http/1.1'],
      rejectUnauthorized: !options.insecureTls,
    };
    return tlsConnect(tlsOptions);
  }
  return netConnect({ host, port, localAddress, onread: options.onread });
}

/** `GET /path HTTP/1.1` with `Host` first; throws on a header name or value that would break the head. */
export function requestHead(method: string, url: URL, headers: Record<string, string>): string {
  let text = `${method} ${url.pathname}${url.search} HTTP/1.1\r\n`;
  if (!Object.keys(headers).some((k) => k.toLowerCase() === 'host')) text += `Host: ${url.host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value)) throw new Error(`bad header ${JSON.stringify(name)}`);
    text += `${name}: ${value}\r\n`;
  }
  return text + '\r\n';
}

/** Header lines (`Name: value`) to a record keyed by lower-case name; repeated headers are joined with `, `. */
export function parseHeaderLines(lines: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  return headers;
}

export interface ResponseHead {
  status: number;
  /** `1.1` or `1.0`. */
  version: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
}

/** A response head without its closing blank line (latin1 text); undefined when it is not HTTP/1.x. */
export function parseResponseHead(text: string): ResponseHead | undefined {
  const lines = text.split('\r\n');
  const m = /^HTTP\/(\d\.\d) (\d{3})/.exec(lines[0] ?? '');
  if (!m) return undefined;
  return { status: Number(m[2]), version: m[1]!, headers: parseHeaderLines(lines.slice(1)) };
}

/** A response head larger than this is not a server we can talk to. */
const MAX_HEAD = 64 * 1024;

/** What a read gave a ResponseHeadReader: the final head and the bytes after it, more to wait for, or a refusal. */
export type HeadRead = { head: ResponseHead; rest: Buffer } | 'more' | 'bad-response';

/**
 * Gathers a response head across reads, skipping interim answers (100 Continue, 103 Early Hints). Reads may be views
 * of a buffer shared by many sockets: what is kept between reads is a copy; `rest` is a view of the last read.
 */
export class ResponseHeadReader {
  private held: Buffer | undefined;

  /** `upgrade`: a 101 is the answer (a WebSocket handshake), not an interim one. */
  constructor(private readonly upgrade = false) {}

  read(chunk: Buffer): HeadRead {
    const buf = this.held === undefined ? chunk : Buffer.concat([this.held, chunk]);
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buf.length > MAX_HEAD) return 'bad-response';
      this.held = buf === chunk ? Buffer.from(chunk) : buf;
      return 'more';
    }
    this.held = undefined;
    const head = parseResponseHead(buf.toString('latin1', 0, end));
    if (head === undefined) return 'bad-response';
    const rest = buf.subarray(end + 4);
    if (head.status >= 100 && head.status < 200 && !(this.upgrade && head.status === 101)) return rest.length > 0 ? this.read(rest) : 'more';
    return { head, rest };
  }
}

/** How a response body ends: a 0-size chunk, after Content-Length bytes, or when the server closes. */
export type Framing = 'chunked' | 'length' | 'close';

/** Transfer-Encoding chunked wins over Content-Length (RFC 9112 6.3). */
export function framingOf(headers: Record<string, string>): Framing {
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) return 'chunked';
  return headers['content-length'] !== undefined ? 'length' : 'close';
}
