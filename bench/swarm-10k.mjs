#!/usr/bin/env node
// bench/swarm-10k: N SSE connections (default 10,000) of `notify swarm` against `notify serve`, broadcast at R/s for
// D seconds. Prints lost, p50/p99, swarm and server CPU-seconds per 100,000 delivered events, RSS per connection and
// the swarm's self-check. Both run as child processes; the swarm's CPU includes its worker processes (reaped
// children, /proc cutime). Usage: npm run build && node bench/swarm-10k.mjs [--conns 10000] [--rate 10] [--duration 60]
// [--servers 2] (one notify serve holds ~19,900 sockets at ulimit -n 20000: 20k needs two; probes go to each)
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { args, procStats, reapedChildrenCpu, startServe } from './lib.mjs';

const opt = args({ conns: 10000, rate: 10, duration: 60, ramp: 20, drain: 10, transport: 'sse', workers: 0, servers: 1, out: '/tmp/swarm-10k.json' });
const cmd = `node bench/swarm-10k.mjs --conns ${opt.conns} --rate ${opt.rate} --duration ${opt.duration} --ramp ${opt.ramp} --drain ${opt.drain} --transport ${opt.transport} --workers ${opt.workers} --servers ${opt.servers}`;

const startServer = () => startServe('bin/notify.js', ['--log-level', 'warn', '--unread-limit', '0']);
const servers = await Promise.all(Array.from({ length: opt.servers }, startServer));
const serverCpu = () => servers.reduce((a, s) => a + procStats(s.server.pid).cpu, 0);
const serverRss = () => servers.reduce((a, s) => a + procStats(s.server.pid).rss, 0);
const serverCpuBefore = serverCpu();
const serverCpuEach0 = servers.map((s) => procStats(s.server.pid).cpu);
const serverRssBefore = serverRss();

const cpu0 = reapedChildrenCpu();
const started = Date.now();
const swarmArgs = [
  'bin/notify.js',
  'swarm',
  ...servers.flatMap((s) => ['--url', s.url]),
  '--publish-to',
  'each',
  '--conns',
  String(opt.conns),
  '--transport',
  opt.transport,
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
  opt.out,
];
if (opt.workers) swarmArgs.push('--workers', String(opt.workers));
const swarm = spawn(process.execPath, swarmArgs, { stdio: ['ignore', 'ignore', 'inherit'] });
let swarmPeakRss = 0;
const sampler = setInterval(() => {
  try {
    swarmPeakRss = Math.max(swarmPeakRss, procStats(swarm.pid).rss);
  } catch {}
}, 1000);
const code = await new Promise((resolve) => swarm.on('exit', resolve));
clearInterval(sampler);
const wallS = (Date.now() - started) / 1000;
const swarmCpu = reapedChildrenCpu() - cpu0;
const serverCpuUsed = serverCpu() - serverCpuBefore;
const serverRssAfter = serverRss();
const serverEach = servers.map((s, i) => {
  const st = procStats(s.server.pid);
  return { url: s.url, cpuSeconds: +(st.cpu - serverCpuEach0[i]).toFixed(2), peakRssMB: +(st.hwm / 1048576).toFixed(1) };
});
const serverPeakRss = servers.reduce((a, s) => Math.max(a, procStats(s.server.pid).hwm), 0);
for (const s of servers) s.server.kill('SIGTERM');

const r = JSON.parse(readFileSync(opt.out, 'utf8'));
const t = r.summary.total;
const delivered = t.events.delivered;
const workerRss = r.selfCheck.workers.reduce((a, w) => a + w.rssBytes, 0);
// Time until all connections were open: the first second of the timeline with every one of them open.
const allOpen = r.timeline.find((p) => p.open >= opt.conns);
console.log(
  JSON.stringify(
    {
      command: cmd,
      exitCode: code,
      wallSeconds: +wallS.toFixed(1),
      conns: opt.conns,
      peakOpen: t.connections.peakOpen,
      failed: t.connections.failed,
      allOpenSeconds: allOpen ? allOpen.t : null,
      published: t.events.published,
      expected: t.events.expected,
      delivered,
      lost: t.events.lost,
      duplicated: t.events.duplicated,
      outOfOrder: t.events.outOfOrder,
      latencyMs: { p50: t.latency.p50, p99: t.latency.p99, max: t.latency.max },
      connectMs: { p50: t.connect.p50, p99: t.connect.p99 },
      swarmCpuSeconds: +swarmCpu.toFixed(2),
      swarmCpuSecondsPer100kDelivered: +((swarmCpu / delivered) * 1e5).toFixed(2),
      servers: opt.servers,
      serverCpuSeconds: +serverCpuUsed.toFixed(2),
      serverCpuSecondsPer100kDelivered: +((serverCpuUsed / delivered) * 1e5).toFixed(2),
      swarmWorkers: r.selfCheck.workers.length,
      swarmWorkerRssPerConnKB: +(workerRss / opt.conns / 1024).toFixed(1),
      swarmPeakRssMB: +(swarmPeakRss / 1048576).toFixed(1),
      serverRssPerConnKB: +((serverRssAfter - serverRssBefore) / opt.conns / 1024).toFixed(1),
      serverPeakRssMB: +(serverPeakRss / 1048576).toFixed(1),
      serverEach,
      selfCheck: {
        saturated: r.selfCheck.saturated,
        warning: r.selfCheck.warning,
        bottleneck: r.selfCheck.bottleneck,
        sides: r.selfCheck.sides,
        workers: r.selfCheck.workers.map((w) => ({ eldP99Ms: +w.eldP99Ms.toFixed(1), cpuMean: +w.cpuMean.toFixed(2), cpuMax: +w.cpuMax.toFixed(2) })),
      },
    },
    null,
    2,
  ),
);
