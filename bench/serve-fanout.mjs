#!/usr/bin/env node
// bench/serve-fanout: N SSE subscribers on the broadcast stream of `notify serve` (a child process), E events at R/s.
// Prints delivered, publish->receive latency p50/p99, server CPU-seconds per 1,000 deliveries and server RSS per idle
// connection. The client reads with raw sockets (the cheapest reader, see shared/PERF-NOTES.md) so the server is
// what is measured. Usage: npm run build && node bench/serve-fanout.mjs [--conns 2000] [--events 100] [--rate 20]
// [--bin path/to/notify.js] (another build, to compare before/after in one session)
// [--node-args '--single-threaded-gc'] (node/V8 flags for the server process, e.g. ones NODE_OPTIONS refuses)
import { spawn } from 'node:child_process';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { args, percentile, procStats, sleep, startServe } from './lib.mjs';

const opt = args({ conns: 2000, events: 100, rate: 20, batch: '0ms', port: 0, bin: 'bin/notify.js', nodeArgs: '' });
const cmd =
  `node bench/serve-fanout.mjs --conns ${opt.conns} --events ${opt.events} --rate ${opt.rate} --batch ${opt.batch} --bin ${opt.bin}` +
  (opt.nodeArgs ? ` --node-args '${opt.nodeArgs}'` : '');

const serveArgs = ['--port', String(opt.port), '--batch', opt.batch, '--log-level', 'warn', '--unread-limit', '0'];
const { server, url } = opt.nodeArgs ? await startWith(opt.nodeArgs.split(' ').filter(Boolean)) : await startServe(opt.bin, serveArgs);
/** startServe (lib.mjs) with node flags before the script. */
function startWith(nodeArgs) {
  const child = spawn(process.execPath, [...nodeArgs, opt.bin, 'serve', ...serveArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let text = '';
    child.stderr.on('data', (d) => {
      text += d;
      const m = /listening on (https?:\/\/\S+)/.exec(text);
      if (m) resolve({ server: child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${text}`)));
  });
}
const { hostname, port } = new URL(url);
const base = procStats(server.pid);

// Subscribers: raw sockets, counting frames and reading the probe time of each notification.
const latencies = [];
let delivered = 0;
let opened = 0;
const sockets = [];
function subscribe() {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: hostname, port: Number(port) });
    let headers = false;
    let tail = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write(`GET /events HTTP/1.1\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n\r\n`));
    s.on('data', (chunk) => {
      let text = tail + chunk;
      if (!headers) {
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) return void (tail = text);
        headers = true;
        opened++;
        resolve(s);
        text = text.slice(end + 4);
      }
      const now = performance.timeOrigin + performance.now();
      let i = 0;
      for (;;) {
        const j = text.indexOf('\n\n', i);
        if (j < 0) break;
        const frame = text.slice(i, j);
        i = j + 2;
        // `event: notification` carries one probe, `event: notifications:batch` (--batch) several.
        if (!frame.includes('event: notification')) continue;
        for (const m of frame.matchAll(/"t":([\d.]+)/g)) {
          delivered++;
          latencies.push(now - Number(m[1]));
        }
      }
      tail = text.slice(i);
    });
    s.on('error', reject);
    sockets.push(s);
  });
}
const t0 = performance.now();
for (let i = 0; i < opt.conns; i += 200) {
  await Promise.all(Array.from({ length: Math.min(200, opt.conns - i) }, subscribe));
}
const connectS = (performance.now() - t0) / 1000;
await sleep(1000);
const idle = procStats(server.pid);

// Publish on a fixed schedule; t is the intended send time (epoch ms).
const start = performance.timeOrigin + performance.now() + 100;
const interval = 1000 / opt.rate;
const before = procStats(server.pid);
for (let seq = 1; seq <= opt.events; seq++) {
  const t = start + (seq - 1) * interval;
  const wait = t - (performance.timeOrigin + performance.now());
  if (wait > 0) await sleep(wait);
  const body = JSON.stringify({
    broadcast: true,
    notification: { type: 'system', title: `bench ${seq}`, data: { probe: { run: 'bench', stream: 'broadcast', seq, t } } },
  });
  fetch(`${url}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).catch((e) => console.error('publish failed', e.message));
}
const expected = opt.events * opt.conns;
const deadline = performance.now() + 15_000;
while (delivered < expected && performance.now() < deadline) await sleep(50);
const after = procStats(server.pid);
for (const s of sockets) s.destroy();
server.kill('SIGTERM');

latencies.sort((a, b) => a - b);
const cpu = after.cpu - before.cpu;
const result = {
  command: cmd,
  conns: opt.conns,
  opened,
  events: opt.events,
  expected,
  delivered,
  lost: expected - delivered,
  latencyMs: { p50: +percentile(latencies, 50).toFixed(2), p99: +percentile(latencies, 99).toFixed(2), max: +latencies.at(-1).toFixed(2) },
  serverCpuSeconds: +cpu.toFixed(2),
  serverCpuSecondsPer1000Deliveries: +((cpu / delivered) * 1000).toFixed(4),
  serverCpuUsPerDelivery: +((cpu / delivered) * 1e6).toFixed(2),
  serverRssPerIdleConnKB: +((idle.rss - base.rss) / opt.conns / 1024).toFixed(1),
  serverPeakRssMB: +(after.hwm / 1048576).toFixed(1),
  connectSeconds: +connectS.toFixed(2),
};
console.log(JSON.stringify(result, null, 2));
