#!/usr/bin/env node
// bench/swarm-idle-rss: marginal RSS per idle subscriber of `notify swarm` (its worker process), for SSE and WS.
// One `notify serve` (heartbeat 300 s, so nothing is sent once the streams are open); for each rep, transport and
// bin, a swarm with --conns N1 and one with N2 (one worker, no publishing: --rate 0/s), each left to open every
// connection and settle, then the worker's RSS (/proc VmRSS, sampled 3 times 1 s apart, the last kept) is read and
// the swarm stopped. Marginal bytes per connection = (RSS at N2 - RSS at N1) / (N2 - N1): the worker's fixed costs
// (code, base heap, young generation) cancel out; garbage not yet collected does not, so the figure is an upper
// bound. The swarm runs with NODE_OPTIONS=--max-semi-space-size=1 (--semi-space MB): V8's young generation
// otherwise grows and shrinks by tens of MB with the allocation history, which swamps a few KB per connection (the
// same ws code measured 4.9 and 16.6 KB/conn in one run without it). Connections are spread over 127.0.0.20-23 as
// source addresses. The bins alternate within each rep.
// Usage: npm run build && flock /tmp/notify-bench.lock node bench/swarm-idle-rss.mjs [--n1 2000] [--n2 6000]
//        [--transports sse,ws] [--bin bin/notify.js[,other/bin/notify.js]] [--reps 1] [--settle 10] [--semi-space 1]
import { spawn } from 'node:child_process';
import { args, childPids, median, procStats, sleep, startServe } from './lib.mjs';

const opt = args({ n1: 2000, n2: 6000, transports: 'sse,ws', bin: 'bin/notify.js', reps: 1, settle: 10, semiSpace: 1 });
const bins = String(opt.bin).split(',');
const { server, url } = await startServe(bins[0], ['--heartbeat', '300s']);
console.error(`swarm-idle-rss: ${opt.n1} vs ${opt.n2} idle conns on ${url}, semi-space ${opt.semiSpace} MB, pid ${server.pid}`);

const rows = [];
for (let rep = 0; rep < opt.reps; rep++) {
  for (const transport of opt.transports.split(',')) {
    for (const bin of bins) {
      const a = await idleArm(transport, opt.n1, bin);
      const b = await idleArm(transport, opt.n2, bin);
      const perConn = (b.rss - a.rss) / (opt.n2 - opt.n1);
      console.error(`  rep ${rep} ${transport} ${bin}: ${a.open}/${opt.n1} open ${mb(a.rss)} MB, ${b.open}/${opt.n2} open ${mb(b.rss)} MB`);
      rows.push({ rep, transport, bin, a, b, perConn });
    }
  }
}
server.kill();

console.log(`transport  worker RSS MB at ${opt.n1} / ${opt.n2}  marginal KB/conn  bin`);
for (const r of rows) {
  console.log(`${r.transport.padEnd(10)} ${`${mb(r.a.rss)} / ${mb(r.b.rss)}`.padStart(25)} ${(r.perConn / 1024).toFixed(1).padStart(17)}  ${r.bin}`);
}
if (opt.reps > 1 || bins.length > 1) {
  for (const t of opt.transports.split(',')) {
    for (const bin of bins) {
      const mine = rows.filter((r) => r.transport === t && r.bin === bin).map((r) => r.perConn / 1024);
      console.log(`${t} ${bin}: median ${median(mine).toFixed(1)} KB/conn (${mine.map((x) => x.toFixed(1)).join(', ')})`);
    }
  }
}

function mb(bytes) {
  return (bytes / 2 ** 20).toFixed(1);
}

/** A swarm holding `conns` idle connections; resolves with its worker's RSS once all are open and settled. */
async function idleArm(transport, conns, bin) {
  const swarmArgs = [
    bin,
    'swarm',
    '--url',
    url,
    '--transport',
    transport,
    '--conns',
    String(conns),
    '--workers',
    '1',
    '--rate',
    '0/s',
    '--ramp',
    '3s',
    '--duration',
    '5m',
    '--no-dashboard',
    '--local-address',
    '127.0.0.20-127.0.0.23',
  ];
  const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-semi-space-size=${opt.semiSpace}`.trim() };
  const swarm = spawn(process.execPath, swarmArgs, { stdio: ['ignore', 'ignore', 'pipe'], env });
  let open = 0;
  let log = '';
  swarm.stderr.on('data', (d) => {
    log = (log + d).slice(-4000);
    for (const m of String(d).matchAll(/open (\d+)\/(\d+)/g)) open = Number(m[1]);
  });
  const exited = new Promise((r) => swarm.once('exit', r));
  const deadline = Date.now() + 60_000;
  while (open < conns && Date.now() < deadline) await sleep(500);
  if (open < conns) console.error(`  only ${open}/${conns} open: ${log.slice(-400)}`);
  await sleep(opt.settle * 1000);
  let rss = 0;
  const pids = childPids(swarm.pid);
  for (let i = 0; i < 3; i++) {
    rss = pids.reduce((sum, pid) => sum + procStats(pid).rss, 0);
    await sleep(1000);
  }
  // SIGINT ends a swarm early (its workers with it); a swarm that does not stop in time is killed, workers by pid.
  swarm.kill('SIGINT');
  if ((await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)])) === false) {
    for (const pid of [...pids, swarm.pid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await exited;
  }
  await sleep(1000);
  return { open, rss };
}
