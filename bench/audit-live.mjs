#!/usr/bin/env node
// bench/audit-live: ms for one tick of a worker's live audit (every subscriber's `finish` against the log up to the
// grace cutoff) with --subs subscribers that already hold --probes settled probes each, before and after a change,
// in one process. Each of --ticks rounds publishes --per-tick more probes, delivers them to every subscriber, then
// times one tick of the "before" build and one of this build, alternating; medians per probe count. Both builds'
// figures are checked equal on every tick (the audit must stay exact). Also the cost of a receipt in each build
// (median per probe of the time to deliver it to every subscriber).
// Usage: npm run build && node bench/audit-live.mjs --before /tmp/snap/dist [--subs 10000] [--probes 1000,5000,20000]
import { pathToFileURL } from 'node:url';
import { args, median } from './lib.mjs';

const opt = args({ before: '', dist: 'dist', subs: 10_000, probes: '1000,5000,20000', ticks: 15, perTick: 20 });
if (!opt.before) throw new Error('--before DIST: the dist/ of the build to compare with (git archive + tsc)');
const load = async (dist) => import(pathToFileURL(`${dist}/swarm/audit.js`).href);
const builds = { before: await load(opt.before), after: await load(opt.dist) };
const RUN = 'bench';
const GRACE_MS = 2000;

/**
 * One tick: this build's `liveCounts` calls nothing of an audit but `finish`, so it runs the same work on either
 * build's SubscriberAudit (before it, the worker ran the same loop inline).
 */
const tick = (audits, log, cutoff) => builds.after.liveCounts(audits, log, cutoff);

const rows = [];
const cpu0 = process.cpuUsage();
for (const probes of opt.probes.split(',').map(Number)) {
  // One probe a ms on a virtual clock; every subscriber opened at 0 and missed every 100th probe.
  const times = [];
  const log = builds.after.publishLogFromTimes(new Map([['broadcast', times]]));
  const audits = {};
  for (const [name, m] of Object.entries(builds)) {
    audits[name] = Array.from({ length: opt.subs }, () => new m.SubscriberAudit(RUN, ['broadcast']));
    for (const a of audits[name]) a.opened(0);
  }
  // Receipts cost a little more after (two compares keep the cached counts): timed per build, alternating.
  const receiveNs = { before: [], after: [] };
  const deliver = (n) => {
    for (let k = 0; k < n; k++) {
      const seq = times.length + 1;
      times.push(seq);
      if (seq % 100 === 0) continue;
      for (const name of seq % 2 === 0 ? ['before', 'after'] : ['after', 'before']) {
        const start = process.hrtime.bigint();
        for (const a of audits[name]) a.receive(RUN, 'broadcast', seq, seq);
        receiveNs[name].push(Number(process.hrtime.bigint() - start) / opt.subs);
      }
    }
  };
  deliver(probes);
  const ms = { before: [], after: [] };
  for (let t = 0; t < opt.ticks; t++) {
    deliver(opt.perTick);
    // The cutoff trails the head by the grace (probes sent in its last 2 s at 1 probe/ms are not owed yet).
    const cutoff = times.length - Math.min(GRACE_MS, times.length / 2);
    const order = t % 2 === 0 ? ['before', 'after'] : ['after', 'before'];
    const got = {};
    for (const name of order) {
      const start = process.hrtime.bigint();
      got[name] = tick(audits[name], log, cutoff);
      ms[name].push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    if (JSON.stringify(got.before) !== JSON.stringify(got.after)) throw new Error(`tick ${t}: ${JSON.stringify(got)}`);
  }
  const before = median(ms.before);
  const after = median(ms.after);
  rows.push({
    subs: opt.subs,
    probes,
    'before ms/tick': before.toFixed(2),
    'after ms/tick': after.toFixed(2),
    ratio: (after / before).toFixed(3),
    'before ns/receipt': median(receiveNs.before).toFixed(1),
    'after ns/receipt': median(receiveNs.after).toFixed(1),
  });
}
const cpu = process.cpuUsage(cpu0);
console.table(rows);
console.log(
  `cpu ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s (both builds, feeding included), peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`,
);
