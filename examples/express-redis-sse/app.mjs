#!/usr/bin/env node
// A small, realistic notification stream: an Express 5 app that relays Redis PUBLISH messages to browsers over
// Server-Sent Events. It is the server that README "Test your own server" audits with notify swarm, through the
// target profile beside it (notify-target.yaml).
//
//   GET /api/notifications/stream?user=<id>  -> text/event-stream: every message published on the Redis channels
//                                               notifications:<id> and notifications:broadcast, as
//                                               `event: notification`, `id: <n>`, `data: <the message>`
//   GET /healthz                             -> 200 {"ok":true} while Redis is connected, else 503
//
// Whatever publishes is up to you: `redis-cli PUBLISH notifications:u1 '{"title":"hi"}'`, a worker, another app.
//
// Design, as a production app of this kind would have it:
// - One Redis subscriber connection for the whole app (a connection per browser would not scale), with the fan-out
//   to the open streams done here: each Redis channel has the set of responses that stream it.
// - A user's channel is subscribed while at least one of that user's streams is open, and the stream's headers are
//   sent only once Redis has confirmed the SUBSCRIBE: a client that sees the stream open gets everything published
//   from then on.
// - No history: `id:` numbers the messages this process has relayed, so EventSource can show progress, but a client
//   that reconnects with Last-Event-ID gets only what is published after it is back (the profile says resume: none).
//
// Run: node app.mjs [--port 3000] [--host 127.0.0.1] [--redis redis://127.0.0.1:6379]
//      (or PORT, HOST, REDIS_URL); it prints `listening on http://HOST:PORT` once bound (--port 0 picks a free one).
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import express from 'express';
import { Redis } from 'ioredis';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '3000' },
    host: { type: 'string', default: process.env.HOST ?? '127.0.0.1' },
    redis: { type: 'string', default: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});

/** What a user id may be: it becomes part of a Redis channel name, so no pattern character or space. */
const USER = /^[A-Za-z0-9_.~-]{1,64}$/;
const BROADCAST = 'notifications:broadcast';
const userChannel = (user) => `notifications:${user}`;
/** A comment this often keeps idle streams open through proxies that close silent connections. */
const HEARTBEAT_MS = 15_000;
/** What EventSource waits before it reconnects after the stream drops. */
const RETRY_MS = 3000;

// A connection in subscriber mode can only (un)subscribe; ioredis re-subscribes by itself after a reconnect.
const subscriber = new Redis(args.redis, { lazyConnect: true, maxRetriesPerRequest: null });
subscriber.on('error', (err) => console.error(`redis: ${err.message}`));

/** Redis channel -> the SSE responses it is relayed to. */
const listeners = new Map([[BROADCAST, new Set()]]);
/** User channel -> how many open streams need it and the SUBSCRIBE that serves them (in flight or done). */
const subscriptions = new Map();
/** Every open stream, for the heartbeat. */
const streams = new Set();
let lastId = 0;

/** Resolves once `channel` is subscribed; each call must be paired with one `release(channel, sub)`. */
function hold(channel) {
  let sub = subscriptions.get(channel);
  if (sub === undefined) {
    sub = { count: 0, ready: undefined };
    const mine = sub;
    mine.ready = subscriber.subscribe(channel).catch((err) => {
      // A failed SUBSCRIBE must not be handed to the next stream of this user: it tries again.
      if (subscriptions.get(channel) === mine) subscriptions.delete(channel);
      throw err;
    });
    subscriptions.set(channel, sub);
  }
  sub.count++;
  return sub;
}

function release(channel, sub) {
  sub.count--;
  if (sub.count > 0 || subscriptions.get(channel) !== sub) return;
  subscriptions.delete(channel);
  // Commands on one connection run in order, so a SUBSCRIBE for a stream that opens next lands after this one.
  subscriber.unsubscribe(channel).catch((err) => console.error(`redis: UNSUBSCRIBE ${channel}: ${err.message}`));
}

/** One SSE event; a message with line breaks becomes several data: lines, which EventSource joins back with \n. */
function sseEvent(id, message) {
  return `event: notification\nid: ${id}\n${message
    .split(/\r\n|\r|\n/)
    .map((line) => `data: ${line}`)
    .join('\n')}\n\n`;
}

subscriber.on('message', (channel, message) => {
  const frame = sseEvent(++lastId, message);
  // A slow client's bytes queue in its socket; a larger app would cap that and drop the client.
  for (const res of listeners.get(channel) ?? []) res.write(frame);
});

const app = express();
app.disable('x-powered-by');

app.get('/healthz', (_req, res) => {
  const ok = subscriber.status === 'ready';
  res.status(ok ? 200 : 503).json({ ok, redis: subscriber.status });
});

app.get('/api/notifications/stream', async (req, res) => {
  const user = req.query.user;
  if (typeof user !== 'string' || !USER.test(user)) {
    res.status(400).json({ error: { code: 'bad_user', message: 'user must be 1-64 of A-Z a-z 0-9 _ . ~ -' } });
    return;
  }
  const channel = userChannel(user);
  const sub = hold(channel);
  let open = true;
  req.on('close', () => {
    open = false;
    listeners.get(channel)?.delete(res);
    if (listeners.get(channel)?.size === 0) listeners.delete(channel);
    listeners.get(BROADCAST).delete(res);
    streams.delete(res);
    release(channel, sub);
  });
  try {
    await sub.ready;
  } catch (err) {
    if (open) res.status(503).json({ error: { code: 'redis_unavailable', message: err.message } });
    return;
  }
  if (!open) return;
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    // nginx and other reverse proxies would otherwise buffer the stream.
    'X-Accel-Buffering': 'no',
  });
  res.write(`retry: ${RETRY_MS}\n\n`);
  if (!listeners.has(channel)) listeners.set(channel, new Set());
  listeners.get(channel).add(res);
  listeners.get(BROADCAST).add(res);
  streams.add(res);
});

app.use((_req, res) => {
  res.status(404).json({ error: { code: 'not_found', message: 'GET /api/notifications/stream?user=<id>' } });
});

const heartbeat = setInterval(() => {
  for (const res of streams) res.write(': keep-alive\n\n');
}, HEARTBEAT_MS);

try {
  await subscriber.connect();
  await subscriber.subscribe(BROADCAST);
} catch (err) {
  console.error(`cannot subscribe on Redis at ${args.redis}: ${err.message}`);
  process.exit(1);
}

const server = createServer(app);
server.on('error', (err) => {
  console.error(`cannot listen on ${args.host}:${args.port}: ${err.message}`);
  process.exit(1);
});
server.listen(Number(args.port), args.host, () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}`);
});

function shutdown() {
  clearInterval(heartbeat);
  server.close(() => {
    subscriber.quit().finally(() => process.exit(0));
  });
  // Open streams never end by themselves; close() would wait for them forever.
  server.closeAllConnections();
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
