/** WebSocket transport against a fake ws server that sends the frames of docs/protocol.md. */
import { createHash } from 'node:crypto';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { WsTransport } from '../src/transports/ws.js';
import { closedPort, once, RecordingSink } from './transports-helpers.js';
import { selfSignedCert } from './helpers/tls-cert.js';

interface Seen {
  url: URL;
  headers: IncomingMessage['headers'];
  remoteAddress: string;
  ws: WebSocket;
  received: string[];
}

/** `refuse` answers the upgrade with a status (and headers) instead of accepting it. */
async function fakeServer(
  onConnection: (s: Seen) => void,
  refuse?: (url: URL) => { status: number; headers?: Record<string, string> } | undefined,
): Promise<{ url: string; seen: Seen[]; wss: WebSocketServer }> {
  const seen: Seen[] = [];
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (info, cb) => {
      const r = refuse?.(new URL(info.req.url!, 'http://x'));
      if (r) cb(false, r.status, 'refused', r.headers);
      else cb(true);
    },
  });
  await once(wss, 'listening', 'ws server');
  wss.on('connection', (ws, req) => {
    const s: Seen = { url: new URL(req.url!, 'http://x'), headers: req.headers, remoteAddress: req.socket.remoteAddress!, ws, received: [] };
    ws.on('message', (d, isBinary) => s.received.push(isBinary ? '<binary>' : Buffer.isBuffer(d) ? d.toString('utf8') : '<not a Buffer>'));
    seen.push(s);
    onConnection(s);
  });
  return { url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, seen, wss };
}

const note = (id: string) => ({ id, type: 'system', title: 'Héllo ✓', body: '', createdAt: '2026-11-21T12:00:00.000Z' });
const FRAMES = [
  { type: 'init', cursor: 'E.0.1', unread: [note('E-1')], unreadCount: 5 },
  { type: 'notification', cursor: 'E.0.2', notification: { ...note('E-2'), data: { probe: { run: 'r', stream: 'broadcast', seq: 1, t: 2.5 } } } },
  { type: 'notifications:batch', cursor: 'E.3.4', notifications: [note('E-3'), note('E-4'), note('E-5')] },
  { type: 'read', id: 'E-2', readAt: '2026-11-21T12:00:01.000Z' },
  { type: 'something-new', x: 1 },
];
const EXPECTED = [
  { kind: 'opened' },
  { kind: 'init', cursor: 'E.0.1', unreadCount: 5 },
  { kind: 'notification', id: 'E-2', cursor: 'E.0.2' },
  { kind: 'notification', id: 'E-3', cursor: undefined },
  { kind: 'notification', id: 'E-4', cursor: undefined },
  { kind: 'notification', id: 'E-5', cursor: 'E.3.4' },
  { kind: 'read', id: 'E-2', readAt: '2026-11-21T12:00:01.000Z' },
];

/** A server frame (FIN unless `more`) of `opcode` (1 text, 0 continuation) carrying `text`, shorter than 64 KB. */
function rawFrame(opcode: number, text: string, more = false): Buffer {
  const payload = Buffer.from(text);
  const head = payload.length < 126 ? Buffer.from([0, payload.length]) : Buffer.from([0, 126, payload.length >> 8, payload.length & 0xff]);
  head[0] = (more ? 0 : 0x80) | opcode;
  return Buffer.concat([head, payload]);
}

/** A server that answers the upgrade by hand and gives each accepted socket to `onSocket`, in connection order. */
async function rawServer(onSocket: (socket: Socket, index: number) => void): Promise<{ url: string; server: net.Server }> {
  let n = 0;
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.once('data', (head) => {
      const key = /sec-websocket-key: *(\S+)/i.exec(head.toString('latin1'))![1]!;
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      onSocket(socket, n++);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

let sink: RecordingSink;
let ws: WsTransport;
beforeEach(() => {
  sink = new RecordingSink();
  ws = new WsTransport(sink, { connectTimeoutMs: 2000 });
});
afterEach(async () => {
  await ws.dispose();
});

describe('ws transport', () => {
  it('delivers every frame type with cursors and reports the close code', async () => {
    const { url, seen, wss } = await fakeServer((s) => {
      for (const f of FRAMES) s.ws.send(JSON.stringify(f));
      s.ws.close(4008, 'slow consumer');
    });
    ws.open(1, { url, user: '42', token: 'T', headers: { 'x-run': 'r1' } });
    await sink.ended(1);
    expect(sink.plain(1)).toEqual([...EXPECTED, { kind: 'closed', cause: 'ws-4008', retryMs: undefined }]);
    expect(ws.cursor(1)).toBe('E.3.4');
    expect(seen[0]!.url.pathname).toBe('/ws');
    expect(seen[0]!.url.searchParams.get('user')).toBe('42');
    expect(seen[0]!.url.searchParams.has('cursor')).toBe(false);
    expect(seen[0]!.headers).toMatchObject({ authorization: 'Bearer T', 'x-run': 'r1' });
    const n = sink.notifications(1)[0]!;
    expect(n.n.title).toBe('Héllo ✓');
    expect(n.n.data).toEqual({ probe: { run: 'r', stream: 'broadcast', seq: 1, t: 2.5 } });
    wss.close();
  });

  it('resumes with ?cursor=, reports reset then init, and resumes again from the last cursor', async () => {
    const { url, seen, wss } = await fakeServer((s) => {
      if (seen.length === 1) {
        s.ws.send(JSON.stringify({ type: 'reset', reason: 'epoch', cursor: 'E.0.2' }));
        s.ws.send(JSON.stringify({ type: 'init', cursor: 'F.1.0', unread: [], unreadCount: 0 }));
        s.ws.send(JSON.stringify({ type: 'notification', cursor: 'F.2.0', notification: note('F-2') }));
        s.ws.close(1012, 'restart');
      } else {
        s.ws.send(JSON.stringify({ type: 'notification', cursor: 'F.3.0', notification: note('F-3') }));
      }
    });
    ws.open(5, { url }, 'E.0.2');
    await sink.ended(5);
    expect(sink.plain(5)).toEqual([
      { kind: 'opened' },
      { kind: 'reset', reason: 'epoch' },
      { kind: 'init', cursor: 'F.1.0', unreadCount: 0 },
      { kind: 'notification', id: 'F-2', cursor: 'F.2.0' },
      { kind: 'closed', cause: 'ws-1012', retryMs: undefined },
    ]);
    expect(seen[0]!.url.searchParams.get('cursor')).toBe('E.0.2');
    ws.open(5, { url }, ws.cursor(5));
    await sink.waitFor(() => sink.of(5).some((e) => e.kind === 'notification' && e.id === 'F-3'), 'F-3');
    expect(seen[1]!.url.searchParams.get('cursor')).toBe('F.2.0');
    expect(ws.cursor(5)).toBe('F.3.0');
    wss.close();
  });

  it('reports a dropped connection as ws-1006 and a bad frame as bad-event', async () => {
    const { url, wss } = await fakeServer((s) => {
      s.ws.send(JSON.stringify({ type: 'notification', cursor: 'E.0.1', notification: note('E-1') }));
      if (s.url.searchParams.get('user') === 'drop') s.ws.terminate();
      else s.ws.send('{"type":"notification",');
    });
    ws.open(1, { url, user: 'drop' });
    ws.open(2, { url, user: 'bad' });
    await Promise.all([sink.ended(1), sink.ended(2)]);
    expect(sink.plain(1).at(-1)).toEqual({ kind: 'closed', cause: 'ws-1006', retryMs: undefined });
    expect(sink.plain(2).at(-1)).toEqual({ kind: 'closed', cause: 'bad-event', retryMs: undefined });
    expect(sink.of(2).filter((e) => e.kind === 'notification')).toHaveLength(1);
    wss.close();
  });

  it('reports refused upgrades by HTTP status with Retry-After, and ECONNREFUSED', async () => {
    const { url, wss } = await fakeServer(
      () => undefined,
      (u) => (u.searchParams.get('user') === 'busy' ? { status: 503, headers: { 'Retry-After': '3' } } : { status: 401 }),
    );
    ws.open(1, { url, user: 'busy' });
    ws.open(2, { url, user: 'nobody' });
    ws.open(3, { url: `http://127.0.0.1:${await closedPort()}` });
    await Promise.all([sink.ended(1), sink.ended(2), sink.ended(3)]);
    expect(sink.plain(1)).toEqual([{ kind: 'error', code: 'http-503', retryMs: 3000 }]);
    expect(sink.plain(2)).toEqual([{ kind: 'error', code: 'http-401', retryMs: undefined }]);
    expect(sink.plain(3)).toEqual([{ kind: 'error', code: 'ECONNREFUSED', retryMs: undefined }]);
    wss.close();
  });

  it('reports timeout when the upgrade is never answered', async () => {
    const silent = net.createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const quick = new WsTransport(sink, { connectTimeoutMs: 150 });
    quick.open(1, { url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` });
    await sink.ended(1);
    expect(sink.plain(1)).toEqual([{ kind: 'error', code: 'timeout', retryMs: undefined }]);
    await quick.dispose();
    silent.close();
  });

  it('abort drops the socket without a close frame, close sends 1000; both report at once', async () => {
    const { url, seen, wss } = await fakeServer((s) => s.ws.send(JSON.stringify(FRAMES[0])));
    ws.open(1, { url });
    ws.open(2, { url });
    await sink.waitFor(() => sink.log.filter((e) => e.kind === 'init').length === 2, 'two inits');
    const codes = seen.map((s) => once<number>(s.ws, 'close', 'server side close'));
    ws.abort(1);
    ws.close(2);
    expect(sink.plain(1).at(-1)).toEqual({ kind: 'closed', cause: 'aborted', retryMs: undefined });
    expect(sink.plain(2).at(-1)).toEqual({ kind: 'closed', cause: 'client-closed', retryMs: undefined });
    expect((await Promise.all(codes)).sort()).toEqual([1000, 1006]);
    expect(sink.log).toHaveLength(6);
    wss.close();
  });

  it('sends read receipts on the open connection', async () => {
    const { url, seen, wss } = await fakeServer((s) => s.ws.send(JSON.stringify(FRAMES[0])));
    expect(ws.markRead(1, 'E-1')).toBe(false);
    ws.open(1, { url });
    await sink.waitFor(() => sink.of(1).some((e) => e.kind === 'init'), 'init');
    expect(ws.markRead(1, 'E-1')).toBe(true);
    await sink.waitFor(() => seen[0]!.received.length === 1, 'the receipt at the server');
    expect(JSON.parse(seen[0]!.received[0]!)).toEqual({ type: 'read', id: 'E-1' });
    wss.close();
  });

  it('joins fragmented messages, answers pings with the same payload, and offers the profile subprotocols', async () => {
    const pongs: string[] = [];
    const { url, seen, wss } = await fakeServer((s) => {
      s.ws.on('pong', (d) => pongs.push(d.toString()));
      const text = JSON.stringify(FRAMES[1]);
      s.ws.send(text.slice(0, 10), { fin: false });
      s.ws.ping('hb-1');
      s.ws.send(text.slice(10), { fin: true });
    });
    wss.options.handleProtocols = (protocols: Set<string>) => (protocols.has('b') ? 'b' : false);
    ws.open(1, { url, protocols: ['a', 'b'] });
    await sink.waitFor(() => sink.of(1).some((e) => e.kind === 'notification') && pongs.length === 1, 'the message and the pong');
    expect(sink.notifications(1)[0]!.n.data).toEqual({ probe: { run: 'r', stream: 'broadcast', seq: 1, t: 2.5 } });
    expect(pongs).toEqual(['hb-1']);
    expect(seen[0]!.headers['sec-websocket-protocol']).toBe('a,b');
    wss.close();
  });

  it('keeps nothing of a read past it: a frame split across reads and fragments survive other sockets reading in between', async () => {
    // Plain sockets share one read buffer; between the two halves of connection 1's frames, connection 2's reads
    // overwrite it. Each piece is written after the other socket's, apart in time, so they arrive as separate reads.
    const text = (seq: number) =>
      JSON.stringify({ ...FRAMES[1], notification: { ...note(`E-${seq}`), data: { probe: { run: 'r', stream: 'broadcast', seq, t: 2.5 } } } });
    const sockets: Socket[] = [];
    const { url, server } = await rawServer((socket) => sockets.push(socket));
    ws.open(1, { url });
    await sink.waitFor(() => sink.of(1).some((e) => e.kind === 'opened'), 'open 1');
    ws.open(2, { url });
    await sink.waitFor(() => sink.of(2).some((e) => e.kind === 'opened'), 'open 2');
    const [one, two] = sockets as [Socket, Socket];
    // A frame in three reads (the middle one is kept as it came), then a fragment that is a whole read of its own.
    const split = rawFrame(1, text(1));
    const second = text(2);
    const steps: [Socket, Buffer][] = [
      [one, split.subarray(0, 40)],
      [two, rawFrame(1, text(7))],
      [one, split.subarray(40, 100)],
      [two, rawFrame(1, text(8))],
      [one, split.subarray(100)],
      [one, rawFrame(1, second.slice(0, 50), true)],
      [two, rawFrame(1, text(9))],
      [one, rawFrame(0, second.slice(50))],
    ];
    for (const [socket, bytes] of steps) {
      socket.write(bytes);
      await tick(30);
    }
    await sink.waitFor(() => sink.notifications(1).length === 2 && sink.notifications(2).length === 3, 'every message');
    expect(sink.notifications(1).map((e) => [e.n.id, e.n.data])).toEqual([
      ['E-1', { probe: { run: 'r', stream: 'broadcast', seq: 1, t: 2.5 } }],
      ['E-2', { probe: { run: 'r', stream: 'broadcast', seq: 2, t: 2.5 } }],
    ]);
    expect(sink.notifications(2).map((e) => e.n.id)).toEqual(['E-7', 'E-8', 'E-9']);
    server.close();
  });

  it('refuses a 101 that breaks the handshake (wrong accept key) as bad-handshake', async () => {
    const liar = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () =>
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n'),
      );
    });
    await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
    ws.open(1, { url: `http://127.0.0.1:${(liar.address() as AddressInfo).port}` });
    await sink.ended(1);
    expect(sink.plain(1)).toEqual([{ kind: 'error', code: 'bad-handshake', retryMs: undefined }]);
    liar.close();
  });

  it('speaks wss:// with --insecure-tls to a self-signed server, and fails the certificate without it', async () => {
    const { cert, key } = selfSignedCert();
    const server = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) });
    const wss = new WebSocketServer({ server });
    wss.on('connection', (s) => s.send(JSON.stringify(FRAMES[0])));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `wss://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const insecure = new WsTransport(sink, { insecureTls: true });
    insecure.open(1, { url });
    ws.open(2, { url });
    await sink.waitFor(() => sink.of(1).some((e) => e.kind === 'init'), 'init over TLS');
    await sink.ended(2);
    expect(sink.plain(2)).toEqual([{ kind: 'error', code: 'DEPTH_ZERO_SELF_SIGNED_CERT', retryMs: undefined }]);
    await insecure.dispose();
    wss.close();
    server.close();
  });

  it('connects from the given local address', async () => {
    const { url, seen, wss } = await fakeServer((s) => s.ws.send(JSON.stringify(FRAMES[0])));
    ws.open(1, { url, localAddress: '127.0.0.3' });
    await sink.waitFor(() => sink.of(1).some((e) => e.kind === 'init'), 'init');
    expect(seen[0]!.remoteAddress).toBe('127.0.0.3');
    wss.close();
  });
});
