#!/usr/bin/env node
// bench/bare-reader: the floor a subscriber client can reach on notify serve, for bench/swarm-vs-bare.mjs. One
// net.Socket per connection, a hand-written HTTP/1.1 GET, then either
//   sse  the response stream split into SSE frames (blank line), each frame's data lines JSON.parsed, or
//   ws   a minimal RFC 6455 client: handshake, unmasked server frames parsed, each text frame JSON.parsed (pings
//        answered with a masked pong so the server's heartbeat keeps the connection).
// Counts the notifications (every parsed message that is not the stream's init/heartbeat). Forked with IPC:
// BENCH_OPT = {url, conns, users, transport}; sends {type:'ready'} once every connection has its response head, and
// answers {type:'count'} with {type:'count', received, errors}.
import net from 'node:net';

const opt = JSON.parse(process.env.BENCH_OPT);
const { hostname, port } = new URL(opt.url);
let received = 0;
let errors = 0;
let open = 0;
const sockets = [];

function connect(i) {
  const user = `u${(i % opt.users) + 1}`;
  const socket = net.connect({ host: hostname, port: Number(port) });
  sockets.push(socket);
  const path = opt.transport === 'ws' ? `/ws?user=${user}` : `/events?user=${user}`;
  const head =
    opt.transport === 'ws'
      ? `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`
      : `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAccept: text/event-stream\r\n\r\n`;
  socket.write(head);
  let headDone = false;
  let pending = null; // Buffer of unparsed bytes
  let text = ''; // SSE: unsplit text
  socket.on('data', (chunk) => {
    let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = null;
    if (!headDone) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return void (pending = buf);
      const status = buf.toString('latin1', 0, end);
      if (!/^HTTP\/1\.1 (200|101)/.test(status) || /transfer-encoding:\s*chunked/i.test(status)) {
        errors++;
        socket.destroy();
        return;
      }
      headDone = true;
      if (++open === opt.conns) process.send({ type: 'ready' });
      buf = buf.subarray(end + 4);
    }
    if (opt.transport === 'ws') pending = wsFrames(socket, buf);
    else text = sseFrames(text + buf.toString('utf8'));
  });
  socket.on('error', () => errors++);
}

/** Splits complete SSE frames off `text`, JSON.parses each one's data; returns the incomplete rest. */
function sseFrames(text) {
  let start = 0;
  for (let end = text.indexOf('\n\n', start); end >= 0; end = text.indexOf('\n\n', start)) {
    const frame = text.slice(start, end);
    start = end + 2;
    let data = '';
    let event = '';
    for (const line of frame.split('\n')) {
      if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(line[5] === ' ' ? 6 : 5);
      else if (line.startsWith('event:')) event = line.slice(6).trim();
    }
    if (!data) continue;
    const msg = JSON.parse(data);
    if (event !== 'init' && msg) received++;
  }
  return text.slice(start);
}

/** Parses complete server frames off `buf`; returns the incomplete rest (or null). */
function wsFrames(socket, buf) {
  let at = 0;
  for (;;) {
    if (buf.length - at < 2) break;
    const opcode = buf[at] & 0x0f;
    let len = buf[at + 1] & 0x7f;
    let off = at + 2;
    if (len === 126) {
      if (buf.length - at < 4) break;
      len = buf.readUInt16BE(at + 2);
      off = at + 4;
    } else if (len === 127) {
      if (buf.length - at < 10) break;
      len = Number(buf.readBigUInt64BE(at + 2));
      off = at + 10;
    }
    if (buf.length < off + len) break;
    if (opcode === 1) {
      const msg = JSON.parse(buf.toString('utf8', off, off + len));
      if (msg.type !== 'init') received++;
    } else if (opcode === 9) {
      // pong, masked with a zero key (payload unchanged); pings carry at most 125 bytes
      socket.write(Buffer.concat([Buffer.from([0x8a, 0x80 | len, 0, 0, 0, 0]), buf.subarray(off, off + len)]));
    }
    at = off + len;
  }
  return at < buf.length ? buf.subarray(at) : null;
}

process.on('message', (m) => {
  if (m.type === 'count') process.send({ type: 'count', received, errors });
  if (m.type === 'exit') {
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
for (let i = 0; i < opt.conns; i += 200) {
  for (let j = i; j < Math.min(opt.conns, i + 200); j++) connect(j);
  await new Promise((r) => setTimeout(r, 20));
}
