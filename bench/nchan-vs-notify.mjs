#!/usr/bin/env node
// bench/nchan-vs-notify: the same `notify swarm` load against nchan (nginx-light + libnginx-mod-nchan serving
// docs/nchan.conf, `--target nchan`) and against `notify serve`, side by side in one run, alternating
// (nchan, notify, nchan, notify, ...), a fresh server per round (nchan's shared memory keeps messages, notify its
// history). Per round: server CPU-seconds over the whole swarm run (nginx: master + workers; notify serve: its pid,
// from /proc), server peak RSS (VmHWM, summed over nginx's processes), deliveries (the result's
// summary.total.events.delivered), server CPU us per delivery, the same over the publishing window alone ("pub
// us/deliv": the ramp's connection set-up and the drain left out; "ramp cpu s" and "tail cpu s" are the server CPU
// before and after that window), latency p50/p99, lost, duplicated, and the swarm's own
// CPU-seconds (the swarm child and its workers, once reaped: this process's cutime + cstime across the run). Prints
// every round, then the medians per server and the ratio notify/nchan.
// Usage: npm run build && node bench/nchan-vs-notify.mjs [--rounds 3] [--conns 2000] [--users 200] [--ramp 5s]
//        [--duration 15s] [--rate 20/s] [--user-rate 100/s] [--drain 2s] [--transport sse] [--bin bin/notify.js]
//        [--servers nchan,notify] (the order within a round; one of them alone to try a setup; notify@BIN is notify
//        from another build, notify+--batch=5ms one with extra serve flags, notify+node:--max-semi-space-size=1 one
//        with a node flag, notify+env:MALLOC_ARENA_MAX=2 one with an environment variable (parts combine:
//        notify@BIN+env:A=1+--batch=5ms), so before/after alternate in one run)
//        [--keep DIR] (copy each round's result file there, e.g. to look into a round with lost > 0)
//        [--workers 0] (the swarm's worker processes; 2 at 10,000 connections) [--serve-args '--batch 5ms']
//        [--idle N[,N2...]] (instead of a swarm: idle subscribers of --transport opened by this process, each reading
//        its stream, nothing published; one server process per round holds first N, then N2, ... (opened on top),
//        its memory read 2 s after each step: per idle connection, at each N (X(N) - X(0)) / N, and the slope
//        (X(N2) - X(N)) / (N2 - N), which leaves out what grows once whatever the count (V8's new space, code,
//        arenas); X is VmRSS and smaps_rollup's Anonymous (summed over nginx's processes), and for notify the V8
//        heap from its /metrics: live JS heap, V8 slack (committed - used) and native (Anonymous - V8 committed))
//        [--idle-rate 0] (with --idle: open them at N/s, as a swarm's ramp does; 0: in bursts of 200), and the server's
//        CPU per connection opened at each step (first connect to last head)
//        [--publish N] (instead of a swarm: no subscriber; the server idles for --idle-for, then takes 200 publishes
//        to warm up and N more at --rate (a swarm's mix: every sixth a broadcast, the rest to one of --users users;
//        nchan: POST /pub/broadcast or /pub/user/<u>, notify: POST /publish with a one-request array), each over the
//        keep-alive connections of one undici Pool as the swarm's publisher sends them; prints the server's CPU per
//        second idle and per publish) [--idle-for 5s]
// Needs nginx (Debian nginx-light) and ngx_nchan_module.so (libnginx-mod-nchan); `ulimit -n` of ~5,000 or more.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Pool } from 'undici';
import { args, drainTimeWait, GATEWAY_LOAD, getText, median, procCpuSplit, procStats, reapedChildrenCpu, sleep, smapsRollup, startServe } from './lib.mjs';

const opt = args({
  rounds: 3,
  ...GATEWAY_LOAD,
  transport: 'sse',
  servers: 'nchan,notify',
  keep: '',
  bin: 'bin/notify.js',
  workers: 0,
  serveArgs: '',
  idle: '0',
  idleRate: '0',
  publish: 0,
  idleFor: '5s',
});
const SERVERS = opt.servers.split(',');
/**
 * A server kind: `nchan`, or `notify[@BIN][+PART]...`: notify@path/to/notify.js is notify serve from another build
 * (before/after in one run); each PART adds a serve flag (`+--batch=5ms`), a node flag for the serve process
 * (`+node:--max-semi-space-size=1`) or an environment variable (`+env:MALLOC_ARENA_MAX=2`).
 */
function parseKind(kind) {
  const [head, ...parts] = kind.split('+');
  const serve = [];
  const nodeArgs = [];
  const env = {};
  for (const p of parts) {
    if (p.startsWith('node:')) nodeArgs.push(p.slice(5));
    else if (p.startsWith('env:')) {
      const [k, ...v] = p.slice(4).split('=');
      env[k] = v.join('=');
    } else serve.push(...p.split('='));
  }
  return { bin: head.startsWith('notify@') ? head.slice(7) : opt.bin, serve, nodeArgs, env };
}
const binOf = (kind) => parseKind(kind).bin;
const serveArgsOf = (kind) => [...opt.serveArgs.split(' '), ...parseKind(kind).serve].filter(Boolean);
/** `--idle-rate 400/s`: idle subscribers opened at that steady rate; 0 (default): in bursts of 200. */
const IDLE_RATE = String(opt.idleRate) === '0' ? 0 : Number(/^(\d+)\/s$/.exec(String(opt.idleRate))?.[1] ?? NaN);
if (!Number.isFinite(IDLE_RATE)) throw new Error(`--idle-rate must be N/s (got ${opt.idleRate})`);
/** `--idle 2000,8000`: the connection counts one idle round holds in turn (ascending). */
const IDLE = String(opt.idle)
  .split(',')
  .map(Number)
  .filter((n) => n > 0)
  .sort((a, b) => a - b);
const cmd =
  `node bench/nchan-vs-notify.mjs --rounds ${opt.rounds} --conns ${opt.conns} --users ${opt.users} --ramp ${opt.ramp} --duration ${opt.duration}` +
  ` --rate ${opt.rate} --user-rate ${opt.userRate} --drain ${opt.drain} --transport ${opt.transport} --servers ${opt.servers} --bin ${opt.bin}${opt.keep ? ` --keep ${opt.keep}` : ''}` +
  `${opt.workers ? ` --workers ${opt.workers}` : ''}${opt.serveArgs ? ` --serve-args '${opt.serveArgs}'` : ''}${IDLE.length ? ` --idle ${opt.idle}${IDLE_RATE > 0 ? ` --idle-rate ${opt.idleRate}` : ''}` : ''}` +
  `${opt.publish ? ` --publish ${opt.publish} --idle-for ${opt.idleFor}` : ''}`;
const NCHAN_CONF = resolve('docs/nchan.conf');
const MODULE_CANDIDATES = ['/usr/lib/nginx/modules/ngx_nchan_module.so', '/usr/share/nginx/modules/ngx_nchan_module.so'];

const work = mkdtempSync(join(tmpdir(), 'notify-bench-nchan-'));
/** Every child still running: killed (the whole process group for nginx) on any way out. */
const live = new Set();
function killAll() {
  for (const c of live) {
    try {
      if (c.group) process.kill(-c.proc.pid, 'SIGKILL');
      else c.proc.kill('SIGKILL');
    } catch {}
  }
  live.clear();
}
process.on('exit', () => {
  killAll();
  rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

function track(proc, group = false) {
  const entry = { proc, group, exited: new Promise((r) => proc.once('exit', r)) };
  if (proc.exitCode !== null || proc.signalCode !== null) return entry;
  live.add(entry);
  void entry.exited.then(() => live.delete(entry));
  return entry;
}

/** SIGTERM, then SIGKILL (to the group for nginx) after `graceMs`; resolves once it has exited. */
async function stop(entry, graceMs = 3000) {
  if (!live.has(entry)) return;
  entry.proc.kill('SIGTERM');
  const timer = setTimeout(() => {
    try {
      if (entry.group) process.kill(-entry.proc.pid, 'SIGKILL');
      else entry.proc.kill('SIGKILL');
    } catch {}
  }, graceMs);
  await entry.exited;
  clearTimeout(timer);
}

function nchanModule() {
  const found = MODULE_CANDIDATES.find((p) => existsSync(p));
  if (found) return found;
  const enabled = '/etc/nginx/modules-enabled';
  for (const f of existsSync(enabled) ? readdirSync(enabled) : []) {
    const m = /load_module\s+(\S+nchan\S*\.so)\s*;/.exec(readFileSync(join(enabled, f), 'utf8'));
    if (m) return m[1].startsWith('/') ? m[1] : `/usr/share/nginx/${m[1]}`;
  }
  throw new Error('ngx_nchan_module.so not found: apt-get install nginx-light libnginx-mod-nchan');
}

function freePort() {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

const tcpAccepts = (port) =>
  new Promise((res, rej) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), res()));
    s.once('error', rej);
  });

function nginxConf(dir, port) {
  // As root, nginx's workers would switch to `nobody`, who cannot write to this 0700 temp dir.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  // One worker holds every subscriber (plus the publisher's connections): room for 4x the swarm's connections.
  const conns = Math.max(4096, opt.conns * 4, (IDLE.at(-1) ?? 0) + 1024);
  return `load_module ${nchanModule()};
${user}worker_processes 1;
worker_rlimit_nofile ${conns + 1024};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log notice;
error_log stderr warn;
events {
  worker_connections ${conns};
  multi_accept on;
}
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    include ${NCHAN_CONF};
  }
}
`;
}

/** nginx + nchan in a fresh temp dir on a free port, ready once it accepts connections. */
async function startNchan(round) {
  const dir = join(work, `nchan-${round}`);
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, port));
    const proc = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
      cwd: dir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const entry = track(proc, true);
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    proc.once('error', (e) => (out += `spawn failed: ${e.message}`));
    const deadline = Date.now() + 10_000;
    let ready = false;
    while (!ready && live.has(entry) && Date.now() < deadline) {
      ready = await tcpAccepts(port).then(
        () => true,
        () => false,
      );
      if (!ready) await sleep(20);
    }
    // Its worker(s) must be up too: they are what gets measured.
    while (ready && workersOf(proc.pid).length === 0 && Date.now() < deadline) await sleep(20);
    if (ready && workersOf(proc.pid).length > 0) return { entry, pids: () => [proc.pid, ...workersOf(proc.pid)], url: `http://127.0.0.1:${port}` };
    await stop(entry);
    if (attempt >= 3 || !/Address already in use/.test(out)) throw new Error(`nginx did not start on 127.0.0.1:${port}: ${out.slice(-2000)}`);
  }
}

function workersOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function serverStats(pids) {
  let cpu = 0;
  let sys = 0;
  let hwm = 0;
  const hwmEach = [];
  for (const pid of pids) {
    const s = procStats(pid);
    cpu += s.cpu;
    sys += procCpuSplit(pid).sys;
    hwm += s.hwm;
    hwmEach.push(s.hwm);
  }
  return { cpu, sys, hwm, hwmEach };
}

const seconds = (d) => Number(/^(\d+(?:\.\d+)?)s$/.exec(d)?.[1] ?? NaN);

/** One `notify swarm` child against `url`; resolves with its result file and exit code (bounded by a timeout). */
async function swarm(kind, url, out) {
  const argv = [opt.bin, 'swarm', ...(kind === 'nchan' ? ['--target', 'nchan'] : []), '--url', url, '--conns', String(opt.conns), '--users', String(opt.users)];
  argv.push('--ramp', opt.ramp, '--duration', opt.duration, '--rate', opt.rate, '--user-rate', opt.userRate, '--drain', opt.drain);
  argv.push('--transport', opt.transport, '--no-dashboard', '--out', out);
  if (opt.workers) argv.push('--workers', String(opt.workers));
  const proc = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  const entry = track(proc);
  let err = '';
  proc.stderr.on('data', (d) => (err = (err + d).slice(-20_000)));
  const limitMs = (seconds(opt.ramp) + seconds(opt.duration) + seconds(opt.drain) + 90) * 1000;
  const timer = setTimeout(() => proc.kill('SIGKILL'), Number.isFinite(limitMs) ? limitMs : 180_000);
  const code = await new Promise((r) => proc.once('exit', (c, s) => r(c ?? s)));
  await entry.exited;
  clearTimeout(timer);
  if (!existsSync(out)) throw new Error(`swarm (${kind}) exited ${code} without a result; stderr:\n${err.slice(-3000)}`);
  return { code, result: JSON.parse(readFileSync(out, 'utf8')), stderr: err, argv };
}

/**
 * Before every round: the closes of the round before may have left tens of thousands of sockets in TIME_WAIT, each
 * holding an ephemeral port, and a round that starts then fails its connects with EADDRNOTAVAIL. The idle rounds
 * avoid most of it (the server closes first, see idleRound); this waits out what is left, anyone's.
 */
async function settleTimeWait() {
  const tw = await drainTimeWait(TIME_WAIT_MAX);
  if (tw > TIME_WAIT_MAX) throw new Error(`${tw} sockets still in TIME_WAIT after 90 s: connects would fail with EADDRNOTAVAIL`);
}
/** Ephemeral ports 32768-60999: room for a round of 10,000 connections plus the publisher's beside what is waiting. */
const TIME_WAIT_MAX = 12_000;

/** nchan, or a notify serve build with its extra flags: `{entry, pids(), url}`. */
async function startServer(kind, n) {
  await settleTimeWait();
  if (kind === 'nchan') return startNchan(n);
  const { nodeArgs, env } = parseKind(kind);
  const { server: proc, url } = await startServe(binOf(kind), ['--log-level', 'warn', ...serveArgsOf(kind)], { nodeArgs, env });
  return { entry: track(proc), pids: () => [proc.pid], url };
}

const CPU_SAMPLE_MS = 250;

/** The server's CPU-seconds at wall time `at`, interpolated between the samples around it. */
function cpuAt(samples, at) {
  const i = samples.findIndex((x) => x.at >= at);
  if (i <= 0) return NaN;
  const a = samples[i - 1];
  const b = samples[i];
  return a.cpu + ((b.cpu - a.cpu) * (at - a.at)) / Math.max(1, b.at - a.at);
}

/**
 * CPU per delivery over the publishing window only, the whole seconds after the ramp up to the end of --duration
 * (the swarm's timeline: its second t covers (t - 1, t] since its start, t0 = startedAt + 300 ms, src/swarm/run.ts):
 * the server's CPU between those instants over the deliveries the timeline counts in those seconds. Connection set-up
 * (the ramp) and the drain are left out, so this is the steady fan-out's cost; the whole-run figure counts both.
 */
function publishingWindow(result, samples) {
  const t0 = Date.parse(result.startedAt) + 300;
  const from = Math.ceil(seconds(opt.ramp)) + 1;
  const to = Math.floor(seconds(opt.ramp) + seconds(opt.duration));
  const points = result.timeline.filter((p) => p.t >= from && p.t <= to);
  const delivered = points.reduce((a, p) => a + p.delivered, 0);
  const start = cpuAt(samples, t0 + (from - 1) * 1000);
  const end = cpuAt(samples, t0 + to * 1000);
  const cpu = end - start;
  return {
    pubCpuS: cpu,
    pubUsPerDelivery: delivered > 0 ? (cpu / delivered) * 1e6 : NaN,
    // Before the window (start-up of the swarm, the ramp's connection set-ups) and after it (drain, closes).
    rampCpuS: start - samples[0].cpu,
    tailCpuS: samples.at(-1).cpu - end,
  };
}

async function round(kind, n) {
  const server = await startServer(kind, n);
  try {
    const pids = server.pids();
    const before = serverStats(pids);
    const swarmCpu0 = reapedChildrenCpu();
    const out = join(work, `${kind.replace(/[^A-Za-z0-9]+/g, '_')}-${n}.json`);
    // The server's CPU through the run, for its share in the publishing window alone (see publishingWindow).
    const samples = [];
    const sample = () => samples.push({ at: Date.now(), cpu: serverStats(pids).cpu });
    sample();
    const sampler = setInterval(sample, CPU_SAMPLE_MS);
    let run;
    try {
      run = await swarm(kind, server.url, out);
    } finally {
      clearInterval(sampler);
      sample();
    }
    if (opt.keep) {
      mkdirSync(opt.keep, { recursive: true });
      copyFileSync(out, join(opt.keep, `${kind.replace(/[^A-Za-z0-9]+/g, '_')}-${n}.json`));
    }
    const swarmCpu = reapedChildrenCpu() - swarmCpu0;
    const after = serverStats(pids);
    const t = run.result.summary.total;
    const cpu = after.cpu - before.cpu;
    const sc = run.result.selfCheck.workers;
    return {
      kind,
      round: n,
      exit: run.code,
      command: `node ${run.argv.join(' ')}`,
      expected: t.events.expected,
      delivered: t.events.delivered,
      lost: t.events.lost,
      duplicated: t.events.duplicated,
      outOfOrder: t.events.outOfOrder,
      misrouted: t.events.misrouted,
      errors: t.errors,
      p50: t.latency.p50,
      p99: t.latency.p99,
      serverCpuS: cpu,
      serverUsPerDelivery: (cpu / t.events.delivered) * 1e6,
      ...publishingWindow(run.result, samples),
      serverSysShare: (after.sys - before.sys) / cpu,
      serverPeakRssMB: after.hwm / 1048576,
      serverPeakRssEachMB: after.hwmEach.map((b) => b / 1048576),
      swarmCpuS: swarmCpu,
      swarmWorkers: sc.length,
      swarmCpuMeanShare: sc.reduce((a, w) => a + w.cpuMean, 0),
      swarmCpuMaxShare: Math.max(...sc.map((w) => w.cpuMax)),
      swarmEldP99Ms: Math.max(...sc.map((w) => w.eldP99Ms)),
      saturated: run.result.selfCheck.saturated,
      problems: run.result.problems,
      publisher: run.result.publisher,
    };
  } finally {
    await stop(server.entry);
  }
}

/** One idle subscriber of `kind`'s endpoint for user `u`: resolves once the response head (200 or 101) has arrived. */
function idleSubscriber(kind, url, u, sockets) {
  const { hostname, port } = new URL(url);
  const path = kind === 'nchan' ? `/sub/both/u${u}` : opt.transport === 'ws' ? `/ws?user=u${u}` : `/events?user=u${u}`;
  const head =
    opt.transport === 'ws'
      ? `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
        (kind === 'nchan' ? 'Sec-WebSocket-Protocol: ws+meta.nchan\r\n' : '')
      : 'Accept: text/event-stream\r\n';
  return new Promise((res, rej) => {
    const s = net.connect({ host: hostname, port: Number(port) });
    sockets.push(s);
    s.once('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\n${head}\r\n`));
    s.once('data', (d) => (/^HTTP\/1\.1 (200|101)/.test(d.toString('latin1')) ? res() : rej(new Error(`${kind}: ${d.toString('latin1').slice(0, 200)}`))));
    s.on('data', () => {}); // keep reading: idle, not stalled
    s.once('error', rej);
  });
}

/** The V8 heap figures notify serve's /metrics exposes (prom-client's default metrics), in bytes; {} for nchan. */
async function v8Heap(kind, url) {
  if (kind === 'nchan') return {};
  const text = await getText(`${url}/metrics`);
  const metric = (name) => Number(new RegExp(`^notify_${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  const out = {
    heapTotal: metric('nodejs_heap_size_total_bytes'),
    heapUsed: metric('nodejs_heap_size_used_bytes'),
    external: metric('nodejs_external_memory_bytes'),
  };
  for (const m of text.matchAll(/^notify_nodejs_heap_space_size_total_bytes\{space="(\w+)"\} (\S+)/gm)) out[`space:${m[1]}`] = Number(m[2]);
  return out;
}

/** Server memory now: VmRSS and smaps_rollup's Anonymous summed over its processes, and notify's V8 heap figures. */
async function memory(kind, server) {
  const pids = server.pids();
  const mem = { rss: 0, anonymous: 0 };
  for (const pid of pids) {
    mem.rss += procStats(pid).rss;
    mem.anonymous += smapsRollup(pid).anonymous;
  }
  return { ...mem, ...(await v8Heap(kind, server.url)) };
}

/**
 * One server process: its memory with no subscriber, then with IDLE[0] idle subscribers, then (more opened) with
 * IDLE[1], ..., each read 2 s after the last one connected.
 */
async function idleRound(kind, n) {
  const server = await startServer(kind, n);
  const sockets = [];
  try {
    await sleep(500);
    const samples = [{ conns: 0, ...(await memory(kind, server)) }];
    const pids = server.pids();
    for (const target of IDLE) {
      const cpu0 = serverStats(pids).cpu;
      const opened = [];
      if (IDLE_RATE > 0) {
        // A steady arrival, as a swarm's ramp: a tenth of a second's share every 10 ms.
        for (let i = sockets.length; i < target;) {
          for (const end = Math.min(target, i + Math.max(1, Math.round(IDLE_RATE / 100))); i < end; i++)
            opened.push(idleSubscriber(kind, server.url, i % opt.users, sockets));
          await sleep(10);
        }
        await Promise.all(opened);
      } else {
        for (let i = sockets.length; i < target; i += 200) {
          const batch = [];
          for (let j = i; j < Math.min(target, i + 200); j++) batch.push(idleSubscriber(kind, server.url, j % opt.users, sockets));
          await Promise.all(batch);
        }
      }
      // The server's CPU for the connections of this step, from the first connect to the last head.
      const openCpuS = serverStats(pids).cpu - cpu0;
      await sleep(2000);
      samples.push({ conns: target, openCpuS, ...(await memory(kind, server)) });
    }
    return { kind, round: n, samples };
  } finally {
    // The server closes first, so the TIME_WAIT of every connection is on its side (on its one listening port), not
    // on N of the client's ephemeral ports, which the next round needs. The client closes on the server's FIN.
    for (const s of sockets) s.once('end', () => s.destroy());
    await stop(server.entry);
    await Promise.race([Promise.all(sockets.map((s) => (s.destroyed ? undefined : new Promise((r) => s.once('close', r))))), sleep(5000)]);
    for (const s of sockets) s.destroy();
  }
}

/**
 * The parts of a memory sample that connections grow: `rss`; `anonymous` of it; and for notify the anonymous bytes
 * split into the live JS heap (`heapUsed`), V8's committed pages above it (`v8Slack` = heapTotal - heapUsed) and
 * everything outside V8's heap (`native` = anonymous - heapTotal: libuv/node handles, malloc arenas, Buffers).
 */
const PARTS = {
  rss: (m) => m.rss,
  anonymous: (m) => m.anonymous,
  heapUsed: (m) => m.heapUsed,
  v8Slack: (m) => m.heapTotal - m.heapUsed,
  native: (m) => m.anonymous - m.heapTotal,
  external: (m) => m.external,
};
const KB = 1024;
/** Per connection (KB): from no subscriber to each N (`at N`), and between consecutive Ns (`slope N1-N2`). */
function perConn(samples, part) {
  const x = samples.map((m) => PARTS[part](m));
  const out = {};
  for (let i = 1; i < samples.length; i++) out[`at ${samples[i].conns}`] = (x[i] - x[0]) / KB / samples[i].conns;
  for (let i = 2; i < samples.length; i++)
    out[`slope ${samples[i - 1].conns}-${samples[i].conns}`] = (x[i] - x[i - 1]) / KB / (samples[i].conns - samples[i - 1].conns);
  return out;
}

if (IDLE.length) {
  console.error(`nchan-vs-notify (idle): ${opt.rounds} rounds each, alternating; ${cmd}`);
  const rows = [];
  const mb = (v) => (Number.isFinite(v) ? (v / 1048576).toFixed(1) : '-');
  try {
    for (let n = 1; n <= opt.rounds; n++)
      for (const kind of SERVERS) {
        const r = await idleRound(kind, n);
        rows.push(r);
        const rss = perConn(r.samples, 'rss');
        console.error(
          `round ${n} ${kind}: ` +
            r.samples
              .map(
                (m) =>
                  `${m.conns}: RSS ${mb(m.rss)} anon ${mb(m.anonymous)}${kind === 'nchan' ? '' : ` heap ${mb(m.heapUsed)}/${mb(m.heapTotal)} ext ${mb(m.external)}`} MB`,
              )
              .join('; ') +
            ` => RSS KB/conn ${Object.entries(rss)
              .map(([k, v]) => `${k} ${v.toFixed(2)}`)
              .join(', ')}`,
        );
        const spaces = Object.keys(r.samples[0]).filter((k) => k.startsWith('space:'));
        if (spaces.length)
          console.error(
            `  V8 spaces (committed MB, ${r.samples.map((m) => m.conns).join(' / ')} conns): ${spaces.map((k) => `${k.slice(6)} ${r.samples.map((m) => mb(m[k])).join('/')}`).join(', ')}`,
          );
      }
  } finally {
    killAll();
  }
  console.log(`command: ${cmd}`);
  console.log(`medians of ${opt.rounds} rounds, KB per idle ${opt.transport} connection (at N: (X(N) - X(0)) / N; slope: (X(N2) - X(N1)) / (N2 - N1))`);
  const cols = Object.keys(perConn(rows[0].samples, 'rss'));
  console.log(`${'server'.padEnd(44)}${'part'.padEnd(11)}${cols.map((c) => c.padStart(17)).join('')}`);
  const med = {};
  for (const kind of SERVERS) {
    const mine = rows.filter((r) => r.kind === kind);
    for (const part of kind === 'nchan' ? ['rss', 'anonymous'] : Object.keys(PARTS)) {
      const each = mine.map((r) => perConn(r.samples, part));
      const m = Object.fromEntries(cols.map((c) => [c, median(each.map((e) => e[c]))]));
      if (part === 'rss') med[kind] = m;
      console.log(`${kind.slice(-43).padEnd(44)}${part.padEnd(11)}${cols.map((c) => m[c].toFixed(2).padStart(17)).join('')}`);
    }
  }
  for (const k of SERVERS.slice(1))
    console.log(
      `${`${k.slice(-30)}/${SERVERS[0].slice(-12)}`.padEnd(44)}${'rss'.padEnd(11)}${cols.map((c) => (med[k][c] / med[SERVERS[0]][c]).toFixed(2).padStart(17)).join('')}`,
    );
  const steps = rows[0].samples.slice(1).map((m, i) => `${i === 0 ? 0 : IDLE[i - 1]}-${m.conns}`);
  console.log(
    `\nmedians of ${opt.rounds} rounds, server CPU us per connection opened (first connect to last head, ${IDLE_RATE > 0 ? `${IDLE_RATE}/s` : 'bursts of 200'})`,
  );
  console.log(`${'server'.padEnd(44)}${steps.map((c) => c.padStart(17)).join('')}`);
  const openUs = {};
  for (const kind of SERVERS) {
    const mine = rows.filter((r) => r.kind === kind);
    openUs[kind] = steps.map((_, i) => median(mine.map((r) => (r.samples[i + 1].openCpuS / (r.samples[i + 1].conns - r.samples[i].conns)) * 1e6)));
    console.log(`${kind.slice(-43).padEnd(44)}${openUs[kind].map((v) => v.toFixed(1).padStart(17)).join('')}`);
  }
  for (const k of SERVERS.slice(1))
    console.log(
      `${`${k.slice(-30)}/${SERVERS[0].slice(-12)}`.padEnd(44)}${openUs[k].map((v, i) => (v / openUs[SERVERS[0]][i]).toFixed(2).padStart(17)).join('')}`,
    );
  process.exit(0);
}

/** Per second, as `--rate 120/s` says. */
const perSecond = (rate) => {
  const n = Number(/^(\d+(?:\.\d+)?)\/s$/.exec(String(rate))?.[1] ?? NaN);
  if (!(n > 0)) throw new Error(`--rate must be N/s (got ${rate})`);
  return n;
};

/** Publish number `i` of a `--publish` round to `kind`, over `pool`; rejects unless the server took it. */
async function publishOne(kind, pool, i) {
  const user = `u${i % opt.users}`;
  const broadcast = i % 6 === 0;
  const probe = `{"run":"bench","seq":${i},"t":${Date.now()}}`;
  const request =
    kind === 'nchan'
      ? {
          path: broadcast ? '/pub/broadcast' : `/pub/user/${user}`,
          body: `{"id":"bench-${i}","type":"system","title":"swarm probe","body":"","data":{"probe":${probe}},"createdAt":"${new Date().toISOString()}"}`,
        }
      : {
          path: '/publish',
          body: `[{${broadcast ? '"broadcast":true' : `"user":"${user}"`},"notification":{"type":"system","title":"swarm probe","body":"","data":{"probe":${probe}}}}]`,
        };
  const res = await pool.request({ method: 'POST', headers: { 'content-type': 'application/json' }, ...request });
  await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${kind}: POST ${request.path} answered ${res.statusCode}`);
}

/** One `--publish` round: the server's CPU per second while idle, then per publish at --rate (see the usage). */
async function publishRound(kind, n) {
  const server = await startServer(kind, n);
  const pool = new Pool(server.url, { connections: 32 });
  try {
    const pids = server.pids();
    const cpu = () => serverStats(pids).cpu;
    await sleep(1000);
    const idle0 = cpu();
    await sleep(seconds(opt.idleFor) * 1000);
    const idleCpuMsPerS = ((cpu() - idle0) * 1000) / seconds(opt.idleFor);
    for (let i = 0; i < 200; i++) await publishOne(kind, pool, i);
    await sleep(300);
    const rate = perSecond(opt.rate);
    const cpu0 = cpu();
    const t0 = Date.now();
    const sent = [];
    for (let i = 0; i < opt.publish; i++) {
      const wait = t0 + (i * 1000) / rate - Date.now();
      if (wait > 0) await sleep(wait);
      sent.push(publishOne(kind, pool, 200 + i));
    }
    await Promise.all(sent);
    const wallS = (Date.now() - t0) / 1000;
    await sleep(300);
    const cpuS = cpu() - cpu0;
    return { kind, round: n, idleCpuMsPerS, cpuS, usPerPublish: (cpuS / opt.publish) * 1e6, achievedRate: opt.publish / wallS };
  } finally {
    await pool.close();
    await stop(server.entry);
  }
}

if (opt.publish > 0) {
  console.error(`nchan-vs-notify (publish): ${opt.rounds} rounds each, alternating; ${cmd}`);
  const rows = [];
  try {
    for (let n = 1; n <= opt.rounds; n++)
      for (const kind of SERVERS) {
        const r = await publishRound(kind, n);
        rows.push(r);
        console.error(
          `round ${n} ${kind}: idle ${r.idleCpuMsPerS.toFixed(1)} ms CPU/s; ${opt.publish} publishes at ${r.achievedRate.toFixed(0)}/s: ` +
            `${r.cpuS.toFixed(2)} s = ${r.usPerPublish.toFixed(0)} us per publish`,
        );
      }
  } finally {
    killAll();
  }
  console.log(`command: ${cmd}`);
  console.log(`\nmedians of ${opt.rounds} rounds`);
  console.log(`${'server'.padEnd(44)}${'idle ms CPU/s'.padStart(15)}${'us/publish'.padStart(12)}`);
  const med = {};
  for (const kind of SERVERS) {
    const mine = rows.filter((r) => r.kind === kind);
    med[kind] = { idle: median(mine.map((r) => r.idleCpuMsPerS)), pub: median(mine.map((r) => r.usPerPublish)) };
    console.log(`${kind.slice(-43).padEnd(44)}${med[kind].idle.toFixed(1).padStart(15)}${med[kind].pub.toFixed(0).padStart(12)}`);
  }
  for (const k of SERVERS.slice(1))
    console.log(
      `${`${k.slice(-30)}/${SERVERS[0].slice(-12)}`.padEnd(44)}${(med[k].idle / med[SERVERS[0]].idle).toFixed(2).padStart(15)}${(med[k].pub / med[SERVERS[0]].pub).toFixed(2).padStart(12)}`,
    );
  process.exit(0);
}

const f = (v, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : String(v));
const COLS = [
  ['delivered', 'delivered', 0],
  ['lost', 'lost', 0],
  ['duplicated', 'dup', 0],
  ['serverCpuS', 'srv cpu s', 2],
  ['serverUsPerDelivery', 'srv us/deliv', 2],
  ['pubUsPerDelivery', 'pub us/deliv', 2],
  ['rampCpuS', 'ramp cpu s', 2],
  ['pubCpuS', 'pub cpu s', 2],
  ['tailCpuS', 'tail cpu s', 2],
  ['serverSysShare', 'srv sys share', 2],
  ['serverPeakRssMB', 'srv peak MB', 1],
  ['p50', 'p50 ms', 2],
  ['p99', 'p99 ms', 2],
  ['swarmCpuS', 'swarm cpu s', 2],
];
const line = (label, values) => label.padEnd(16) + values.map((v, i) => v.padStart(Math.max(12, COLS[i][1].length + 1))).join('');
const header = () =>
  line(
    '',
    COLS.map(([, h]) => h),
  );

console.error(`nchan-vs-notify: ${opt.rounds} rounds each, alternating; ${cmd}`);
const rows = [];
try {
  for (let n = 1; n <= opt.rounds; n++) {
    for (const kind of SERVERS) {
      const r = await round(kind, n);
      rows.push(r);
      const extra = [
        r.outOfOrder && `outOfOrder ${r.outOfOrder}`,
        r.misrouted && `misrouted ${r.misrouted}`,
        Object.keys(r.errors).length && `errors ${JSON.stringify(r.errors)}`,
      ];
      if (r.serverPeakRssEachMB.length > 1) extra.push(`peak per process ${r.serverPeakRssEachMB.map((m) => f(m, 1)).join(' + ')} MB`);
      extra.push(
        `swarm worker cpu mean/max ${f(r.swarmCpuMeanShare * 100, 0)}/${f(r.swarmCpuMaxShare * 100, 0)}%, loop delay p99 ${f(r.swarmEldP99Ms, 0)} ms${r.saturated ? ' (SATURATED)' : ''}`,
      );
      const pub = r.publisher;
      if (pub.accepted !== pub.sent || Object.keys(pub.failures).length)
        extra.push(`publisher sent ${pub.sent} accepted ${pub.accepted} failures ${JSON.stringify(pub.failures)}`);
      if (r.problems.length) extra.push(`problems ${JSON.stringify(r.problems)}`);
      console.error(
        `round ${n} ${kind.padEnd(6)} exit ${r.exit}: delivered ${r.delivered}/${r.expected} lost ${r.lost} dup ${r.duplicated} server ${f(r.serverCpuS)} s` +
          ` = ${f(r.serverUsPerDelivery)} us/delivery (${f(r.pubUsPerDelivery)} in the publishing window), peak ${f(r.serverPeakRssMB, 1)} MB, p50/p99 ${f(r.p50)}/${f(r.p99)} ms, swarm ${f(r.swarmCpuS)} s` +
          ` (${r.swarmWorkers} workers); ${extra.filter(Boolean).join('; ')}`,
      );
    }
  }
} finally {
  killAll();
}

console.log(`command: ${cmd}`);
for (const kind of SERVERS) console.log(`swarm (${kind}): ${rows.find((r) => r.kind === kind).command}`);
console.log('\nper round');
console.log(header());
for (const r of rows)
  console.log(
    line(
      `${r.kind.slice(-10)} #${r.round}`,
      COLS.map(([k, , d]) => f(r[k], d)),
    ),
  );
const med = {};
for (const kind of SERVERS) {
  const mine = rows.filter((r) => r.kind === kind);
  med[kind] = Object.fromEntries(COLS.map(([k]) => [k, median(mine.map((r) => r[k]))]));
}
console.log(`\nmedians of ${opt.rounds} rounds`);
console.log(header());
for (const kind of SERVERS)
  console.log(
    line(
      kind,
      COLS.map(([k, , d]) => f(med[kind][k], d)),
    ),
  );
for (const kind of SERVERS.filter((k) => k !== SERVERS[0]))
  console.log(
    line(
      `${kind.slice(0, 8)}/${SERVERS[0].slice(0, 6)}`,
      COLS.map(([k]) => (med[SERVERS[0]][k] ? f(med[kind][k] / med[SERVERS[0]][k]) : '-')),
    ),
  );
