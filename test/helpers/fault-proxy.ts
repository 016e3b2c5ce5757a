/**
 * A fault-injecting HTTP + WebSocket proxy in front of a real server: it forwards every request (method, path,
 * headers, body) and streams the answer back, except that it drops the messages that carry chosen probes of the
 * broadcast stream. Every subscriber behind it then misses exactly those probes, so a swarm run through it must
 * report exactly that many lost, whatever the server is (nchan, a Socket.IO app, an Express app).
 *
 * - SSE (`text/event-stream` answers): the stream is cut into events at blank lines and an event whose text holds a
 *   dropped probe is not written; everything else (comments, `retry:`, other events) passes byte for byte.
 * - WebSocket (an upgrade): the handshake is piped, then the server's frames are read and a complete single-frame
 *   text message holding a dropped probe is not written. Fragmented messages, binary and control frames, and frames
 *   a proxy cannot read (compressed, masked) pass untouched. The client's offer of permessage-deflate is taken out
 *   of the handshake, so that no server compresses what the proxy must read.
 * - Anything else, long-poll answers included, passes untouched. Dropping a poll answer could not lose a message
 *   anyway: the client would ask again from its last cursor and get the same message in the next answer.
 *
 * `dropped` counts what was dropped, per transport. Stopped by `runCleanup`.
 */
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { onCleanup } from './lifecycle.js';

export interface FaultProxyOptions {
  /** Seqs of the broadcast stream's probes to drop. */
  dropSeqs: Iterable<number>;
  /** Only probes of this run are dropped (the run id in the probe); any run when absent. */
  run?: string;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT, standing for the upstream's base URL. */
  readonly url: string;
  /** Messages dropped, per transport: SSE events and WebSocket text frames. */
  readonly dropped: { sse: number; ws: number };
  close(): Promise<void>;
}

/** An object with no object inside it: where a probe `{run, stream, seq, t}` is, however deep it is nested. */
const INNERMOST_OBJECT = /\{[^{}]*\}/g;
/** `\"`, `\\\"`, ...: a quote escaped once per level of JSON-in-a-string. */
const ESCAPED_QUOTE = /\\+"/g;

/**
 * True when `text` holds a probe of the broadcast stream whose seq is in `seqs` (and of `run`, when given): as JSON
 * (`"probe":{"run":"r1","stream":"broadcast","seq":5,"t":...}`, any key order and spacing) or escaped inside a JSON
 * string, once or more (`\"stream\":\"broadcast\",\"seq\":5`).
 */
export function probeMatcher(seqs: Iterable<number>, run?: string): (text: string) => boolean {
  const drop = new Set(seqs);
  return (text) => {
    if (!text.includes('broadcast')) return false;
    for (const [candidate] of text.matchAll(INNERMOST_OBJECT)) {
      const obj = candidate.replace(ESCAPED_QUOTE, '"');
      if (!/"stream"\s*:\s*"broadcast"/.test(obj) || !/"t"\s*:\s*-?\d/.test(obj)) continue;
      const seq = /"seq"\s*:\s*(\d+)/.exec(obj);
      const probeRun = /"run"\s*:\s*"([^"]*)"/.exec(obj);
      if (seq === null || probeRun === null || !drop.has(Number(seq[1]))) continue;
      if (run === undefined || probeRun[1] === run) return true;
    }
    return false;
  };
}

/** Headers of one hop only: the proxy's own connections have their own. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

/** The end of the first SSE event in `text` (after its blank line), or -1: `\n\n`, `\r\n\r\n` or `\r\r`. */
function eventEnd(text: string): number {
  const m = /\r\n\r\n|\n\n|\r\r/.exec(text);
  return m === null ? -1 : m.index + m[0].length;
}

/** Writes an SSE answer through, event by event, leaving out the events `drop` picks. */
function relaySse(upstream: IncomingMessage, res: ServerResponse, drop: (text: string) => boolean, count: () => void): void {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  upstream.on('data', (chunk: Buffer) => {
    pending += decoder.write(chunk);
    let out = '';
    for (let end = eventEnd(pending); end >= 0; end = eventEnd(pending)) {
      const event = pending.slice(0, end);
      pending = pending.slice(end);
      if (drop(event)) count();
      else out += event;
    }
    if (out !== '' && !res.write(out)) {
      upstream.pause();
      res.once('drain', () => upstream.resume());
    }
  });
  upstream.on('end', () => res.end(pending + decoder.end()));
}

/** Forwards one plain HTTP request and streams its answer back. */
function forward(req: IncomingMessage, res: ServerResponse, target: URL, agent: Agent, drop: (text: string) => boolean, dropped: { sse: number }): void {
  const up = request(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...endToEnd(req.headers), host: target.host }, agent },
    (answer) => {
      const type = answer.headers['content-type'] ?? '';
      // A compressed stream cannot be read event by event; none of the servers tested compresses SSE.
      const sse = /^text\/event-stream/i.test(type) && answer.headers['content-encoding'] === undefined;
      const headers = endToEnd(answer.headers);
      if (sse) delete headers['content-length'];
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
      // The status line and headers go out now: an SSE client counts the stream open from them.
      res.flushHeaders();
      if (sse) relaySse(answer, res, drop, () => dropped.sse++);
      else answer.pipe(res);
      answer.on('error', () => res.destroy());
    },
  );
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('fault proxy: upstream failed\n');
    else res.destroy();
  });
  // The client going away (a swarm storm aborts it) must reach the upstream, which would hold a subscriber otherwise.
  res.on('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  req.pipe(up);
}

/**
 * Reads WebSocket frames from the server and writes them to the client, leaving out the complete single-frame text
 * messages `drop` picks. Frames are written whole, once complete.
 */
class FrameFilter {
  private buf: Buffer = Buffer.alloc(0);
  /** Inside a fragmented message (a data frame without FIN until the continuation frame with FIN). */
  private fragmented = false;

  constructor(
    private readonly drop: (text: string) => boolean,
    private readonly count: () => void,
  ) {}

  /** The bytes to write to the client for `chunk` (frames completed by it, minus the dropped ones). */
  push(chunk: Buffer): Buffer {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    let at = 0;
    for (;;) {
      const frame = this.frameAt(at);
      if (frame === undefined) break;
      if (!this.dropped(frame)) out.push(this.buf.subarray(at, frame.end));
      at = frame.end;
    }
    this.buf = this.buf.subarray(at);
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** The frame starting at `at` if it is complete: its first two bytes, where its payload starts and ends. */
  private frameAt(at: number): { b0: number; b1: number; start: number; end: number } | undefined {
    const buf = this.buf;
    if (buf.length - at < 2) return undefined;
    const b0 = buf[at]!;
    const b1 = buf[at + 1]!;
    let len = b1 & 0x7f;
    let start = at + 2;
    if (len === 126) {
      if (buf.length < start + 2) return undefined;
      len = buf.readUInt16BE(start);
      start += 2;
    } else if (len === 127) {
      if (buf.length < start + 8) return undefined;
      len = Number(buf.readBigUInt64BE(start));
      start += 8;
    }
    if (b1 & 0x80) start += 4; // a mask key (a server must not mask; such a frame is passed, not read)
    const end = start + len;
    return end <= buf.length ? { b0, b1, start, end } : undefined;
  }

  private dropped(frame: { b0: number; b1: number; start: number; end: number }): boolean {
    const fin = (frame.b0 & 0x80) !== 0;
    const rsv = frame.b0 & 0x70;
    const opcode = frame.b0 & 0x0f;
    if (opcode >= 8) return false; // control frames may come between fragments; they do not change the state
    const wasFragmented = this.fragmented;
    this.fragmented = !fin && (opcode !== 0 || wasFragmented);
    const readable = opcode === 1 && fin && !wasFragmented && rsv === 0 && (frame.b1 & 0x80) === 0;
    if (!readable || !this.drop(this.buf.toString('utf8', frame.start, frame.end))) return false;
    this.count();
    return true;
  }
}

/** The client's upgrade request as raw HTTP for the upstream, without the permessage-deflate offer. */
function upgradeHead(req: IncomingMessage, target: URL): string {
  let head = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (lower === 'sec-websocket-extensions') continue;
    head += `${name}: ${lower === 'host' ? target.host : req.rawHeaders[i + 1]}\r\n`;
  }
  return `${head}\r\n`;
}

/** Pipes an upgrade to the upstream: the handshake both ways, then client frames as they are and server frames filtered. */
function tunnel(req: IncomingMessage, client: Duplex, head: Buffer, target: URL, sockets: Set<Duplex>, filter: FrameFilter): void {
  const upstream: Socket = connect(Number(target.port), target.hostname);
  sockets.add(client);
  sockets.add(upstream);
  const close = () => {
    client.destroy();
    upstream.destroy();
    sockets.delete(client);
    sockets.delete(upstream);
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
  upstream.setNoDelay(true);
  upstream.once('connect', () => {
    upstream.write(upgradeHead(req, target));
    if (head.length > 0) upstream.write(head);
    client.pipe(upstream);
  });
  // Until the end of the answer's head the bytes are HTTP; after a 101 they are frames, after anything else a body.
  let answer: Buffer = Buffer.alloc(0);
  let mode: 'head' | 'frames' | 'raw' = 'head';
  upstream.on('data', (chunk: Buffer) => {
    let out = chunk;
    if (mode === 'head') {
      answer = Buffer.concat([answer, chunk]);
      const end = answer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = / (\d{3})/.exec(answer.toString('latin1', 0, end))?.[1];
      mode = status === '101' ? 'frames' : 'raw';
      client.write(answer.subarray(0, end + 4));
      out = answer.subarray(end + 4);
      if (out.length === 0) return;
    }
    if (mode === 'frames') out = filter.push(out);
    if (out.length > 0 && !client.write(out)) {
      upstream.pause();
      client.once('drain', () => upstream.resume());
    }
  });
  upstream.on('end', () => client.end());
}

/** Starts the proxy on a free loopback port in front of `upstream` (http://HOST:PORT). */
export async function startFaultProxy(upstream: string, options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(upstream);
  if (target.protocol !== 'http:') throw new Error(`fault proxy: upstream must be http:// (got ${upstream})`);
  if (target.port === '') target.port = '80';
  const drop = probeMatcher(options.dropSeqs, options.run);
  const dropped = { sse: 0, ws: 0 };
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const sockets = new Set<Duplex>();
  const server = createServer((req, res) => forward(req, res, target, agent, drop, dropped));
  server.on('upgrade', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    tunnel(req, client, head, target, sockets, new FrameFilter(drop, () => dropped.ws++));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = async () => {
    for (const s of sockets) s.destroy();
    server.closeAllConnections();
    agent.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  onCleanup(close);
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, dropped, close };
}
