/**
 * WebSocket through the path: the upgrade is answered 101 and a message arrives (a probe published once open), and
 * the server's pings come more often than the idle timeouts. Both read one connection.
 */
import WebSocket from 'ws';
import type { IncomingMessage } from 'node:http';
import type { CheckContext } from './context.js';
import { FIX } from './fixes.js';
import { judgeWatch } from './idle.js';
import { fail, ms, pass, Skip, type Check, type Outcome } from './outcome.js';
import { describeTlsError, TLS_CERT_ERROR } from './tls.js';

interface WsSession {
  url: string;
  startedAt: number;
  openedAt?: number;
  refused?: { status: number; headers: IncomingMessage['headers']; body: string };
  error?: string;
  messages: { at: number; text: string }[];
  pings: number[];
  closed?: { at: number; code: number };
  socket: WebSocket;
}

const sessions = new WeakMap<CheckContext, Promise<WsSession>>();

function openWs(ctx: CheckContext): Promise<WsSession> {
  const target = ctx.render('ws');
  const url = target.url.replace(/^http/, 'ws');
  const socket = new WebSocket(url, target.protocols ?? [], {
    headers: target.headers,
    handshakeTimeout: ctx.config.eventWaitMs,
    rejectUnauthorized: !ctx.config.insecureTls,
  });
  ctx.onDispose(() => socket.terminate());
  const s: WsSession = { url, startedAt: performance.now(), messages: [], pings: [], socket };
  socket.on('message', (data: Buffer) => s.messages.push({ at: performance.now(), text: data.toString('utf8') }));
  socket.on('ping', () => s.pings.push(performance.now()));
  socket.on('close', (code) => (s.closed = { at: performance.now(), code }));
  return new Promise((resolve) => {
    socket.once('open', () => {
      s.openedAt = performance.now();
      resolve(s);
    });
    socket.once('unexpected-response', (req, res: IncomingMessage) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      const finish = () => {
        s.refused = { status: res.statusCode ?? 0, headers: res.headers, body: body.slice(0, 300) };
        req.destroy();
        resolve(s);
      };
      res.once('end', finish);
      res.once('error', finish);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      s.error ??= err.code ? describeTlsError(err) : err.message;
      resolve(s);
    });
  });
}

function wsSession(ctx: CheckContext): Promise<WsSession> {
  let p = sessions.get(ctx);
  if (!p) sessions.set(ctx, (p = openWs(ctx)));
  return p;
}

async function until(check: () => boolean, timeoutMs: number, s: WsSession): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (s.closed || performance.now() > deadline) return check();
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

async function wsUpgrade(ctx: CheckContext): Promise<Outcome> {
  const s = await wsSession(ctx);
  const evidence = [`GET ${s.url} with Upgrade: websocket, Connection: Upgrade`];
  if (s.refused) {
    const { status, headers, body } = s.refused;
    evidence.push(
      `HTTP ${status} instead of 101 Switching Protocols${headers.server ? ` (Server: ${String(headers.server)})` : ''}`,
      `body: ${JSON.stringify(body.slice(0, 160))}`,
    );
    return fail(`the upgrade was answered HTTP ${status}, not 101: the Upgrade/Connection headers did not reach the server`, {
      evidence,
      fix: FIX.upgrade,
      values: { status },
    });
  }
  if (s.openedAt === undefined) {
    // A certificate error names its own fix (--insecure-tls, or the certificate); the upgrade settings are not it.
    const certificate = s.error?.startsWith(TLS_CERT_ERROR) ?? false;
    return fail(`the upgrade failed: ${s.error}`, { evidence, fix: certificate ? undefined : FIX.upgrade });
  }
  evidence.push(`101 Switching Protocols after ${ms(s.openedAt - s.startedAt)}`);
  const run = ctx.run('ws');
  const sentAt = performance.now();
  const o = await ctx.publish(run, 1);
  const mine = () => s.messages.some((m) => m.text.includes(run));
  if (o.ok && (await until(mine, ctx.config.eventWaitMs, s))) {
    const m = s.messages.find((x) => x.text.includes(run))!;
    evidence.push(`the probe published after opening arrived ${ms(m.at - sentAt)} later`);
    return pass(`upgraded (101) and a published probe arrived ${ms(m.at - sentAt)} after publishing`, { evidence });
  }
  evidence.push(`${s.messages.length} message(s) received${s.closed ? `, closed with code ${s.closed.code}` : ''}`);
  if (!o.ok && s.messages.length > 0) return pass(`upgraded (101) and messages arrive (the probe could not be published: ${o.cause})`, { evidence });
  return fail(`upgraded (101), but no published probe arrived within ${ms(ctx.config.eventWaitMs)}`, { evidence, fix: [...FIX.buffering, ...FIX.upgrade] });
}

async function wsPing(ctx: CheckContext): Promise<Outcome> {
  const s = await wsSession(ctx);
  if (s.openedAt === undefined) throw new Skip('the WebSocket did not open; see ws-upgrade');
  const start = s.openedAt;
  await until(() => s.pings.length >= 2, start + ctx.config.timeoutMs - performance.now(), s);
  const frames = [...s.pings, ...s.messages.map((m) => m.at)].sort((a, b) => a - b);
  const ended = s.closed && s.pings.length < 2 ? { at: s.closed.at, lastByteAt: frames.at(-1) ?? start, error: `close code ${s.closed.code}` } : undefined;
  return judgeWatch({ noun: 'ping', start, windowMs: ctx.config.timeoutMs, beats: s.pings, ended, serverFix: FIX.wsPingServer });
}

export const WS_CHECKS: Check[] = [
  { name: 'ws-upgrade', title: 'WebSocket upgrade through the path (101, a message arrives)', run: wsUpgrade },
  { name: 'ws-ping', title: 'WebSocket ping under the idle timeouts', run: wsPing },
];
