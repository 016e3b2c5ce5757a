#!/usr/bin/env node
// bench/scale-50k: 50,000 SSE subscribers of `notify swarm` against three independent memory-broker `notify serve`
// processes on this machine (~16,700 sockets each, under ulimit -n 20000), probes published to each, broadcast at 1/s
// for 60 s after a 120 s ramp over 8 workers (the shape 2 vCPU holds: see BENCHMARKS.md). bench/swarm-10k.mjs with
// these defaults; any of its flags passes through (later flags win).
// Usage: npm run build && flock /tmp/notify-bench.lock node bench/scale-50k.mjs [--conns 50000] [--servers 3] ...
import { spawn } from 'node:child_process';

const defaults = [
  '--conns',
  '50000',
  '--servers',
  '3',
  '--rate',
  '1',
  '--duration',
  '60',
  '--ramp',
  '120',
  '--drain',
  '15',
  '--workers',
  '8',
  '--out',
  '/tmp/scale-50k.json',
];
const child = spawn(process.execPath, ['bench/swarm-10k.mjs', ...defaults, ...process.argv.slice(2)], { stdio: 'inherit' });
child.on('exit', (code) => process.exit(code ?? 1));
