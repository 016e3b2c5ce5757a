#!/usr/bin/env node
// bench/brokers: what sharing through a broker costs. `notify serve --broker memory` (1 gateway) vs redis (2 gateways
// on one redis-server) vs nats (2 gateways on one nats-server with JetStream), each under one `notify swarm` of N SSE
// subscribers spread over the gateways (probes published to the first), in alternating runs, median of R.
// Per run: deliveries/s, gateway CPU-seconds per delivery, broker CPU (redis-server / nats-server), p99, lost, peak
// RSS. The CPU window is measured, not assumed: the gateways' /metrics and /proc are sampled every 100 ms, and the
// window runs from the first accepted publish (notify_published_total > 0) to the last delivery (the sample where
// notify_delivered_total reached its final value), so the ramp, the swarm's drain and its exit are left out.
// `--big`: 40,000 SSE subscribers over 3 gateways + Redis, several swarm worker processes (ulimit -n is per process)
// and source addresses 127.0.0.1-4.
// Usage: npm run build && node bench/brokers.mjs [--conns 5000] [--rate 10] [--duration 10] [--runs 3] [--big 1]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { args, median, procStats, sleep, startServe } from './lib.mjs';

const opt = args({
  conns: 5000,
  rate: 10,
  duration: 10,
  ramp: 5,
  drain: 5,
  runs: 3,
  modes: 'memory,redis,nats',
  gateways: 2,
  big: 0,
  workers: 0,
  localAddress: '',
});
if (opt.big)
  Object.assign(opt, {
    conns: 40000,
    rate: 1,
    duration: 20,
    ramp: 40,
    drain: 10,
    runs: 1,
    modes: 'redis',
    gateways: 3,
    workers: 3,
    localAddress: '127.0.0.1-127.0.0.4',
  });
const cmd = `node bench/brokers.mjs ${process.argv.slice(2).join(' ')}`.trim();

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** redis-server or nats-server on a free port, resolved once it accepts connections; with its pid for /proc. */
async function startBroker(kind, dir) {
  const port = await freePort();
  const [bin, argv, url] =
    kind === 'redis'
      ? ['redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], `redis://127.0.0.1:${port}`]
      : ['nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], `nats://127.0.0.1:${port}`];
  const proc = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const ready = kind === 'redis' ? /Ready to accept connections/ : /Server is ready/;
  for (let i = 0; i < 100 && !ready.test(out); i++) await sleep(50);
  if (!ready.test(out)) throw new Error(`${bin} did not start: ${out}`);
  return { proc, url };
}

/** Sum of a counter's samples (all labels) in a Prometheus text. */
function counter(text, name) {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

async function runOnce(mode) {
  const dir = mkdtempSync(join(tmpdir(), 'notify-bench-brokers-'));
  const broker = mode === 'memory' ? undefined : await startBroker(mode, dir);
  const n = mode === 'memory' ? 1 : opt.gateways;
  const gws = await Promise.all(
    Array.from({ length: n }, () => startServe('bin/notify.js', ['--log-level', 'warn', '--unread-limit', '0', ...(broker ? ['--broker', broker.url] : [])])),
  );
  const out = join(dir, 'result.json');
  const swarmArgs = ['bin/notify.js', 'swarm', ...gws.flatMap((g) => ['--url', g.url]), '--publish-to', 'first', '--conns', String(opt.conns)];
  swarmArgs.push('--transport', 'sse', '--ramp', `${opt.ramp}s`, '--duration', `${opt.duration}s`, '--drain', `${opt.drain}s`, '--rate', `${opt.rate}/s`);
  swarmArgs.push('--no-dashboard', '--out', out);
  if (opt.workers) swarmArgs.push('--workers', String(opt.workers));
  if (opt.localAddress) swarmArgs.push('--local-address', opt.localAddress);

  // Samples: time, gateways' CPU and counters, broker CPU, every 100 ms until the swarm exits.
  const samples = [];
  let done = false;
  const sampling = (async () => {
    while (!done) {
      const at = performance.now();
      const texts = await Promise.all(
        gws.map((g) =>
          fetch(`${g.url}/metrics`).then(
            (r) => r.text(),
            () => '',
          ),
        ),
      );
      samples.push({
        at,
        gwCpu: gws.reduce((a, g) => a + procStats(g.server.pid).cpu, 0),
        brokerCpu: broker ? procStats(broker.proc.pid).cpu : 0,
        published: texts.reduce((a, t) => a + counter(t, 'notify_published_total'), 0),
        delivered: texts.reduce((a, t) => a + counter(t, 'notify_delivered_total'), 0),
      });
      await sleep(100 - (performance.now() - at));
    }
  })();
  const swarm = spawn(process.execPath, swarmArgs, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  swarm.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const code = await new Promise((resolve) => swarm.on('exit', resolve));
  done = true;
  await sampling;
  const atExit = samples.at(-1);
  // What the gateways deliver after the swarm is gone: written into sockets the swarm no longer reads.
  await sleep(1000);
  const texts = await Promise.all(
    gws.map((g) =>
      fetch(`${g.url}/metrics`).then(
        (r) => r.text(),
        () => '',
      ),
    ),
  );
  const deliveredLater = texts.reduce((a, t) => a + counter(t, 'notify_delivered_total'), 0);
  const gwPeakRss = Math.max(...gws.map((g) => procStats(g.server.pid).hwm));
  const brokerPeakRss = broker ? procStats(broker.proc.pid).hwm : 0;
  for (const g of gws) g.server.kill('SIGTERM');
  broker?.proc.kill('SIGTERM');
  await sleep(300);
  const r = JSON.parse(readFileSync(out, 'utf8'));
  rmSync(dir, { recursive: true, force: true });

  const first = samples.find((s) => s.published > 0) ?? samples[0];
  const final = atExit.delivered;
  const last = samples.find((s) => s.delivered >= final) ?? atExit;
  // The window starts at the sample before the first publish (the publish happened in between).
  const start = samples[Math.max(0, samples.indexOf(first) - 1)];
  const windowS = (last.at - start.at) / 1000;
  const delivered = last.delivered - start.delivered;
  const gwCpu = last.gwCpu - start.gwCpu;
  const t = r.summary.total;
  return {
    mode,
    exitCode: code,
    gateways: n,
    published: t.events.published,
    expected: t.events.expected,
    swarmDelivered: t.events.delivered,
    lost: t.events.lost,
    peakOpen: t.connections.peakOpen,
    failed: t.connections.failed,
    reconnects: t.connections.reconnects,
    errors: t.errors,
    connsTimesProbes: opt.conns * t.events.published,
    gwDeliveredAtSwarmExit: final,
    gwDeliveredAfterExit: deliveredLater,
    windowS: +windowS.toFixed(2),
    deliveriesPerS: Math.round(delivered / windowS),
    gwCpuS: +gwCpu.toFixed(2),
    gwCpuUsPerDelivery: +((gwCpu / delivered) * 1e6).toFixed(2),
    brokerCpuS: +(last.brokerCpu - start.brokerCpu).toFixed(2),
    p99Ms: t.latency.p99,
    gwPeakRssMB: +(gwPeakRss / 1048576).toFixed(0),
    brokerPeakRssMB: +(brokerPeakRss / 1048576).toFixed(0),
    saturated: r.selfCheck.saturated,
    ...(code === 0 ? {} : { stderr }),
  };
}

const modes = opt.modes.split(',');
const runs = Object.fromEntries(modes.map((m) => [m, []]));
for (let k = 0; k < opt.runs; k++) {
  // Alternating: memory, redis, nats, memory, ... so a noisy stretch of the machine hits every mode.
  for (const m of modes) {
    const one = await runOnce(m);
    runs[m].push(one);
    console.error(JSON.stringify(one));
  }
}
const keys = ['deliveriesPerS', 'gwCpuUsPerDelivery', 'brokerCpuS', 'p99Ms', 'lost', 'gwPeakRssMB', 'brokerPeakRssMB', 'windowS'];
const summary = Object.fromEntries(modes.map((m) => [m, Object.fromEntries(keys.map((key) => [key, median(runs[m].map((x) => x[key]))]))]));
console.log(JSON.stringify({ command: cmd, conns: opt.conns, rate: opt.rate, durationS: opt.duration, runs: opt.runs, median: summary, all: runs }, null, 2));
