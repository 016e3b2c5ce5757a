#!/usr/bin/env node
// bench/swarm-vs-bare: CPU per delivery of the whole swarm (`notify swarm`, all its processes, audit included)
// against a bare socket reader (bench/bare-reader.mjs: net.Socket per connection, SSE frames or RFC 6455 frames
// split by hand, JSON.parse of each notification), both on one `notify serve` with the same connections, users and
// publish rate. The swarm publishes its own probes (its publisher's CPU counts on its side: ~20 requests/s against
// tens of thousands of deliveries/s); the bare reader's probes are posted from this process (the same POST /publish,
// one broadcast per tick), which is not counted.
// CPU is from /proc: the swarm runs under `sh -c`, whose cutime/cstime after `wait` hold the whole reaped tree
// (main process and workers); the bare reader is one process, read just before it exits. Marginal CPU per delivery
// = (CPU of the long run - CPU of the short run) / (deliveries long - deliveries short): startup, connect and
// ramp cancel out. Arms alternate: for each transport, short swarm, short bare, long swarm, long bare.
// Also prints the swarm workers' peak RSS over the connections (an upper bound of the bytes per connection).
// `--bin a,b` compares two builds (e.g. a `git archive` snapshot before a change and the work tree): one server (from
// the first bin) for both, and within each rep and transport the bins alternate, so the noise of a shared machine
// falls on both alike; the table then has a row per rep, transport and bin, and the medians are per bin.
// Usage: npm run build && flock /tmp/notify-bench.lock node bench/swarm-vs-bare.mjs [--conns 2000] [--rate 20]
//        [--short 10] [--long 30] [--transports sse,ws] [--bin bin/notify.js[,other/bin/notify.js]] [--reps 1]
import { fork, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { args, childPids, median, procStats, sleep, startServe, treeRss } from './lib.mjs';

const opt = args({ conns: 2000, rate: 20, short: 10, long: 30, transports: 'sse,ws', bin: 'bin/notify.js', reps: 1 });
const TICKS = 100;
const bins = String(opt.bin).split(',');
const { server, url } = await startServe(bins[0], ['--heartbeat', '60s']);
console.error(`swarm-vs-bare: ${opt.conns} conns at ${opt.rate}/s on ${url}, ${opt.short}s vs ${opt.long}s, pid ${server.pid}`);

const rows = [];
for (let rep = 0; rep < opt.reps; rep++) {
  for (const transport of opt.transports.split(',')) {
    for (const bin of bins) {
      const r = {};
      if (bins.length > 1) console.error(`  rep ${rep} bin ${bin}`);
      for (const secs of [opt.short, opt.long]) {
        r[`swarm${secs}`] = await swarmArm(transport, secs, bin);
        console.error(
          `  ${transport} swarm ${secs}s: cpu ${r[`swarm${secs}`].cpu.toFixed(2)} s, delivered ${r[`swarm${secs}`].delivered}, lost ${r[`swarm${secs}`].lost}`,
        );
        r[`bare${secs}`] = await bareArm(transport, secs);
        console.error(`  ${transport} bare  ${secs}s: cpu ${r[`bare${secs}`].cpu.toFixed(2)} s, delivered ${r[`bare${secs}`].delivered}`);
      }
      const marginal = (a, b) => ((b.cpu - a.cpu) / (b.delivered - a.delivered)) * 1e6;
      const swarmUs = marginal(r[`swarm${opt.short}`], r[`swarm${opt.long}`]);
      const bareUs = marginal(r[`bare${opt.short}`], r[`bare${opt.long}`]);
      const rssPerConn = Math.max(r[`swarm${opt.short}`].workerRss, r[`swarm${opt.long}`].workerRss) / opt.conns;
      rows.push({ rep, transport, bin, swarmUs, bareUs, ratio: swarmUs / bareUs, rssPerConn, bareRssPerConn: r[`bare${opt.long}`].rss / opt.conns });
    }
  }
}
server.kill();

console.log('transport  swarm us/delivery  bare us/delivery  ratio  swarm worker RSS KB/conn  bare RSS KB/conn  bin');
for (const r of rows) {
  console.log(
    `${r.transport.padEnd(10)} ${r.swarmUs.toFixed(2).padStart(17)} ${r.bareUs.toFixed(2).padStart(17)} ${r.ratio.toFixed(2).padStart(6)}` +
      ` ${(r.rssPerConn / 1024).toFixed(1).padStart(25)} ${(r.bareRssPerConn / 1024).toFixed(1).padStart(17)}  ${r.bin}`,
  );
}
if (opt.reps > 1 || bins.length > 1) {
  for (const t of opt.transports.split(',')) {
    for (const bin of bins) {
      const mine = rows.filter((r) => r.transport === t && r.bin === bin);
      const ratios = mine.map((r) => r.ratio);
      console.log(
        `${t} ${bin}: median ratio ${median(ratios).toFixed(2)} (${ratios.map((x) => x.toFixed(2)).join(', ')}),` +
          ` median swarm ${median(mine.map((r) => r.swarmUs)).toFixed(2)} us, bare ${median(mine.map((r) => r.bareUs)).toFixed(2)} us`,
      );
    }
  }
}

/** `notify swarm` under `sh -c`; the shell's cutime+cstime after the swarm exits is the whole swarm tree's CPU. */
async function swarmArm(transport, secs, bin) {
  const out = `/tmp/swarm-vs-bare-${process.pid}.json`;
  const statFile = `/tmp/swarm-vs-bare-${process.pid}.stat`;
  const swarmArgs = [
    bin,
    'swarm',
    '--url',
    url,
    '--transport',
    transport,
    '--conns',
    opt.conns,
    '--rate',
    `${opt.rate}/s`,
    '--ramp',
    '2s',
    '--duration',
    `${secs}s`,
    '--drain',
    '2s',
    '--no-dashboard',
    '--out',
    out,
  ];
  const cmd = `${process.execPath} ${swarmArgs.join(' ')} >/dev/null 2>&1; c=$?; cat /proc/$$/stat > ${statFile}; exit $c`;
  const sh = spawn('sh', ['-c', cmd], { stdio: 'ignore' });
  let workerRss = 0;
  const sampler = setInterval(() => {
    try {
      workerRss = Math.max(workerRss, treeRss(sh.pid) - rssOfMain(sh.pid));
    } catch {
      // the tree is changing under us
    }
  }, 500);
  await new Promise((r) => sh.once('exit', r));
  clearInterval(sampler);
  const stat = readFileSync(statFile, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(f[13]) + Number(f[14])) / TICKS; // cutime, cstime
  const result = JSON.parse(readFileSync(out, 'utf8'));
  rmSync(out);
  rmSync(statFile);
  const ev = result.summary.total.events;
  return { cpu, delivered: ev.delivered, lost: ev.lost, workerRss };
}

/** The bare reader, with probes posted from here at the same rate; CPU read from /proc just before it exits. */
async function bareArm(transport, secs) {
  const child = fork(new URL('./bare-reader.mjs', import.meta.url).pathname, [], {
    env: { ...process.env, BENCH_OPT: JSON.stringify({ url, conns: opt.conns, users: opt.conns, transport }) },
  });
  await next(child, 'ready');
  await sleep(500);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const t0 = Date.now();
  for (let i = 0; i < secs * opt.rate; i++) {
    const due = t0 + (i * 1000) / opt.rate;
    if (due > Date.now()) await sleep(due - Date.now());
    await post(agent, {
      broadcast: true,
      notification: { type: 'system', title: 'bench', data: { probe: { run: 'bare', stream: 'broadcast', seq: i + 1, t: Date.now() } } },
    });
  }
  await sleep(2000);
  child.send({ type: 'count' });
  const { received } = await next(child, 'count');
  const { cpu, hwm } = procStats(child.pid);
  child.send({ type: 'exit' });
  await new Promise((r) => child.once('exit', r));
  agent.destroy();
  return { cpu, delivered: received, rss: hwm };
}

function post(agent, body) {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/publish`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
      (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 202 ? resolve() : reject(new Error(`publish: HTTP ${res.statusCode}`))));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

function next(child, type) {
  return new Promise((resolve) =>
    child.on('message', function on(m) {
      if (m.type === type) {
        child.off('message', on);
        resolve(m);
      }
    }),
  );
}

/** RSS of the swarm's main process (the sh's child). */
function rssOfMain(shPid) {
  const [main] = childPids(shPid);
  return main ? procStats(main).rss : 0;
}
