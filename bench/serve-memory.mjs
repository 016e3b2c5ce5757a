#!/usr/bin/env node
// bench/serve-memory: what `notify serve` (a child process) holds for clients that do not read and for user ids
// nobody subscribes to. Three cases, each on a fresh server, server RSS read from /proc:
//   stalled-resume: 1,000 notifications of 10 KB in one user's history, then --resumers connections resume from the
//                   start of it and never read;
//   stalled:        --stalled connections subscribe and stop reading, then --broadcasts broadcasts of 10 KB (the
//                   kernel takes a few MB per socket first; the rest waits in the server or cuts the connection);
//   ids:            10 publish requests naming 10,000 new user ids each.
// Usage: npm run build && node bench/serve-memory.mjs [--resumers 40] [--stalled 400] [--broadcasts 1000]
//        [--case all|stalled-resume|stalled|ids] [--bin path/to/notify.js]
// (another build, to compare before/after in one session)
import net from 'node:net';
import { args, procStats, sleep, startServe } from './lib.mjs';

const opt = args({ resumers: 40, stalled: 400, broadcasts: 1000, bin: 'bin/notify.js', case: 'all' });
const cmd = `node bench/serve-memory.mjs --resumers ${opt.resumers} --stalled ${opt.stalled} --broadcasts ${opt.broadcasts} --bin ${opt.bin}`;
const MB = 1024 * 1024;

async function startServer(extra = []) {
  const { server, url } = await startServe(opt.bin, ['--log-level', 'error', '--max-body', '4mb', ...extra]);
  return { server, url, rss: () => procStats(server.pid).rss };
}

async function publish(url, body) {
  const r = await fetch(`${url}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (r.status !== 202) throw new Error(`publish: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}

/** A subscriber that reads the response head, then stops reading for good. */
function stalledSse(url, path, headers = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: hostname, port: Number(port) });
    const extra = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    s.on('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\n${extra}\r\n`));
    s.once('data', () => {
      s.pause();
      resolve(s);
    });
    s.on('error', () => {});
    setTimeout(() => reject(new Error('no response head')), 10_000).unref();
  });
}

/** Waits until RSS has not grown by more than 1 MB for 1 s; returns it. */
async function settledRss(rss) {
  let last = rss();
  for (let i = 0; i < 30; i++) {
    await sleep(1000);
    const now = rss();
    if (now - last < MB) return now;
    last = now;
  }
  return last;
}

const body = 'x'.repeat(10 * 1024);
const results = { command: cmd };

if (opt.case === 'all' || opt.case === 'stalled-resume') {
  const s = await startServer(['--history', '1000']);
  for (let i = 0; i < 1000; i += 50)
    await publish(
      s.url,
      Array.from({ length: 50 }, () => ({ user: 'r', notification: { type: 'system', title: 't', body } })),
    );
  const before = await settledRss(s.rss);
  const epoch = (await (await fetch(`${s.url}/poll?timeout=0`)).json()).cursor.split('.')[0];
  const socks = [];
  for (let i = 0; i < opt.resumers; i++) socks.push(await stalledSse(s.url, '/events?user=r', { 'Last-Event-ID': `${epoch}.0.0` }));
  const after = await settledRss(s.rss);
  results.stalledResume = {
    resumers: opt.resumers,
    rssBeforeMB: +(before / MB).toFixed(1),
    rssAfterMB: +(after / MB).toFixed(1),
    perResumerKB: Math.round((after - before) / 1024 / opt.resumers),
  };
  socks.forEach((x) => x.destroy());
  s.server.kill('SIGKILL');
}

if (opt.case === 'all' || opt.case === 'stalled') {
  const s = await startServer();
  const socks = [];
  for (let i = 0; i < opt.stalled; i++) socks.push(await stalledSse(s.url, `/events?user=s${i}`));
  const before = await settledRss(s.rss);
  let peak = before;
  for (let i = 0; i < opt.broadcasts; i++) {
    await publish(s.url, { broadcast: true, notification: { type: 'system', title: 't', body } });
    if (i % 20 === 19) peak = Math.max(peak, s.rss());
  }
  const after = await settledRss(s.rss);
  const open = (await (await fetch(`${s.url}/readyz`)).json()).connections;
  results.stalled = {
    stalled: opt.stalled,
    broadcasts: opt.broadcasts,
    rssBeforeMB: +(before / MB).toFixed(1),
    rssAfterMB: +(Math.max(peak, after) / MB).toFixed(1),
    stillOpen: open,
  };
  socks.forEach((x) => x.destroy());
  s.server.kill('SIGKILL');
}

if (opt.case === 'all' || opt.case === 'ids') {
  const s = await startServer();
  const before = await settledRss(s.rss);
  for (let i = 0; i < 10; i++) {
    const users = Array.from({ length: 10_000 }, (_, j) => `u${i}-${j}`);
    await publish(s.url, { users, notification: { type: 'system', title: 'hello' } });
  }
  const after = await settledRss(s.rss);
  results.ids = {
    ids: 100_000,
    rssBeforeMB: +(before / MB).toFixed(1),
    rssAfterMB: +(after / MB).toFixed(1),
    perIdBytes: Math.round((after - before) / 100_000),
  };
  s.server.kill('SIGKILL');
}

console.log(JSON.stringify(results, null, 2));
process.exit(0);
