#!/usr/bin/env node
// bench/gateway-heap: what `notify serve` holds per idle connection, by constructor. Starts the server with
// `--heapsnapshot-signal`, takes a heap snapshot with no subscriber, opens N idle subscribers of --transport (each
// reading its stream, nothing published), takes another, and prints the objects that grew, per connection: count and
// bytes (V8's self size) by type and constructor, then the totals, beside the marginal RSS per connection.
// Usage: npm run build && node bench/gateway-heap.mjs [--transport sse|ws] [--idle 2000] [--bin bin/notify.js]
//        [--top 40] [--serve-args '']
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { args, procStats, sleep } from './lib.mjs';

const opt = args({ transport: 'sse', idle: 2000, bin: 'bin/notify.js', top: 40, serveArgs: '' });
const dir = mkdtempSync(join(tmpdir(), 'notify-gw-heap-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const argv = ['--heapsnapshot-signal=SIGUSR2', resolve(opt.bin), 'serve', '--port', '0', '--log-level', 'warn', ...opt.serveArgs.split(' ').filter(Boolean)];
const server = spawn(process.execPath, argv, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
const url = await new Promise((resolve, reject) => {
  let text = '';
  server.stderr.on('data', (d) => {
    text += d;
    const m = /listening on (https?:\/\/\S+)/.exec(text);
    if (m) resolve(new URL(m[1]));
  });
  server.once('exit', (code) => reject(new Error(`server exited ${code}: ${text}`)));
});

/** Signals the server and waits until a new, complete .heapsnapshot is in `dir`; returns its path. */
async function snapshot() {
  const before = new Set(readdirSync(dir));
  server.kill('SIGUSR2');
  for (;;) {
    await sleep(500);
    const f = readdirSync(dir).find((n) => n.endsWith('.heapsnapshot') && !before.has(n));
    if (!f) continue;
    // Complete once it parses (V8 writes it in pieces).
    try {
      return { file: join(dir, f), data: JSON.parse(readFileSync(join(dir, f), 'utf8')) };
    } catch {}
  }
}

/** Count and self size by "type constructor". */
function census({ data }) {
  const {
    node_fields: fields,
    node_types: [types],
  } = data.snapshot.meta;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((k) => fields.indexOf(k));
  const out = new Map();
  let total = 0;
  for (let i = 0; i < data.nodes.length; i += fields.length) {
    const type = types[data.nodes[i + iType]];
    const name = type === 'object' || type === 'closure' || type === 'native' ? data.strings[data.nodes[i + iName]] : '';
    const key = `${type} ${name.slice(0, 60)}`;
    const size = data.nodes[i + iSize];
    total += size;
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += size;
    out.set(key, e);
  }
  return { out, total };
}

function idleSubscriber(u, sockets) {
  const path = opt.transport === 'ws' ? `/ws?user=u${u}` : `/events?user=u${u}`;
  const head =
    opt.transport === 'ws'
      ? 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
      : 'Accept: text/event-stream\r\n';
  return new Promise((res, rej) => {
    const s = net.connect({ host: url.hostname, port: Number(url.port) });
    sockets.push(s);
    s.once('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: ${url.hostname}\r\n${head}\r\n`));
    s.once('data', (d) => (/^HTTP\/1\.1 (200|101)/.test(d.toString('latin1')) ? res() : rej(new Error(d.toString('latin1').slice(0, 200)))));
    s.on('data', () => {});
    s.once('error', rej);
  });
}

await sleep(500);
const rss0 = procStats(server.pid).rss;
const a = census(await snapshot());
const sockets = [];
for (let i = 0; i < opt.idle; i += 200) {
  const batch = [];
  for (let j = i; j < Math.min(opt.idle, i + 200); j++) batch.push(idleSubscriber(j % 200, sockets));
  await Promise.all(batch);
}
await sleep(2000);
const rss1 = procStats(server.pid).rss;
const b = census(await snapshot());
server.kill('SIGTERM');
for (const s of sockets) s.once('end', () => s.destroy());
await new Promise((r) => server.once('exit', r));
for (const s of sockets) s.destroy();

const rows = [];
for (const [k, e] of b.out) {
  const e0 = a.out.get(k) ?? { count: 0, bytes: 0 };
  rows.push({ k, count: (e.count - e0.count) / opt.idle, bytes: (e.bytes - e0.bytes) / opt.idle });
}
rows.sort((x, y) => y.bytes - x.bytes);
console.log(`${opt.idle} idle ${opt.transport} subscribers: marginal RSS ${((rss1 - rss0) / 1024 / opt.idle).toFixed(2)} KB/conn,`);
console.log(
  `JS heap (snapshot self sizes) ${((b.total - a.total) / 1024 / opt.idle).toFixed(2)} KB/conn (${(a.total / 1048576).toFixed(1)} -> ${(b.total / 1048576).toFixed(1)} MB)`,
);
console.log('\nper connection:  count   bytes  type constructor');
for (const r of rows.slice(0, opt.top)) console.log(`${r.count.toFixed(2).padStart(20)} ${r.bytes.toFixed(0).padStart(7)}  ${r.k}`);
