#!/usr/bin/env node
// bench/http2: CPU per delivery of `notify swarm` SSE subscribers over HTTP/1.1+TLS vs `--http2` (streams on shared
// TLS sessions), against `notify serve --tls-cert/--tls-key` with a throwaway self-signed certificate. The two modes
// alternate for --rounds rounds, each on a fresh server; prints each run and the medians: CPU-seconds and peak RSS of
// both sides, CPU per delivery (us), p50/p99, lost. Both run as child processes; the swarm's CPU is its reaped
// children's (/proc cutime, read before the server is stopped). Usage: npm run build && flock /tmp/notify-bench.lock
// node bench/http2.mjs [--conns 1000] [--sessions 10] [--rate 20] [--duration 10] [--rounds 3]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { args, median, procStats, reapedChildrenCpu, startServe } from './lib.mjs';

const opt = args({ conns: 1000, sessions: 10, rate: 20, duration: 10, ramp: 3, drain: 3, rounds: 3, bin: 'bin/notify.js' });
const cmd = `node bench/http2.mjs --conns ${opt.conns} --sessions ${opt.sessions} --rate ${opt.rate} --duration ${opt.duration} --rounds ${opt.rounds}`;

const dir = mkdtempSync(join(tmpdir(), 'bench-http2-'));
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');
execFileSync(
  'openssl',
  [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '1',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ],
  { stdio: 'pipe' },
);

const startServer = () => startServe(opt.bin, ['--log-level', 'warn', '--unread-limit', '0', '--tls-cert', cert, '--tls-key', key]);

async function runOnce(mode) {
  const { server, url } = await startServer();
  const out = join(dir, `${mode}.json`);
  const swarmArgs = [opt.bin, 'swarm', '--url', url, '--insecure-tls', '--conns', String(opt.conns), '--transport', 'sse'];
  swarmArgs.push(
    '--ramp',
    `${opt.ramp}s`,
    '--duration',
    `${opt.duration}s`,
    '--drain',
    `${opt.drain}s`,
    '--rate',
    `${opt.rate}/s`,
    '--no-dashboard',
    '--out',
    out,
  );
  if (mode === 'http2') swarmArgs.push('--http2', '--streams-per-conn', String(Math.ceil(opt.conns / opt.sessions)));
  const server0 = procStats(server.pid).cpu;
  const cpu0 = reapedChildrenCpu();
  const swarm = spawn(process.execPath, swarmArgs, { stdio: ['ignore', 'ignore', 'inherit'] });
  let swarmPeakRss = 0;
  const sampler = setInterval(() => {
    try {
      swarmPeakRss = Math.max(swarmPeakRss, procStats(swarm.pid).rss);
    } catch {}
  }, 500);
  const code = await new Promise((resolve) => swarm.on('exit', resolve));
  clearInterval(sampler);
  const swarmCpu = reapedChildrenCpu() - cpu0;
  const s = procStats(server.pid);
  server.kill('SIGTERM');
  await new Promise((resolve) => server.on('exit', resolve));
  const t = JSON.parse(readFileSync(out, 'utf8')).summary.total;
  const delivered = t.events.delivered;
  return {
    mode,
    exitCode: code,
    delivered,
    lost: t.events.lost,
    p50: t.latency.p50,
    p99: t.latency.p99,
    swarmCpuS: +swarmCpu.toFixed(2),
    serverCpuS: +(s.cpu - server0).toFixed(2),
    swarmUsPerDelivery: +((swarmCpu / delivered) * 1e6).toFixed(1),
    serverUsPerDelivery: +(((s.cpu - server0) / delivered) * 1e6).toFixed(1),
    swarmPeakRssMB: +(swarmPeakRss / 1048576).toFixed(1),
    serverPeakRssMB: +(s.hwm / 1048576).toFixed(1),
  };
}

const runs = [];
for (let round = 1; round <= opt.rounds; round++) {
  for (const mode of round % 2 ? ['http1', 'http2'] : ['http2', 'http1']) {
    const r = await runOnce(mode);
    runs.push(r);
    console.error(JSON.stringify({ round, ...r }));
  }
}
rmSync(dir, { recursive: true, force: true });

const FIELDS = ['delivered', 'lost', 'p50', 'p99', 'swarmCpuS', 'serverCpuS', 'swarmUsPerDelivery', 'serverUsPerDelivery', 'swarmPeakRssMB', 'serverPeakRssMB'];
const medians = {};
for (const mode of ['http1', 'http2']) {
  const mine = runs.filter((r) => r.mode === mode);
  medians[mode] = Object.fromEntries(FIELDS.map((f) => [f, median(mine.map((r) => r[f]))]));
}
const ratio = (f) => +(medians.http1[f] / medians.http2[f]).toFixed(2);
console.log(
  JSON.stringify(
    {
      command: cmd,
      date: new Date().toISOString(),
      medians,
      http1OverHttp2: { swarmUsPerDelivery: ratio('swarmUsPerDelivery'), serverUsPerDelivery: ratio('serverUsPerDelivery') },
      runs,
    },
    null,
    2,
  ),
);
