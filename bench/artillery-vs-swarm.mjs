#!/usr/bin/env node
// bench/artillery-vs-swarm: client CPU per received message of `notify swarm --target nchan --transport ws` (all its
// processes, audit included, its own publisher included) against Artillery 2.x's ws engine (unaudited: each
// connection counts its messages in a processor function and reports the count once, at its end), both holding the
// same N WebSocket connections on nchan's /sub/both/<user> (subprotocol ws+meta.nchan, the frames the swarm's nchan
// profile reads), receiving the same broadcasts at the same rate. One nginx + nchan (docs/nchan.conf) for the whole
// run; the tools alternate within each round (short window, then long window, the order flipped every round).
// Publishing: the swarm publishes its own probes (it audits them; they cost it ~20 requests/s, counted on its side);
// for Artillery this process posts bodies of the same template (the nchan profile's payload, a probe inside) at the
// same rate to /pub/broadcast once nchan holds all N connections, uncounted, and sums the `subscribers` nchan
// reports per publish (the deliveries nchan owed). CPU is from /proc: each tool runs under `sh -c`, whose
// cutime+cstime after `wait` hold the whole reaped tree (Artillery's worker threads are in its process). Marginal
// CPU per message = (CPU long - CPU short) / (messages long - messages short): startup (Artillery loads ~1,000
// packages), connect and ramp cancel out. Also prints the whole run's CPU per message and the tree's peak RSS.
// Artillery is installed into bench/artillery/ (package.json pins 2.0.21, the last 2.x whose engines allow Node 20)
// with `npm install --ignore-scripts --no-audit --no-fund` when bench/artillery/node_modules is missing.
// nginx is started as bench/nchan-vs-notify.mjs does (the minimum copied: that file runs as a script).
// Usage: npm run build && flock /tmp/notify-bench.lock node bench/artillery-vs-swarm.mjs [--conns 2000] [--rate 20]
//        [--short 5] [--long 20] [--rounds 3] [--tools artillery,swarm] [--bin bin/notify.js]
//        (a tool `swarm@path/to/notify.js` is the swarm of another build, e.g. a `git archive` snapshot before a change)
//        [--prof DIR] (CPU profiles of the swarm's processes, the workers inheriting the flag through fork, into DIR)
// Needs nginx (Debian nginx-light) and libnginx-mod-nchan.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { args, median, sleep, treeRss } from './lib.mjs';

const opt = args({ conns: 2000, rate: 20, short: 5, long: 20, rounds: 3, tools: 'artillery,swarm', bin: 'bin/notify.js', prof: '' });
const TOOLS = opt.tools.split(',');
const RAMP_S = 5;
const DRAIN_S = 2;
const ART_DIR = resolve('bench/artillery');
const ARTILLERY = join(ART_DIR, 'node_modules/artillery/bin/run');
const work = mkdtempSync(join(tmpdir(), 'notify-bench-art-'));
let nginx;
process.on('exit', () => {
  if (nginx) {
    try {
      process.kill(-nginx.pid, 'SIGKILL');
    } catch {}
  }
  rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

installArtillery();
const { url, port } = await startNchan();
const cmd = `node bench/artillery-vs-swarm.mjs --conns ${opt.conns} --rate ${opt.rate} --short ${opt.short} --long ${opt.long} --rounds ${opt.rounds} --tools ${opt.tools} --bin ${opt.bin}`;
console.error(`artillery-vs-swarm: ${opt.conns} WS conns on nchan ${url}, ${opt.rate}/s broadcasts, ${opt.short}s vs ${opt.long}s, ${opt.rounds} rounds`);
console.error(`  ${cmd}`);

const rows = [];
for (let round = 0; round < opt.rounds; round++) {
  const order = round % 2 === 0 ? TOOLS : [...TOOLS].reverse();
  const r = Object.fromEntries(order.map((t) => [t, {}]));
  for (const secs of [opt.short, opt.long]) {
    for (const tool of order) {
      const m = tool === 'artillery' ? await artilleryArm(secs) : await swarmArm(secs, tool.startsWith('swarm@') ? tool.slice(6) : opt.bin);
      r[tool][secs] = m;
      console.error(
        `  round ${round} ${tool.padEnd(9)} ${String(secs).padStart(3)}s: cpu ${m.cpu.toFixed(2)} s, messages ${m.messages} (owed ${m.owed}), ` +
          `peak RSS ${(m.rss / 2 ** 20).toFixed(0)} MB${m.note ? `, ${m.note}` : ''}`,
      );
    }
  }
  for (const tool of order) {
    const [a, b] = [r[tool][opt.short], r[tool][opt.long]];
    rows.push({
      round,
      tool,
      marginalUs: ((b.cpu - a.cpu) / (b.messages - a.messages)) * 1e6,
      wholeUs: (b.cpu / b.messages) * 1e6,
      cpuShort: a.cpu,
      cpuLong: b.cpu,
      msgShort: a.messages,
      msgLong: b.messages,
      rssKbPerConn: Math.max(a.rss, b.rss) / opt.conns / 1024,
    });
  }
}
process.kill(-nginx.pid, 'SIGTERM');

console.log(`# ${cmd}`);
console.log('round  tool       cpu s (short/long)  messages (short/long)  marginal us/msg  whole-run us/msg  peak RSS KB/conn');
for (const x of rows) {
  console.log(
    `${String(x.round).padEnd(6)} ${x.tool.padEnd(10)} ${`${x.cpuShort.toFixed(2)} / ${x.cpuLong.toFixed(2)}`.padStart(18)}  ` +
      `${`${x.msgShort} / ${x.msgLong}`.padStart(21)}  ${x.marginalUs.toFixed(2).padStart(15)}  ${x.wholeUs.toFixed(2).padStart(16)}  ${x.rssKbPerConn.toFixed(1).padStart(16)}`,
  );
}
const med = (tool, key) => median(rows.filter((x) => x.tool === tool).map((x) => x[key]));
for (const tool of TOOLS) {
  console.log(
    `${tool}: median marginal ${med(tool, 'marginalUs').toFixed(2)} us/msg, whole-run ${med(tool, 'wholeUs').toFixed(2)} us/msg, peak RSS ${med(tool, 'rssKbPerConn').toFixed(1)} KB/conn`,
  );
}
for (const tool of TOOLS.filter((t) => t.startsWith('swarm') && TOOLS.includes('artillery'))) {
  const ratios = [...new Set(rows.map((x) => x.round))].map((round) => {
    const of = (t) => rows.find((x) => x.round === round && x.tool === t).marginalUs;
    return of(tool) / of('artillery');
  });
  console.log(`${tool} / artillery marginal CPU per message, per round: ${ratios.map((x) => x.toFixed(2)).join(', ')}; median ${median(ratios).toFixed(2)}`);
}

function installArtillery() {
  if (existsSync(join(ART_DIR, 'node_modules'))) return;
  console.error('installing artillery into bench/artillery (npm install --ignore-scripts)');
  const r = spawnSync('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: ART_DIR, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`npm install in ${ART_DIR} failed (${r.status})`);
}

/** Runs `argv` under `sh -c`; resolves with the reaped tree's CPU seconds and its peak RSS (sampled). */
async function measured(argv, env = process.env, during = async () => {}) {
  const statFile = join(work, `stat-${Date.now()}`);
  const quoted = argv.map((a) => `'${String(a).replace(/'/g, `'\\''`)}'`).join(' ');
  const sh = spawn('sh', ['-c', `${quoted} >${join(work, 'tool.log')} 2>&1; c=$?; cat /proc/$$/stat > ${statFile}; exit $c`], { stdio: 'ignore', env });
  const exited = new Promise((r) => sh.once('exit', (code) => r(code)));
  let rss = 0;
  const sampler = setInterval(() => {
    try {
      rss = Math.max(rss, treeRss(sh.pid));
    } catch {
      // the tree changes under us
    }
  }, 250);
  const extra = await during();
  const code = await exited;
  clearInterval(sampler);
  const stat = readFileSync(statFile, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { code, cpu: (Number(f[13]) + Number(f[14])) / 100, rss, extra };
}

/** Artillery's ws engine: N virtual users connect over the ramp, count what they receive, and hold until the end. */
async function artilleryArm(secs) {
  const dir = join(work, `art-${secs}`);
  mkdirSync(dir, { recursive: true });
  const report = join(dir, 'report.json');
  writeFileSync(join(dir, 'processor.cjs'), readFileSync(join(ART_DIR, 'processor.cjs')));
  // Time to think: the ramp, Artillery's start (a few seconds), the window, the drain; the bench publishes as soon
  // as all N are connected, so the connections outlive the window whatever the start took.
  const think = RAMP_S + 8 + secs + DRAIN_S;
  writeFileSync(join(dir, 'script.yml'), artilleryScript(think));
  const env = { ...process.env, ARTILLERY_DISABLE_TELEMETRY: 'true', NO_UPDATE_NOTIFIER: '1' };
  const m = await measured([process.execPath, ARTILLERY, 'run', '--output', report, join(dir, 'script.yml')], env, async () => {
    const t0 = Date.now();
    while (established(port) < opt.conns) {
      if (Date.now() - t0 > (RAMP_S + 8) * 1000) throw new Error(`artillery: ${established(port)} of ${opt.conns} connected after ${RAMP_S + 8}s`);
      await sleep(100);
    }
    const owed = await publish(secs);
    await sleep(DRAIN_S * 1000);
    return owed;
  });
  if (m.code !== 0) throw new Error(`artillery exited ${m.code}: ${readFileSync(join(work, 'tool.log'), 'utf8').slice(-3000)}`);
  const counters = JSON.parse(readFileSync(report, 'utf8')).aggregate.counters;
  const messages = counters['bench.messages_received'] ?? 0;
  const failed = counters['vusers.failed'] ?? 0;
  return { cpu: m.cpu, rss: m.rss, messages, owed: m.extra, note: failed ? `${failed} vusers failed` : '' };
}

function artilleryScript(think) {
  return `config:
  target: "ws://127.0.0.1:${port}"
  processor: "./processor.cjs"
  phases:
    - duration: ${RAMP_S}
      arrivalCount: ${opt.conns}
scenarios:
  - engine: ws
    flow:
      - connect:
          target: "ws://127.0.0.1:${port}/sub/both/u{{ $randomNumber(1, ${opt.conns}) }}"
          subprotocols: ["ws+meta.nchan"]
      - function: count
      - think: ${think}
      - function: report
`;
}

/** notify swarm on the nchan profile, publishing its own probes. */
async function swarmArm(secs, bin) {
  const out = join(work, `swarm-${secs}.json`);
  const prof = opt.prof ? ['--cpu-prof', `--cpu-prof-dir=${resolve(opt.prof)}`] : [];
  const argv = [process.execPath, ...prof, bin, 'swarm', '--target', 'nchan', '--url', url, '--transport', 'ws', '--conns', opt.conns, '--users', opt.conns];
  argv.push(
    '--rate',
    `${opt.rate}/s`,
    '--user-rate',
    '0/s',
    '--ramp',
    `${RAMP_S}s`,
    '--duration',
    `${secs}s`,
    '--drain',
    `${DRAIN_S}s`,
    '--no-dashboard',
    '--out',
    out,
  );
  const m = await measured(argv);
  if (!existsSync(out)) throw new Error(`swarm exited ${m.code} without a result: ${readFileSync(join(work, 'tool.log'), 'utf8').slice(-3000)}`);
  const ev = JSON.parse(readFileSync(out, 'utf8')).summary.total.events;
  rmSync(out);
  return { cpu: m.cpu, rss: m.rss, messages: ev.delivered, owed: ev.expected, note: `lost ${ev.lost}, duplicated ${ev.duplicated}` };
}

/** Posts `secs * rate` broadcasts of the nchan profile's payload template; resolves with the deliveries nchan owed. */
async function publish(secs) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const run = Math.random().toString(36).slice(2, 10);
  let owed = 0;
  const t0 = Date.now();
  for (let i = 0; i < secs * opt.rate; i++) {
    const due = t0 + (i * 1000) / opt.rate;
    if (due > Date.now()) await sleep(due - Date.now());
    const t = performance.timeOrigin + performance.now();
    const body =
      `{"id":"${run}-${i + 1}","type":"system","title":"swarm probe","body":"","data":{"probe":` +
      `{"run":"${run}","stream":"broadcast","seq":${i + 1},"t":${t}}},"createdAt":"${new Date(t).toISOString()}"}`;
    owed += JSON.parse(await post(agent, `${url}/pub/broadcast`, body)).subscribers;
  }
  agent.destroy();
  return owed;
}

function post(agent, to, data) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      to,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(data) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => (res.statusCode < 300 ? resolve(text) : reject(new Error(`publish: HTTP ${res.statusCode} ${text}`))));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** Established TCP connections whose local port is nchan's (its side of every subscriber), from /proc/net/tcp. */
function established(serverPort) {
  const hex = `:${serverPort.toString(16).toUpperCase().padStart(4, '0')} `;
  let n = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
    // "  sl  local_address rem_address   st ...": local address second, state fourth (01 = ESTABLISHED).
    const cols = line.trim().split(/\s+/);
    if (cols[3] === '01' && `${cols[1]} `.endsWith(hex)) n++;
  }
  return n;
}

// nginx + nchan, as bench/nchan-vs-notify.mjs starts them (the minimum of it).
function nchanModule() {
  for (const p of ['/usr/lib/nginx/modules/ngx_nchan_module.so', '/usr/share/nginx/modules/ngx_nchan_module.so']) if (existsSync(p)) return p;
  throw new Error('ngx_nchan_module.so not found: apt-get install nginx-light libnginx-mod-nchan');
}

async function startNchan() {
  const p = await new Promise((res, rej) => {
    const srv = net.createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port: free } = srv.address();
      srv.close(() => res(free));
    });
  });
  const conns = Math.max(4096, opt.conns * 4);
  mkdirSync(join(work, 'tmp'), { recursive: true });
  const tmp = (n) => `${n}_temp_path ${work}/tmp/${n};`;
  writeFileSync(
    join(work, 'nginx.conf'),
    `load_module ${nchanModule()};
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_processes 1;
worker_rlimit_nofile ${conns + 1024};
pid ${work}/nginx.pid;
error_log ${work}/error.log notice;
events { worker_connections ${conns}; multi_accept on; }
http {
  access_log off;
  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(tmp).join('\n  ')}
  server {
    listen 127.0.0.1:${p} backlog=4096;
    include ${resolve('docs/nchan.conf')};
  }
}
`,
  );
  nginx = spawn('nginx', ['-p', work, '-c', join(work, 'nginx.conf'), '-g', 'daemon off;'], { detached: true, stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise((res) => {
      const s = net.connect({ host: '127.0.0.1', port: p });
      s.once('connect', () => (s.destroy(), res(true)));
      s.once('error', () => res(false));
    });
    if (up) return { url: `http://127.0.0.1:${p}`, port: p };
    if (Date.now() > deadline || nginx.exitCode !== null) throw new Error(`nginx did not start: ${readFileSync(join(work, 'error.log'), 'utf8').slice(-2000)}`);
    await sleep(50);
  }
}
