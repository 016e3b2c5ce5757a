#!/usr/bin/env node
// bench/transport-recv: client-side cost of receiving, per transport. A broadcast server in its own process writes
// one pre-encoded frame (a notification with a probe, ~190 bytes) per message to N connections, one message per
// read; each reader runs in a fresh process, so its CPU and RSS are its own:
//   raw  net.Socket scanning Buffers for the blank line + JSON.parse + probe (the floor, shared/PERF-NOTES.md)
//   sse  src/transports/sse.ts (its own HTTP/1.1 reader on net.Socket, sse-http1.ts, + eventsource-parser)
//   ws   src/transports/ws.ts (ws@8)
//   sse-probe, ws-probe  the same with `probeOnly: true` (the probe read from the JSON text, as the swarm does)
//   sse-generic, ws-generic  the same frames through the generic decoder (src/transports/decode-generic.ts: what a
//                target profile other than notify uses; every message parsed and searched for its probe)
// Prints client CPU us per received message (and its user/system split: parsing is user time, socket reads system
// time), RSS per idle connection and latency. All modes run in one go, so compare them with each other, not with
// other machines.
// Usage: npm run build && node bench/transport-recv.mjs [--dist dist] [--conns 2000] [--events 50] [--rate 20]
//        [--modes raw,sse,ws,sse-probe,ws-probe,sse-generic,ws-generic]; BENCH_PROF=1 writes a CPU profile of each reader to tmp/prof/.
// Measured (2 vCPU, load ~5 from other jobs, 2000 conns x 50 msgs, three runs): cpu us/msg raw 8.3-10.8,
// sse 8.8-14.9, ws 11.2-18.9; RSS per idle connection raw ~8.5 KB, sse ~20 KB, ws ~19 KB. probeOnly (2026-11-21,
// BENCHMARKS.md): sse-probe ~1.1 us and ws-probe ~1.9 us per message below sse and ws in the same run.
import { fork } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { args, percentile, sleep } from './lib.mjs';

const role = process.env.BENCH_ROLE ?? 'main';
const send = (m) => process.send(m);
const nextMessage = (child, type) =>
  new Promise((resolve) =>
    child.on('message', function on(m) {
      if (m.type === type) {
        child.off('message', on);
        resolve(m);
      }
    }),
  );

if (role === 'server') await server();
else if (role === 'client') await client(JSON.parse(process.env.BENCH_OPT));
else await main();

async function main() {
  const opt = args({ conns: 2000, events: 50, rate: 20, modes: 'raw,sse,ws,sse-probe,ws-probe,sse-generic,ws-generic', dist: 'dist' });
  const srv = fork(new URL(import.meta.url).pathname, [], { env: { ...process.env, BENCH_ROLE: 'server' } });
  const { port } = await nextMessage(srv, 'listening');
  console.error(`transport-recv: ${opt.conns} conns, ${opt.events} messages at ${opt.rate}/s, modes ${opt.modes}`);
  const rows = [];
  for (const mode of opt.modes.split(',')) {
    const c = fork(new URL(import.meta.url).pathname, [], {
      env: { ...process.env, BENCH_ROLE: 'client', BENCH_OPT: JSON.stringify({ ...opt, mode, port }) },
      execArgv: ['--expose-gc', ...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=tmp/prof'] : [])],
    });
    const ready = await nextMessage(c, 'ready');
    c.send({ type: 'measure' });
    await sleep(200);
    srv.send({ type: 'publish', events: opt.events, rate: opt.rate });
    const done = await nextMessage(c, 'done');
    await new Promise((r) => c.once('exit', r));
    srv.send({ type: 'drop' });
    await nextMessage(srv, 'dropped');
    rows.push({ mode, ...ready, ...done });
  }
  srv.kill();
  console.log('mode       received   cpu us/msg  (user/sys)  rss KB/conn  connect s  latency p50/p99 ms');
  for (const r of rows) {
    const split = `${r.userPerMsg.toFixed(2)}/${r.sysPerMsg.toFixed(2)}`;
    console.log(
      `${r.mode.padEnd(10)} ${String(r.received).padStart(9)} ${r.cpuPerMsg.toFixed(2).padStart(11)} ${split.padStart(11)} ${(r.rssPerConn / 1024).toFixed(1).padStart(12)}` +
        ` ${r.connectS.toFixed(2).padStart(10)}  ${r.p50.toFixed(2)}/${r.p99.toFixed(2)}`,
    );
  }
}

async function server() {
  const sse = new Set();
  const wsConns = new Set();
  const { WebSocketServer } = await import('ws');
  const s = http.createServer((req, res) => {
    res.useChunkedEncodingByDefault = false;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('retry: 3000\n\nid: B.0.0\nevent: init\ndata: {"cursor":"B.0.0","unread":[],"unreadCount":0}\n\n');
    res.socket.setNoDelay(true);
    sse.add(res.socket);
    res.on('close', () => sse.delete(res.socket));
  });
  const wss = new WebSocketServer({ server: s, perMessageDeflate: false });
  wss.on('connection', (w) => {
    w.send('{"type":"init","cursor":"B.0.0","unread":[],"unreadCount":0}');
    wsConns.add(w);
    w.on('close', () => wsConns.delete(w));
  });
  s.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => send({ type: 'listening', port: s.address().port }));
  process.on('message', async (m) => {
    if (m.type === 'drop') {
      for (const sock of sse) sock.destroy();
      for (const w of wsConns) w.terminate();
      sse.clear();
      wsConns.clear();
      send({ type: 'dropped' });
      return;
    }
    const start = performance.timeOrigin + performance.now() + 50;
    for (let seq = 1; seq <= m.events; seq++) {
      const t = start + ((seq - 1) * 1000) / m.rate;
      const wait = t - (performance.timeOrigin + performance.now());
      if (wait > 0) await sleep(wait);
      const n = `{"id":"B-${seq}","type":"system","title":"bench","body":"","createdAt":"2026-11-21T12:00:00.000Z","data":{"probe":{"run":"bench","stream":"broadcast","seq":${seq},"t":${t}}}}`;
      const frame = Buffer.from(`id: B.0.${seq}\nevent: notification\ndata: ${n}\n\n`);
      for (const sock of sse) sock.write(frame);
      const wsFrame = `{"type":"notification","cursor":"B.0.${seq}","notification":${n}}`;
      for (const w of wsConns) w.send(wsFrame);
    }
  });
}

async function client(opt) {
  const total = opt.conns * opt.events;
  const latencies = new Float64Array(total);
  let received = 0;
  let measuring = false;
  let cpu0;
  let resolveDone;
  const done = new Promise((r) => (resolveDone = r));
  const record = (p, at) => {
    if (!measuring) return;
    latencies[received++] = performance.timeOrigin + at - p.t;
    if (received === total) resolveDone();
  };
  let openCount = 0;
  let resolveOpen;
  const allOpen = new Promise((r) => (resolveOpen = r));
  const opened = () => {
    if (++openCount === opt.conns) resolveOpen();
  };
  const url = `http://127.0.0.1:${opt.port}`;
  // Loaded before the RSS baseline, so module code is not counted as per-connection memory.
  const lib = opt.mode === 'raw' ? undefined : await import(pathToFileURL(`${opt.dist}/transports/index.js`).href);
  globalThis.gc();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  let keep;
  if (opt.mode === 'raw') {
    keep = [];
    for (let i = 0; i < opt.conns; i += 200) {
      const wave = [];
      for (let j = i; j < Math.min(opt.conns, i + 200); j++) wave.push(rawConnect(opt.port, record, opened, keep));
      await Promise.all(wave);
    }
  } else {
    const { createTransport, probeOf } = lib;
    const sink = {
      opened,
      init() {},
      reset() {},
      read() {},
      error(c, code) {
        console.error('error', c, code);
      },
      closed(c, cause) {
        if (measuring) console.error('closed', c, cause);
      },
      notification(c, n, cursor, at) {
        const p = probeOf(n);
        if (p) record(p, at);
      },
    };
    const [name, variant] = opt.mode.split('-');
    keep = createTransport(name, sink, { probeOnly: variant !== undefined, generic: variant === 'generic' ? {} : undefined });
    const deadline = performance.now() + 60_000;
    for (let i = 0; i < opt.conns; i += 200) {
      const end = Math.min(opt.conns, i + 200);
      for (let j = i; j < end; j++) keep.open(j, { url });
      while (openCount < end) {
        if (performance.now() > deadline) throw new Error(`only ${openCount} of ${opt.conns} opened`);
        await sleep(2);
      }
    }
  }
  await allOpen;
  const connectS = (performance.now() - t0) / 1000;
  await sleep(500);
  globalThis.gc();
  const rssPerConn = (process.memoryUsage().rss - rss0) / opt.conns;
  send({ type: 'ready', connectS, rssPerConn });
  await new Promise((r) => process.once('message', r));
  cpu0 = process.cpuUsage();
  measuring = true;
  await Promise.race([done, sleep(60_000 + (opt.events * 1000) / opt.rate)]);
  const cpu = process.cpuUsage(cpu0);
  const sorted = Array.from(latencies.subarray(0, received)).sort((a, b) => a - b);
  const result = {
    type: 'done',
    received,
    cpuPerMsg: (cpu.user + cpu.system) / received,
    userPerMsg: cpu.user / received,
    sysPerMsg: cpu.system / received,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
  };
  // Exit by itself (not killed) so that --cpu-prof (BENCH_PROF=1) can write its profile.
  process.send(result, () => process.exit(0));
}

/** The floor: one socket, Buffer scanning, the same JSON.parse and probe read as the transports. */
function rawConnect(port, record, opened, keep) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    keep.push(s);
    let head = true;
    let tail = null;
    s.on('connect', () => s.write('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n'));
    s.on('data', (chunk) => {
      const at = performance.now();
      let buf = tail === null ? chunk : Buffer.concat([tail, chunk]);
      tail = null;
      if (head) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return void (tail = buf);
        head = false;
        opened();
        resolve();
        buf = buf.subarray(end + 4);
      }
      let i = 0;
      for (let j; (j = buf.indexOf('\n\n', i)) >= 0; i = j + 2) {
        const d = buf.indexOf('\ndata: ', i);
        if (d < 0 || d > j) continue;
        const ev = buf.indexOf('event: notification', i);
        if (ev < 0 || ev > j) continue;
        const n = JSON.parse(buf.toString('utf8', d + 7, j));
        const p = n.data?.probe;
        if (p && typeof p.t === 'number') record(p, at);
      }
      if (i < buf.length) tail = buf.subarray(i);
    });
    s.on('error', reject);
  });
}
