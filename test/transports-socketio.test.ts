/** Socket.IO transport against a real Socket.IO app (test/helpers/socketio-app.ts), the built-in profile's shape. */
import { createServer, type Server as HttpServer } from 'node:http';
import net from 'node:net';
import type { Socket as ServerSocket } from 'socket.io';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Probe } from '../src/protocol/probe.js';
import { SocketioTransport } from '../src/transports/socketio.js';
import type { SubscribeTarget } from '../src/transports/transport.js';
import { http } from './helpers/http.js';
import { listenForTest, runCleanup, until } from './helpers/lifecycle.js';
import { startSocketioApp, type SocketioApp } from './helpers/socketio-app.js';
import { closedPort, RecordingSink } from './transports-helpers.js';

const RUN = 'run-sio';
const USERS = ['u1', 'u2', 'u3', 'u4', 'u5'];

let sink: RecordingSink;
let sio: SocketioTransport;
let app: SocketioApp & { url: string };
beforeEach(async () => {
  sink = new RecordingSink();
  sio = new SocketioTransport(sink, { connectTimeoutMs: 2000 });
  app = await startSocketioApp();
});
afterEach(async () => {
  await sio.dispose();
  await runCleanup();
});

/** The target the built-in `socketio` profile renders for one user. */
function target(user: string, extra: Partial<NonNullable<SubscribeTarget['socketio']>> = {}, url = app.url): SubscribeTarget {
  return { url, path: '', resume: 'none', socketio: { path: '/socket.io', auth: { user, token: `t-${user}` }, ...extra } };
}

/** Opens conn i+1 for each user and waits until all are connected. */
async function openAll(users: string[]): Promise<void> {
  users.forEach((u, i) => sio.open(i + 1, target(u)));
  await sink.waitFor(() => users.every((_, i) => sink.of(i + 1).some((e) => e.kind === 'opened')), 'every connection to open');
}

async function publish(body: unknown): Promise<number> {
  const r = await http<{ delivered: number }>(`${app.url}/publish`, { body });
  expect(r.status, r.text).toBe(202);
  return r.body.delivered;
}

const probesOf = (conn: number) => sink.notifications(conn).map((e) => e.n.data?.probe);

/** The server side's sockets, with the reason each disconnected for. */
function serverSockets(): { socket: ServerSocket; reason?: string }[] {
  const seen: { socket: ServerSocket; reason?: string }[] = [];
  app.io.on('connection', (socket) => {
    const s: { socket: ServerSocket; reason?: string } = { socket };
    socket.on('disconnect', (reason) => (s.reason = reason));
    seen.push(s);
  });
  return seen;
}

describe('socketio transport', () => {
  it('delivers every user and broadcast probe to its connections, in order', async () => {
    await openAll(USERS);
    const expected = new Map<number, Probe[]>(USERS.map((_, i) => [i + 1, []]));
    let seq = 0;
    for (let round = 0; round < 3; round++) {
      for (const [i, user] of USERS.entries()) {
        const probe = { run: RUN, stream: `user:${user}`, seq: round + 1, t: Date.now() };
        expect(await publish({ user, notification: { id: `n-${++seq}`, type: 'system', data: { probe } } })).toBe(1);
        expected.get(i + 1)!.push(probe);
      }
      const probe = { run: RUN, stream: 'broadcast', seq: round + 1, t: Date.now() };
      expect(await publish({ broadcast: true, notification: { id: `n-${++seq}`, data: { probe } } })).toBe(USERS.length);
      for (const list of expected.values()) list.push(probe);
    }
    await sink.waitFor(() => [...expected].every(([conn, list]) => sink.notifications(conn).length >= list.length), 'every probe');
    for (const [conn, list] of expected) expect(probesOf(conn)).toEqual(list);
    // The cursor is the id of the notification that held the last probe (socketio has no resume, but it is kept).
    expect(sio.cursor(1)).toBe(`n-${seq}`);
    expect(sink.log.filter((e) => e.kind === 'closed' || e.kind === 'error')).toEqual([]);
  });

  it('finds a probe inside a JSON string and ignores events the profile does not name', async () => {
    await openAll(['u1']);
    const wrapped = { run: RUN, stream: 'user:u1', seq: 1, t: 1.5 };
    const plain = { run: RUN, stream: 'user:u1', seq: 2, t: 2.5 };
    app.io.to('user:u1').emit('other', { data: { probe: { run: RUN, stream: 'user:u1', seq: 99, t: 0 } } });
    await publish({ user: 'u1', notification: { payload: JSON.stringify({ probe: wrapped }) } });
    await publish({ user: 'u1', notification: { data: { probe: plain } } });
    await sink.waitFor(() => sink.notifications(1).length >= 2, 'two notifications');
    expect(probesOf(1)).toEqual([wrapped, plain]);
  });

  it('listens to the events named in the generic spec only', async () => {
    sio = new SocketioTransport(sink, { generic: { events: ['alert'] } });
    await openAll(['u1']);
    const probe = { run: RUN, stream: 'user:u1', seq: 1, t: 1 };
    await publish({ user: 'u1', notification: { data: { probe: { ...probe, seq: 7 } } } });
    app.io.to('user:u1').emit('alert', 'first', { data: { probe } });
    await sink.waitFor(() => sink.notifications(1).length >= 1, 'the alert');
    expect(probesOf(1)).toEqual([probe]);
  });

  it('sends the handshake auth, query, headers, source address and resume cursor, and emits the profile events once connected', async () => {
    const emitted: unknown[][] = [];
    const seen = serverSockets();
    app.io.on('connection', (s) => s.on('subscribe', (...args: unknown[]) => emitted.push(args)));
    const t = target('u1', { query: { room: 'r1' }, emit: [['subscribe', '{"topic":"x"}', 'plain', '42']] });
    sio.open(1, { ...t, resume: 'query:cursor', headers: { 'x-run': RUN }, localAddress: '127.0.0.3' }, 'C-7');
    await until(() => emitted.length === 1, 'the emitted event');
    expect(emitted[0]).toEqual([{ topic: 'x' }, 'plain', 42]);
    const hs = seen[0]!.socket.handshake;
    expect(hs.auth).toEqual({ user: 'u1', token: 't-u1' });
    expect(hs.query).toMatchObject({ room: 'r1', cursor: 'C-7', transport: 'websocket' });
    expect(hs.headers['x-run']).toBe(RUN);
    expect(hs.address).toBe('127.0.0.3');
    expect(sio.cursor(1)).toBe('C-7');
  });

  it('reports failed attempts with stable codes', async () => {
    sio.open(1, target('u1', {}, `http://127.0.0.1:${await closedPort()}`));
    await sink.ended(1);
    expect(sink.plain(1)).toEqual([{ kind: 'error', code: 'ECONNREFUSED', retryMs: undefined }]);

    // The app's middleware refuses a handshake without a user.
    sio.open(2, { url: app.url, socketio: { path: '/socket.io', auth: {} } });
    await sink.ended(2);
    expect(sink.plain(2)).toEqual([{ kind: 'error', code: 'socketio-unauthorized', retryMs: undefined }]);

    const refusing: HttpServer = createServer((_req, res) => res.writeHead(403).end());
    sio.open(3, target('u1', {}, await listenForTest(refusing)));
    await sink.ended(3);
    expect(sink.plain(3)).toEqual([{ kind: 'error', code: 'http-403', retryMs: undefined }]);
  });

  it('times out an attempt that never connects', async () => {
    sio = new SocketioTransport(sink, { connectTimeoutMs: 200 });
    const mute = net.createServer(() => {});
    const sockets: net.Socket[] = [];
    mute.on('connection', (s) => sockets.push(s));
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    try {
      sio.open(1, target('u1', {}, `http://127.0.0.1:${(mute.address() as net.AddressInfo).port}`));
      await sink.ended(1);
      expect(sink.plain(1)).toEqual([{ kind: 'error', code: 'timeout', retryMs: undefined }]);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => mute.close(r));
    }
  });

  it('times out a handshake that the server holds in its middleware', async () => {
    sio = new SocketioTransport(sink, { connectTimeoutMs: 300 });
    const seen = serverSockets();
    // Never calls next(): the engine.io handshake completes, the namespace CONNECT is never answered.
    app.io.use(() => {});
    sio.open(1, target('u1'));
    await sink.ended(1);
    expect(sink.plain(1)).toEqual([{ kind: 'error', code: 'timeout', retryMs: undefined }]);
    await until(() => app.io.engine.clientsCount === 0, 'the server to see the dropped socket');
    expect(seen).toEqual([]);
  });

  it('reports a server-side disconnect with its reason', async () => {
    await openAll(['u1']);
    for (const s of await app.io.in('user:u1').fetchSockets()) s.disconnect(true);
    await sink.ended(1);
    expect(sink.plain(1)).toEqual([{ kind: 'opened' }, { kind: 'closed', cause: 'socketio-io-server-disconnect', retryMs: undefined }]);
  });

  it('abort drops the socket at once, close ends it politely, and a reopened connection receives again', async () => {
    const seen = serverSockets();
    await openAll(['u1', 'u2']);
    sio.abort(1);
    sio.close(2);
    expect(sink.plain(1).at(-1)).toEqual({ kind: 'closed', cause: 'aborted', retryMs: undefined });
    expect(sink.plain(2).at(-1)).toEqual({ kind: 'closed', cause: 'client-closed', retryMs: undefined });
    await until(() => seen.every((s) => s.reason !== undefined), 'the server to see both disconnects');
    const reasons = new Map(seen.map((s) => [(s.socket.handshake.auth as { user: string }).user, s.reason]));
    expect(reasons).toEqual(
      new Map([
        ['u1', 'transport close'],
        ['u2', 'client namespace disconnect'],
      ]),
    );

    sio.open(1, target('u1'));
    sio.abort(1);
    expect(sink.plain(1).at(-1)).toEqual({ kind: 'error', code: 'aborted', retryMs: undefined });
    sio.open(1, target('u1'));
    await sink.waitFor(() => sink.of(1).filter((e) => e.kind === 'opened').length === 2, 'the reopened connection');
    const probe = { run: RUN, stream: 'user:u1', seq: 1, t: 1 };
    await publish({ user: 'u1', notification: { data: { probe } } });
    await sink.waitFor(() => sink.notifications(1).length === 1, 'a probe on the reopened connection');
    expect(probesOf(1)).toEqual([probe]);
    expect(sink.log.filter((e) => e.conn === 1 && (e.kind === 'closed' || e.kind === 'error')).length).toBe(2);
  });

  it('dispose closes every socket without telling the sink', async () => {
    const seen = serverSockets();
    await openAll(USERS);
    const before = sink.log.length;
    await sio.dispose();
    await until(() => app.io.engine.clientsCount === 0 && seen.every((s) => s.reason !== undefined), 'the server to see every disconnect');
    expect(seen.length).toBe(USERS.length);
    expect(sink.log.length).toBe(before);
  });

  it('rejects bad publish bodies with a JSON error', async () => {
    for (const body of ['not json', '[1]', { user: 'u1' }, { notification: {} }, { user: '', notification: {} }]) {
      const r = await http<{ error: string }>(`${app.url}/publish`, { body });
      expect(r.status, r.text).toBe(400);
      expect(typeof r.body.error).toBe('string');
    }
  });
});
