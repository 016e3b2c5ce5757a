#!/usr/bin/env node
// The GRIP origin behind Pushpin that notify's built-in `pushpin` target profile assumes (plain Node, no
// dependencies). Pushpin proxies each subscriber's request here; the answer tells Pushpin to hold the response open
// as an SSE stream subscribed to two channels, and from then on Pushpin alone writes to the subscriber: whatever is
// published on `user-<user>` or `broadcast` through its publish API (POST http://127.0.0.1:5561/publish/).
//
//   GET /events?user=<user>  -> a held text/event-stream on channels `user-<user>` and `broadcast`
//   anything else            -> 404 (a bad or missing user is 400)
//
// Run: node grip-origin.mjs [--port 8000] [--host 127.0.0.1]; it prints `listening on http://HOST:PORT` once bound
// (port 0 picks a free one, which is how the tests start it). docs/pushpin/routes points Pushpin here.
import { createServer } from 'node:http';

/** What {user} may be: the channel name is built from it, so no separator or space may slip into Grip-Channel. */
const USER = /^[A-Za-z0-9_.~-]{1,64}$/;

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://origin');
  if (req.method !== 'GET' || url.pathname !== '/events') {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  const user = url.searchParams.get('user') ?? '';
  if (!USER.test(user)) {
    res.writeHead(400, { 'Content-Type': 'text/plain' }).end('user must match [A-Za-z0-9_.~-]{1,64}\n');
    return;
  }
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    // Hold the response open as a stream; its body so far (the comment below) goes to the subscriber first.
    'Grip-Hold': 'stream',
    // The two channels this subscriber receives; a publish item names one of them.
    'Grip-Channel': `user-${user}, broadcast`,
    // Pushpin writes an SSE comment after 20 s without traffic, so idle streams survive proxies and load balancers.
    'Grip-Keep-Alive': ':\\n\\n; format=cstring; timeout=20',
  });
  // An initial comment: the subscriber sees bytes at once (the stream is open), and SSE parsers ignore it.
  res.end(': stream open\n\n');
});

server.listen(Number(option('port', '8000')), option('host', '127.0.0.1'), () => {
  const { address, port } = server.address();
  process.stdout.write(`listening on http://${address}:${port}\n`);
});

// Pushpin keeps idle keep-alive connections to its origin; close them too, or close() would wait for them.
for (const signal of ['SIGINT', 'SIGTERM'])
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
