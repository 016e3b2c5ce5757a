// Shared bits of the bench scripts: process CPU/RSS from /proc, percentiles, argument parsing.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';

const TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) and RSS bytes of a process, from /proc. */
export function procStats(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(fields[11]) + Number(fields[12])) / TICKS;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)[1]) * 1024;
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)[1]) * 1024;
  return { cpu, rss, hwm };
}

/** The pids of `pid`'s children, from every thread's /proc children list. */
export function childPids(pid) {
  const out = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const c = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    if (c) out.push(...c.split(' ').map(Number));
  }
  return out;
}

/** RSS bytes of every process under `pid` (itself excluded). */
export function treeRss(pid) {
  let sum = 0;
  for (const c of childPids(pid)) sum += procStats(c).rss + treeRss(c);
  return sum;
}

/** The load bench/nchan-vs-notify puts on each server, and bench/gateway-profile profiles the gateway under. */
export const GATEWAY_LOAD = { conns: 2000, users: 200, ramp: '5s', duration: '15s', rate: '20/s', userRate: '100/s', drain: '2s' };

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** `--name value` pairs into an object with defaults. */
export function args(defaults) {
  const out = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in defaults)) throw new Error(`unknown option ${argv[i]}; known: ${Object.keys(defaults).join(', ')}`);
    out[key] = typeof defaults[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return out;
}

/**
 * user + system CPU seconds of this process's reaped children (/proc/self/stat cutime + cstime): a swarm child and,
 * through it, the workers it reaped. Read it before and after the child has exited.
 */
export function reapedChildrenCpu() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `node [nodeArgs] <bin> serve <args>` (on a free port unless args has --port; `env` added to this process's)
 * and resolves with the child and its URL once it says where it listens.
 */
export function startServe(bin, args = [], { nodeArgs = [], env = {} } = {}) {
  const port = args.includes('--port') ? [] : ['--port', '0'];
  const server = spawn(process.execPath, [...nodeArgs, bin, 'serve', ...port, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  return new Promise((resolve, reject) => {
    let text = '';
    server.stderr.on('data', (d) => {
      text += d;
      const m = /listening on (https?:\/\/\S+)/.exec(text);
      if (m) resolve({ server, url: m[1] });
    });
    server.on('exit', (code) => reject(new Error(`server exited ${code}: ${text}`)));
  });
}

/** Sockets in TIME_WAIT on this host (the `tw` of /proc/net/sockstat); NaN where there is no such file. */
export function timeWaitSockets() {
  try {
    return Number(/^TCP:.*\btw (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/**
 * Waits (up to `limitMs`) until at most `max` sockets are in TIME_WAIT, so that a round's connects find free ephemeral
 * ports (32768-60999 by default) instead of failing with EADDRNOTAVAIL. Resolves with the count it stopped at.
 */
export async function drainTimeWait(max = 10_000, limitMs = 90_000) {
  const deadline = Date.now() + limitMs;
  let tw = timeWaitSockets();
  while (tw > max && Date.now() < deadline) {
    await sleep(1000);
    tw = timeWaitSockets();
  }
  return tw;
}

/** User and system CPU seconds of a process, apart (/proc/PID/stat): the kernel's share is mostly the write path. */
export function procCpuSplit(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / TICKS, sys: Number(fields[12]) / TICKS };
}

/**
 * A process's memory from /proc/PID/smaps_rollup (bytes): Rss, Anonymous (heap, V8's pages, malloc arenas, thread
 * stacks: what connections grow), Private_Dirty.
 */
export function smapsRollup(pid) {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kb('Rss'), anonymous: kb('Anonymous'), privateDirty: kb('Private_Dirty') };
}

/** The body of `GET url` as text (a fresh connection, no keep-alive), e.g. a server's /metrics. */
export function getText(url) {
  return new Promise((res, rej) => {
    http
      .get(url, { agent: false }, (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (d) => (body += d));
        r.on('end', () => res(body));
      })
      .once('error', rej);
  });
}
