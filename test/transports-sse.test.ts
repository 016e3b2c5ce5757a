/**
 * SSE transport against a fake server written on raw sockets, so every byte and every TCP write is the test's
 * choice: responses without Content-Length or chunking, events cut at every byte boundary, CRLF, resets.
 */
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SseTransport } from '../src/transports/sse.js';
import { closedPort, once, RecordingSink } from './transports-helpers.js';

interface Seen {
  path: string;
  headers: Record<string, string>;
  remoteAddress: string;
  socket: net.Socket;
}
type Handler = (req: Seen) => void | Promise<void>;

/** Reads a request head, records it, then hands the socket to the test's handler. */
async function fakeServer(handler: Handler): Promise<{ url: string; seen: Seen[]; server: net.Server }> {
  const seen: Seen[] = [];
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    let head = '';
    const onData = (b: Buffer): void => {
      head += b.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const [line, ...rest] = head.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const h of rest) headers[h.slice(0, h.indexOf(':')).toLowerCase()] = h.slice(h.indexOf(':') + 1).trim();
      const req = { path: line!.split(' ')[1]!, headers, remoteAddress: socket.remoteAddress!, socket };
      seen.push(req);
      void handler(req);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, r));
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, seen, server };
}

const HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n\r\n';
const TITLE = 'Héllo ✓ 𝄞'; // 2-, 3- and 4-byte UTF-8 characters, so cuts land inside them
const note = (id: string, extra = '') => `{"id":"${id}","type":"system","title":"${TITLE}","body":"","createdAt":"2026-11-21T12:00:00.000Z"${extra}}`;

const STREAM =
  'retry: 3000\n\n' +
  'id: E.0.1\nevent: init\ndata: {"cursor":"E.0.1","unread":[],"unreadCount":2}\n\n' +
  ':hb\n\n' +
  `id: E.0.2\nevent: notification\ndata: ${note('E-2', ',"data":{"probe":{"run":"r","stream":"broadcast","seq":1,"t":1.5}}')}\n\n` +
  `id: E.0.4\nevent: notifications:batch\ndata: [${note('E-3')},${note('E-4')}]\n\n` +
  'event: read\ndata: {"id":"E-2","readAt":"2026-11-21T12:00:01.000Z"}\n\n' +
  'event: future-event\ndata: not json, ignored\n\n';

const EXPECTED = [
  { kind: 'opened' },
  { kind: 'init', cursor: 'E.0.1', unreadCount: 2 },
  { kind: 'notification', id: 'E-2', cursor: 'E.0.2' },
  { kind: 'notification', id: 'E-3', cursor: undefined },
  { kind: 'notification', id: 'E-4', cursor: 'E.0.4' },
  { kind: 'read', id: 'E-2', readAt: '2026-11-21T12:00:01.000Z' },
  { kind: 'closed', cause: 'server-closed', retryMs: 3000 },
];

/** Writes `parts` as separate TCP writes; the short pause only makes separate reads likely, no assertion relies on it. */
async function writeParts(socket: net.Socket, parts: (string | Buffer)[], end = true): Promise<void> {
  for (const p of parts) {
    await new Promise<void>((r) => socket.write(p, () => r()));
    await new Promise((r) => setTimeout(r, 2));
  }
  if (end) socket.end();
}

let sink: RecordingSink;
let sse: SseTransport;
beforeEach(() => {
  sink = new RecordingSink();
  sse = new SseTransport(sink, { connectTimeoutMs: 2000 });
});
afterEach(() => sse.dispose());

describe('sse transport', () => {
  it.each([
    ['no Connection header', HEAD],
    ['Connection: close', HEAD.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')],
    ['Connection: keep-alive', HEAD.replace('\r\n\r\n', '\r\nConnection: keep-alive\r\n\r\n')],
  ])('reads a close-delimited stream (%s): every event kind, cursors, retry', async (_name, head) => {
    const { url, seen, server } = await fakeServer(({ socket }) => void writeParts(socket, [head + STREAM]));
    sse.open(1, { url, user: '42', token: 'T', headers: { 'x-run': 'r1' } });
    await sink.ended(1);
    expect(sink.plain(1)).toEqual(EXPECTED);
    expect(sse.cursor(1)).toBe('E.0.4');
    expect(seen[0]!.path).toBe('/events?user=42');
    expect(seen[0]!.headers).toMatchObject({ accept: 'text/event-stream', authorization: 'Bearer T', 'x-run': 'r1' });
    expect(seen[0]!.headers['last-event-id']).toBeUndefined();
    const n = sink.notifications(1)[0]!;
    expect(n.n.title).toBe(TITLE);
    expect(n.n.data).toEqual({ probe: { run: 'r', stream: 'broadcast', seq: 1, t: 1.5 } });
    const opened = sink.of(1)[0] as { at: number };
    expect(opened.at).toBeGreaterThan(0);
    expect(n.at).toBeGreaterThanOrEqual(opened.at);
    server.close();
  });

  it('gives the same events when the stream is cut at every byte, with LF and with CRLF', async () => {
    const variants = { lf: Buffer.from(STREAM), crlf: Buffer.from(STREAM.replace(/\n/g, '\r\n')) };
    const { url, server } = await fakeServer(({ path, socket }) => {
      const [variant, at] = new URL(path, 'http://x').searchParams.get('user')!.split('-');
      const body = variants[variant as keyof typeof variants];
      void writeParts(socket, [HEAD, body.subarray(0, Number(at)), body.subarray(Number(at))]);
    });
    const conns: number[] = [];
    const users: string[] = [];
    for (const [variant, body] of Object.entries(variants)) {
      for (let at = 1; at < body.length; at++) users.push(`${variant}-${at}`);
    }
    // In waves, so the test measures parsing and not the listen backlog of a server sharing our event loop.
    for (let i = 0; i < users.length; i += 200) {
      const wave = users.slice(i, i + 200).map((user, j) => {
        conns.push(i + j);
        sse.open(i + j, { url, user });
        return sink.ended(i + j, 1, 10_000);
      });
      await Promise.all(wave);
    }
    for (const c of conns) expect(sink.plain(c), `conn ${c}`).toEqual(EXPECTED);
    const titles = sink.notifications().map((e) => e.n.title);
    expect(titles.length).toBe(conns.length * 3);
    expect(titles.every((t) => t === TITLE)).toBe(true);
    server.close();
  }, 30_000);

  it('handles odd-sized writes with CRLF and bare CR line ends, and several events per write', async () => {
    const body = Buffer.from(STREAM.replace(/\n/g, '\r\n').replace('event: read\r\n', 'event: read\r'));
    const sizes = [1, 2, 3, 5, 7, 11, 13, 17, 19, 23, 97, 211];
    const parts: Buffer[] = [];
    for (let i = 0, off = 0; off < body.length; i++) {
      const n = sizes[i % sizes.length]!;
      parts.push(body.subarray(off, off + n));
      off += n;
    }
    const { url, server } = await fakeServer(({ socket }) => void writeParts(socket, [HEAD, ...parts]));
    sse.open(7, { url });
    await sink.ended(7);
    expect(sink.plain(7)).toEqual(EXPECTED);
    server.close();
  });

  it('resumes with Last-Event-ID, reports reset then the fresh init, and resumes again from the last cursor', async () => {
    const { url, seen, server } = await fakeServer(({ socket }) => {
      if (seen.length === 1) {
        void writeParts(socket, [
          HEAD + 'retry: 500\n\nevent: reset\ndata: {"reason":"window","cursor":"E.0.2"}\n\n',
          'id: F.0.7\nevent: init\ndata: {"cursor":"F.0.7","unread":[{}],"unreadCount":1}\n\n',
          `id: F.0.9\nevent: notification\ndata: ${note('F-9')}\n\n`,
        ]);
      } else {
        void writeParts(socket, [HEAD + `id: F.0.10\nevent: notification\ndata: ${note('F-10')}\n\n`], false);
      }
    });
    sse.open(3, { url }, 'E.0.2');
    expect(sse.cursor(3)).toBe('E.0.2');
    await sink.ended(3);
    expect(sink.plain(3)).toEqual([
      { kind: 'opened' },
      { kind: 'reset', reason: 'window' },
      { kind: 'init', cursor: 'F.0.7', unreadCount: 1 },
      { kind: 'notification', id: 'F-9', cursor: 'F.0.9' },
      { kind: 'closed', cause: 'server-closed', retryMs: 500 },
    ]);
    expect(seen[0]!.headers['last-event-id']).toBe('E.0.2');
    sse.open(3, { url }, sse.cursor(3));
    await sink.waitFor(() => sink.of(3).some((e) => e.kind === 'notification' && e.id === 'F-10'), 'F-10');
    expect(seen[1]!.headers['last-event-id']).toBe('F.0.9');
    expect(sse.cursor(3)).toBe('F.0.10');
    server.close();
  });

  it.each([
    [401, '', undefined],
    [503, 'Retry-After: 2\r\n', 2000],
  ])('reports HTTP %i before the stream as an error with that status', async (status, extra, retryMs) => {
    const body = '{"error":{"code":"E","message":"no"}}';
    const { url, server } = await fakeServer(({ socket }) => {
      socket.write(`HTTP/1.1 ${status} X\r\nContent-Type: application/json\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`);
    });
    sse.open(1, { url });
    await sink.ended(1);
    expect(sink.plain(1)).toEqual([{ kind: 'error', code: `http-${status}`, retryMs }]);
    server.close();
  });

  it('refuses a 200 that is not an event stream', async () => {
    const { url, server } = await fakeServer(({ socket }) => {
      socket.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
    });
    sse.open(1, { url });
    await sink.ended(1);
    expect(sink.plain(1)).toEqual([{ kind: 'error', code: 'bad-content-type', retryMs: undefined }]);
    server.close();
  });

  it('reports ECONNREFUSED on a closed port, and timeout when no response head comes', async () => {
    const port = await closedPort();
    sse.open(1, { url: `http://127.0.0.1:${port}` });
    const { url, server } = await fakeServer(() => undefined);
    const quick = new SseTransport(sink, { connectTimeoutMs: 200 });
    quick.open(2, { url });
    await sink.ended(1);
    await sink.ended(2);
    expect(sink.plain(1)).toEqual([{ kind: 'error', code: 'ECONNREFUSED', retryMs: undefined }]);
    expect(sink.plain(2)).toEqual([{ kind: 'error', code: 'timeout', retryMs: undefined }]);
    await quick.dispose();
    server.close();
  });

  it('closes a stream that stays silent past idleTimeoutMs', async () => {
    const { url, server } = await fakeServer(({ socket }) => void socket.write(HEAD + 'retry: 100\n\n'));
    const idle = new SseTransport(sink, { idleTimeoutMs: 300 });
    idle.open(1, { url });
    await sink.ended(1);
    expect(sink.plain(1)).toEqual([{ kind: 'opened' }, { kind: 'closed', cause: 'idle-timeout', retryMs: 100 }]);
    await idle.dispose();
    server.close();
  });

  it('tells a reset connection, a slow-consumer close and a bad event apart', async () => {
    const { url, server } = await fakeServer(({ path, socket }) => {
      const kind = new URL(path, 'http://x').searchParams.get('user');
      const live = `${HEAD}id: E.0.1\nevent: notification\ndata: ${note('E-1')}\n\n`;
      if (kind === 'rst') void writeParts(socket, [live], false).then(() => socket.resetAndDestroy());
      if (kind === 'slow') void writeParts(socket, [live, 'event: close\ndata: {"reason":"slow consumer"}\n\n']);
      if (kind === 'bad') void writeParts(socket, [live, 'id: E.0.2\nevent: notification\ndata: {"id":\n\n'], false);
    });
    sse.open(1, { url, user: 'rst' });
    sse.open(2, { url, user: 'slow' });
    sse.open(3, { url, user: 'bad' });
    await Promise.all([sink.ended(1), sink.ended(2), sink.ended(3)]);
    const last = (c: number) => sink.plain(c).at(-1);
    expect(last(1)).toEqual({ kind: 'closed', cause: 'ECONNRESET', retryMs: undefined });
    expect(last(2)).toEqual({ kind: 'closed', cause: 'close-slow-consumer', retryMs: undefined });
    expect(last(3)).toEqual({ kind: 'closed', cause: 'bad-event', retryMs: undefined });
    expect(sink.of(3).filter((e) => e.kind === 'notification')).toHaveLength(1);
    server.close();
  });

  it('abort and close report at once and drop the socket; late bytes are not reported', async () => {
    const { url, seen, server } = await fakeServer(({ path, socket }) => {
      if (path.includes('silent')) return;
      socket.write(`${HEAD}id: E.0.1\nevent: notification\ndata: ${note('E-1')}\n\n`);
    });
    sse.open(1, { url, user: 'live' });
    sse.open(2, { url, user: 'live' });
    sse.open(3, { url, user: 'silent' });
    await sink.waitFor(() => sink.log.filter((e) => e.kind === 'notification').length === 2, 'two notifications');
    await sink.waitFor(() => seen.length === 3, 'third request');
    const gone = seen.map((s) => once(s.socket, 'close', 'server side close'));
    sse.abort(1);
    sse.close(2);
    sse.abort(3);
    expect(sink.plain(1).at(-1)).toEqual({ kind: 'closed', cause: 'aborted', retryMs: undefined });
    expect(sink.plain(2).at(-1)).toEqual({ kind: 'closed', cause: 'client-closed', retryMs: undefined });
    expect(sink.plain(3)).toEqual([{ kind: 'error', code: 'aborted', retryMs: undefined }]);
    await Promise.all(gone);
    expect(sink.log).toHaveLength(7);
    sse.abort(1); // not active: nothing to report
    expect(sink.log).toHaveLength(7);
    server.close();
  });

  it('an abort from inside a sink call drops the rest of the chunk', async () => {
    const three = [1, 2, 3].map((i) => `id: E.0.${i}\nevent: notification\ndata: ${note(`E-${i}`)}\n\n`).join('');
    const { url, server } = await fakeServer(({ socket }) => void socket.write(HEAD + three));
    sink.onEntry = (e) => {
      if (e.kind === 'notification') sse.abort(e.conn);
    };
    sse.open(1, { url });
    await sink.ended(1);
    expect(sink.plain(1)).toEqual([
      { kind: 'opened' },
      { kind: 'notification', id: 'E-1', cursor: 'E.0.1' },
      { kind: 'closed', cause: 'aborted', retryMs: undefined },
    ]);
    expect(sse.cursor(1)).toBe('E.0.1');
    server.close();
  });

  it('connects from the given local address and keeps a path prefix', async () => {
    const { url, seen, server } = await fakeServer(({ socket }) => void writeParts(socket, [HEAD + STREAM]));
    sse.open(1, { url: `${url}/gw/`, localAddress: '127.0.0.2' });
    await sink.ended(1);
    expect(seen[0]!.remoteAddress).toBe('127.0.0.2');
    expect(seen[0]!.path).toBe('/gw/events');
    expect(sink.plain(1)).toEqual(EXPECTED);
    server.close();
  });
});
