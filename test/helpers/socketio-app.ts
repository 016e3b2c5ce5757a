/**
 * A Socket.IO notification app of the shape the built-in `socketio` target profile assumes (src/targets/builtins.ts):
 * a client connects on /socket.io with the handshake `auth: {user, token}` and joins the room `user:<user>`;
 * `POST /publish` with `{"user":"u1","notification":{...}}` emits `notification` to that room, and
 * `{"broadcast":true,"notification":{...}}` to everyone; the answer is 202 `{"delivered": <sockets reached>}`.
 * The token is not checked: a real app would verify it in the same middleware.
 *
 * `socketioApp` is the app alone (usable outside the tests); `startSocketioApp` runs it for one test.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { Server } from 'socket.io';
import { listenForTest, onCleanup } from './lifecycle.js';

/** Larger publish bodies are refused (413) rather than buffered without bound. */
const MAX_BODY_BYTES = 1 << 20;

export interface SocketioApp {
  http: HttpServer;
  io: Server;
}

/** The app, not yet listening. */
export function socketioApp(): SocketioApp {
  // A request that fails mid-body (the client went away) has no one to answer.
  const http = createServer((req, res) => route(io, req, res).catch(() => res.destroy()));
  const io = new Server(http);
  io.use((socket, next) => {
    const user: unknown = (socket.handshake.auth as { user?: unknown }).user;
    if (typeof user !== 'string' || user === '') return next(new Error('unauthorized'));
    void socket.join(`user:${user}`);
    next();
  });
  return { http, io };
}

async function route(io: Server, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.url !== '/publish') return answer(res, 404, { error: 'not found' });
  if (req.method !== 'POST') return answer(res, 405, { error: 'POST only' });
  const body = await readBody(req);
  if (body === undefined) return answer(res, 413, { error: `body over ${MAX_BODY_BYTES} bytes` });
  let msg: { user?: unknown; broadcast?: unknown; notification?: unknown };
  try {
    msg = JSON.parse(body) as typeof msg;
  } catch {
    return answer(res, 400, { error: 'body is not JSON' });
  }
  if (typeof msg !== 'object' || msg === null) return answer(res, 400, { error: 'body must be a JSON object' });
  const { user, broadcast, notification } = msg;
  if (typeof notification !== 'object' || notification === null) return answer(res, 400, { error: 'notification must be an object' });
  if (broadcast === true) {
    io.emit('notification', notification);
    return answer(res, 202, { delivered: io.of('/').sockets.size });
  }
  if (typeof user !== 'string' || user === '') return answer(res, 400, { error: 'needs user (a non-empty string) or broadcast: true' });
  const room = `user:${user}`;
  io.to(room).emit('notification', notification);
  answer(res, 202, { delivered: io.of('/').adapter.rooms.get(room)?.size ?? 0 });
}

/** The body as text; undefined past MAX_BODY_BYTES. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Starts the app on a free loopback port, closed (clients disconnected first) at the test's cleanup. */
export async function startSocketioApp(): Promise<SocketioApp & { url: string; close(): Promise<void> }> {
  const app = socketioApp();
  const url = await listenForTest(app.http);
  const close = () => app.io.close();
  onCleanup(close);
  return { ...app, url, close };
}
