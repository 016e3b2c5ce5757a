#!/usr/bin/env node
// A notification stream fed by NATS: plain node:http relaying core NATS messages to browsers over Server-Sent
// Events. The same shape as examples/express-redis-sse, with NATS subjects instead of Redis channels; notify swarm
// audits it through the target profile beside it (notify-target.yaml).
//
//   GET /api/notifications/stream?user=<id>  -> text/event-stream: every message published on the subjects
//                                               notifications.user.<id> and notifications.broadcast, as
//                                               `event: notification`, `id: <n>`, `data: <the message>`
//   GET /healthz                             -> 200 {"ok":true} while NATS is connected, else 503
//
// Publish with anything that speaks NATS: `nats pub notifications.user.u1 '{"title":"hi"}'`, a service, a worker.
//
// - One NATS connection for the whole app, with the fan-out to the open streams done here. A user's subject is
//   subscribed while at least one of that user's streams is open, and the stream's headers are sent only once the
//   server has the subscription (a flush is a round trip after the SUB): a client that sees the stream open gets
//   everything published from then on.
// - Core NATS keeps nothing: `id:` numbers the messages this process has relayed, and a client that reconnects gets
//   only what is published after it is back (the profile says resume: none). JetStream would be the way to replay.
//
// Run: node app.mjs [--port 3000] [--host 127.0.0.1] [--nats nats://127.0.0.1:4222]
//      (or PORT, HOST, NATS_URL); it prints `listening on http://HOST:PORT` once bound (--port 0 picks a free one).
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { connect } from 'nats';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '3000' },
    host: { type: 'string', default: process.env.HOST ?? '127.0.0.1' },
    nats: { type: 'string', default: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' },
  },
});

/** What a user id may be: it becomes one token of a subject, so no `.`, `*`, `>` or space. */
const USER = /^[A-Za-z0-9_~-]{1,64}$/;
const BROADCAST = 'notifications.broadcast';
const userSubject = (user) => `notifications.user.${user}`;
const HEARTBEAT_MS = 15_000;
const RETRY_MS = 3000;
const utf8 = new TextDecoder();

let nc;
try {
  nc = await connect({ servers: args.nats, name: 'nats-sse example' });
} catch (err) {
  console.error(`cannot connect to NATS at ${args.nats}: ${err.message}`);
  process.exit(1);
}

/** Subject -> the SSE responses it is relayed to. */
const listeners = new Map([[BROADCAST, new Set()]]);
/** User subject -> how many open streams need it, its subscription, and the flush that confirms it. */
const subscriptions = new Map();
const streams = new Set();
let lastId = 0;

function sseEvent(id, message) {
  return `event: notification\nid: ${id}\n${message
    .split(/\r\n|\r|\n/)
    .map((line) => `data: ${line}`)
    .join('\n')}\n\n`;
}

function relay(err, msg) {
  if (err) return console.error(`nats: ${err.message}`);
  const frame = sseEvent(++lastId, utf8.decode(msg.data));
  for (const res of listeners.get(msg.subject) ?? []) res.write(frame);
}

nc.subscribe(BROADCAST, { callback: relay });

/** Resolves once the server has `subject`'s subscription; each call is paired with one `release(subject, sub)`. */
function hold(subject) {
  let sub = subscriptions.get(subject);
  if (sub === undefined) {
    const mine = { count: 0, nats: nc.subscribe(subject, { callback: relay }), ready: undefined };
    mine.ready = nc.flush().catch((err) => {
      // Not confirmed: the next stream of this user starts over with a subscription of its own.
      if (subscriptions.get(subject) === mine) subscriptions.delete(subject);
      throw err;
    });
    subscriptions.set(subject, (sub = mine));
  }
  sub.count++;
  return sub;
}

function release(subject, sub) {
  if (--sub.count > 0) return;
  if (subscriptions.get(subject) === sub) subscriptions.delete(subject);
  sub.nats.unsubscribe();
}

function answer(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

function stream(req, res, user) {
  const subject = userSubject(user);
  const sub = hold(subject);
  let open = true;
  req.on('close', () => {
    open = false;
    listeners.get(subject)?.delete(res);
    if (listeners.get(subject)?.size === 0) listeners.delete(subject);
    listeners.get(BROADCAST).delete(res);
    streams.delete(res);
    release(subject, sub);
  });
  sub.ready.then(
    () => {
      if (!open) return;
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      res.write(`retry: ${RETRY_MS}\n\n`);
      if (!listeners.has(subject)) listeners.set(subject, new Set());
      listeners.get(subject).add(res);
      listeners.get(BROADCAST).add(res);
      streams.add(res);
    },
    (err) => open && answer(res, 503, { error: { code: 'nats_unavailable', message: err.message } }),
  );
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://app');
  if (req.method === 'GET' && url.pathname === '/healthz') {
    const ok = !nc.isClosed();
    return answer(res, ok ? 200 : 503, { ok });
  }
  if (req.method !== 'GET' || url.pathname !== '/api/notifications/stream') {
    return answer(res, 404, { error: { code: 'not_found', message: 'GET /api/notifications/stream?user=<id>' } });
  }
  const user = url.searchParams.get('user') ?? '';
  if (!USER.test(user)) return answer(res, 400, { error: { code: 'bad_user', message: 'user must be 1-64 of A-Z a-z 0-9 _ ~ -' } });
  stream(req, res, user);
});

const heartbeat = setInterval(() => {
  for (const res of streams) res.write(': keep-alive\n\n');
}, HEARTBEAT_MS);

server.on('error', (err) => {
  console.error(`cannot listen on ${args.host}:${args.port}: ${err.message}`);
  process.exit(1);
});
// The broadcast subscription is in place before the first client can connect.
await nc.flush();
server.listen(Number(args.port), args.host, () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}`);
});

function shutdown() {
  clearInterval(heartbeat);
  server.close(() => {
    nc.drain().finally(() => process.exit(0));
  });
  server.closeAllConnections();
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
