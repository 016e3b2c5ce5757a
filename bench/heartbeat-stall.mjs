#!/usr/bin/env node
// bench/heartbeat-stall: what a heartbeat costs the notifications published while it is written. `notify serve` with
// --conns idle SSE subscribers (opened by this process, each reading its stream) and a short --heartbeat; one more
// subscriber of user `probe` gets a notification published every 100 ms (POST /publish, its title the send time), and
// its delivery latency is measured over --window, with the server's event-loop delay (max, from its /metrics:
// prom-client resets it at each scrape). A hub that writes every heartbeat in one go stalls for all of them; one that
// writes them in turns stalls for a slice. Servers alternate per round, a fresh process each.
// Usage: npm run build && node bench/heartbeat-stall.mjs [--conns 10000] [--heartbeat 2s] [--window 8s] [--rounds 3]
//        [--servers notify@OTHER_BIN,notify] (notify@BIN: another build, e.g. a `git archive` of the commit before)
//        [--bin bin/notify.js]
import http from 'node:http';
import net from 'node:net';
import { args, getText, median, sleep, startServe } from './lib.mjs';

const opt = args({ conns: 10000, heartbeat: '2s', window: '8s', rounds: 3, servers: 'notify', bin: 'bin/notify.js' });
const SERVERS = opt.servers.split(',');
const seconds = (d) => Number(/^(\d+(?:\.\d+)?)s$/.exec(d)?.[1] ?? NaN);
if (!Number.isFinite(seconds(opt.window)) || !Number.isFinite(seconds(opt.heartbeat))) throw new Error('--window and --heartbeat take seconds, e.g. 8s');
const cmd =
  `node bench/heartbeat-stall.mjs --conns ${opt.conns} --heartbeat ${opt.heartbeat} --window ${opt.window} --rounds ${opt.rounds}` +
  ` --servers ${opt.servers} --bin ${opt.bin}`;

const metrics = (url) => getText(`${url}/metrics`);
const metric = (text, name) => Number(new RegExp(`^notify_${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);

/** A subscriber reading `/events?user=u`; resolves once the head has come. `onData` sees every chunk. */
function subscribe(url, user, sockets, onData = () => {}) {
  const { hostname, port } = new URL(url);
  return new Promise((res, rej) => {
    const s = net.connect({ host: hostname, port: Number(port) });
    sockets.push(s);
    s.once('connect', () => s.write(`GET /events?user=${user} HTTP/1.1\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n\r\n`));
    s.once('data', (d) => (d.toString('latin1').startsWith('HTTP/1.1 200') ? res() : rej(new Error(d.toString('latin1').slice(0, 200)))));
    s.on('data', onData);
    s.once('error', rej);
  });
}

function publish(url, title) {
  const body = JSON.stringify({ user: 'probe', notification: { type: 'system', title } });
  return new Promise((res, rej) => {
    const req = http.request(`${url}/publish`, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json' } }, (r) => {
      r.resume();
      r.on('end', () => (r.statusCode === 202 ? res() : rej(new Error(`publish: ${r.statusCode}`))));
    });
    req.once('error', rej);
    req.end(body);
  });
}

async function round(kind) {
  const bin = kind.startsWith('notify@') ? kind.slice(7) : opt.bin;
  const { server, url } = await startServe(bin, ['--log-level', 'warn', '--heartbeat', opt.heartbeat]);
  const sockets = [];
  try {
    for (let i = 0; i < opt.conns; i += 200) {
      const batch = [];
      for (let j = i; j < Math.min(opt.conns, i + 200); j++) batch.push(subscribe(url, `u${j % 1000}`, sockets));
      await Promise.all(batch);
    }
    const latencies = [];
    let text = '';
    await subscribe(url, 'probe', sockets, (d) => {
      text += d.toString('utf8');
      for (let at = text.indexOf('\n\n'); at >= 0; at = text.indexOf('\n\n')) {
        const m = /"title":"sent (\d+)"/.exec(text.slice(0, at));
        if (m) latencies.push(Date.now() - Number(m[1]));
        text = text.slice(at + 2);
      }
    });
    // Every subscriber's heartbeat phase is set; the scrape resets the loop-delay figures.
    await sleep(seconds(opt.heartbeat) * 1000 + 1000);
    await metrics(url);
    const end = Date.now() + seconds(opt.window) * 1000;
    let sent = 0;
    while (Date.now() < end) {
      await publish(url, `sent ${Date.now()}`);
      sent++;
      await sleep(100);
    }
    await sleep(500);
    const m = await metrics(url);
    const sorted = latencies.slice().sort((a, b) => a - b);
    return {
      kind,
      sent,
      received: latencies.length,
      lagMaxMs: metric(m, 'nodejs_eventloop_lag_max_seconds') * 1000,
      lagP99Ms: metric(m, 'nodejs_eventloop_lag_p99_seconds') * 1000,
      latP50: sorted[Math.floor(sorted.length * 0.5)] ?? NaN,
      latMax: sorted.at(-1) ?? NaN,
    };
  } finally {
    for (const s of sockets) s.destroy();
    server.kill('SIGKILL');
    await new Promise((r) => (server.exitCode !== null ? r() : server.once('exit', r)));
  }
}

console.error(`heartbeat-stall: ${opt.rounds} rounds, alternating; ${cmd}`);
const rows = [];
for (let n = 1; n <= opt.rounds; n++)
  for (const kind of SERVERS) {
    const r = await round(kind);
    rows.push(r);
    console.error(
      `round ${n} ${kind}: loop delay max ${r.lagMaxMs.toFixed(1)} ms (p99 ${r.lagP99Ms.toFixed(1)}); probe latency p50 ${r.latP50} ms, max ${r.latMax} ms (${r.received}/${r.sent} received)`,
    );
  }
console.log(`command: ${cmd}`);
console.log(`medians of ${opt.rounds} rounds, ${opt.conns} idle SSE subscribers, --heartbeat ${opt.heartbeat}, a probe every 100 ms for ${opt.window}`);
console.log(`${'server'.padEnd(44)}${['loop max ms', 'loop p99 ms', 'probe p50 ms', 'probe max ms'].map((h) => h.padStart(14)).join('')}`);
for (const kind of SERVERS) {
  const mine = rows.filter((r) => r.kind === kind);
  const cols = ['lagMaxMs', 'lagP99Ms', 'latP50', 'latMax'].map((k) => median(mine.map((r) => r[k])));
  console.log(`${kind.slice(-43).padEnd(44)}${cols.map((v) => v.toFixed(1).padStart(14)).join('')}`);
}
