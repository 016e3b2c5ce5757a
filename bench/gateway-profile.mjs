#!/usr/bin/env node
// bench/gateway-profile: where `notify serve` spends its CPU under the nchan-vs-notify load. Starts the server with
// `node --cpu-prof`, drives it with one `notify swarm` child (the bench's flags), stops it with SIGTERM (the profile
// is written as it exits) and prints the functions by self time, and by inclusive time, with the share of all samples.
// Usage: npm run build && node bench/gateway-profile.mjs [--transport sse] [--conns 2000] [--users 200] [--ramp 5s]
//        [--duration 15s] [--rate 20/s] [--user-rate 100/s] [--drain 2s] [--bin bin/notify.js] [--top 40]
//        [--serve-args ''] [--keep DIR] (keep the .cpuprofile, e.g. for Chrome DevTools)
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { args, GATEWAY_LOAD, procStats } from './lib.mjs';

const opt = args({
  transport: 'sse',
  ...GATEWAY_LOAD,
  bin: 'bin/notify.js',
  top: 40,
  serveArgs: '',
  keep: '',
});
const dir = mkdtempSync(join(tmpdir(), 'notify-gw-prof-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const serveArgv = ['--cpu-prof', '--cpu-prof-dir', dir, opt.bin, 'serve', '--port', '0', '--log-level', 'warn', ...opt.serveArgs.split(' ').filter(Boolean)];
const server = spawn(process.execPath, serveArgv, { stdio: ['ignore', 'ignore', 'pipe'] });
const url = await new Promise((resolve, reject) => {
  let text = '';
  server.stderr.on('data', (d) => {
    text += d;
    const m = /listening on (https?:\/\/\S+)/.exec(text);
    if (m) resolve(m[1]);
  });
  server.once('exit', (code) => reject(new Error(`server exited ${code}: ${text}`)));
});
const cpu0 = procStats(server.pid).cpu;
const swarmArgv = [opt.bin, 'swarm', '--url', url, '--conns', String(opt.conns), '--users', String(opt.users), '--ramp', opt.ramp];
swarmArgv.push('--duration', opt.duration, '--rate', opt.rate, '--user-rate', opt.userRate, '--drain', opt.drain, '--transport', opt.transport);
swarmArgv.push('--no-dashboard', '--out', join(dir, 'swarm.json'));
const swarm = spawn(process.execPath, swarmArgv, { stdio: ['ignore', 'ignore', 'inherit'] });
await new Promise((r) => swarm.once('exit', r));
const cpu = procStats(server.pid).cpu - cpu0;
const result = JSON.parse(readFileSync(join(dir, 'swarm.json'), 'utf8'));
const t = result.summary.total;
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));

const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error('no .cpuprofile written (did the server exit normally?)');
if (opt.keep) {
  mkdirSync(opt.keep, { recursive: true });
  copyFileSync(join(dir, file), join(opt.keep, `gateway-${opt.transport}.cpuprofile`));
}
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'));

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n) => {
  const { functionName, url: u, lineNumber } = n.callFrame;
  const where = u ? `${relative(process.cwd(), u.replace(/^file:\/\//, ''))}:${lineNumber + 1}` : '';
  return `${functionName || '(anonymous)'} ${where}`.trim();
};
const self = new Map();
const total = new Map();
let samples = 0;
for (const id of profile.samples) {
  samples++;
  const leaf = byId.get(id);
  self.set(name(leaf), (self.get(name(leaf)) ?? 0) + 1);
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const k = name(byId.get(cur));
    if (seen.has(k)) continue;
    seen.add(k);
    total.set(k, (total.get(k) ?? 0) + 1);
  }
}
const pct = (v) => `${((v / samples) * 100).toFixed(1).padStart(5)}%`;
console.log(`notify serve ${opt.transport}, ${opt.conns} conns: ${t.events.delivered}/${t.events.expected} delivered, lost ${t.events.lost}`);
console.log(`server CPU ${cpu.toFixed(2)} s = ${((cpu / t.events.delivered) * 1e6).toFixed(2)} us/delivery (with the profiler on); ${samples} samples`);
console.log(`\nself time, top ${opt.top}`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, opt.top)) console.log(`${pct(v)}  ${k}`);
console.log(`\ninclusive time, top ${opt.top}`);
for (const [k, v] of [...total].sort((a, b) => b[1] - a[1]).slice(0, opt.top)) console.log(`${pct(v)}  ${k}`);
