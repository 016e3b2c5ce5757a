#!/usr/bin/env node
// bench/worker-notification: CPU of the swarm worker's sink per received notification (SwarmWorker.notification:
// probeOf, the subscriber's audit, the latency histograms), with the worker's once-a-second tick every 80,000
// receipts (2,000 connections x 40 probes/s). No sockets: the transports' share is bench/transport-recv.mjs.
// Prints the best of 7 rounds in ns per notification.
// Usage: npm run build && node bench/worker-notification.mjs [--dist dist] [--conns 2000] [--probes 200]
import { pathToFileURL } from 'node:url';
import { args } from './lib.mjs';

const opt = args({ dist: 'dist', conns: 2000, probes: 200 });
const { SwarmWorker } = await import(pathToFileURL(`${opt.dist}/swarm/worker.js`).href);
const { SubscriberAudit } = await import(pathToFileURL(`${opt.dist}/swarm/audit.js`).href);
const { conns, probes } = opt;
const TICK_EVERY = 80_000;

let best = Infinity;
for (let round = 0; round < 7; round++) {
  const plan = {
    run: 'bench',
    index: 0,
    workers: 1,
    conns,
    users: conns,
    userPrefix: 'u',
    urls: ['http://127.0.0.1:1'],
    transports: new Array(conns).fill(0),
    localAddresses: [],
    startAt: 0,
    rampMs: 0,
    reconnect: 'backoff',
    backoffBaseMs: 100,
    backoffCapMs: 1000,
    pollTimeoutS: 25,
  };
  const worker = new SwarmWorker(plan, () => {});
  // What start() would set up, without opening connections.
  for (let i = 0; i < conns; i++) {
    worker.audits[i] = new SubscriberAudit('bench', [`user:u${i + 1}`, 'broadcast']);
    worker.audits[i].opened(0);
  }
  const t0 = performance.timeOrigin + performance.now();
  // As probeOnly transports pass them; latencies spread over 5-45 ms.
  const notes = Array.from({ length: probes }, (_, k) => ({
    data: { probe: { run: 'bench', stream: 'broadcast', seq: k + 1, t: t0 - 5 - Math.random() * 40 } },
  }));
  let receipts = 0;
  const start = process.hrtime.bigint();
  for (let k = 0; k < probes; k++) {
    const n = notes[k];
    const at = performance.now();
    for (let i = 0; i < conns; i++) {
      worker.notification(i, n, undefined, at);
      if (++receipts % TICK_EVERY === 0) worker.tick();
    }
  }
  best = Math.min(best, Number(process.hrtime.bigint() - start) / receipts);
}
console.log(`worker-notification (${opt.dist}): ${best.toFixed(0)} ns per notification, best of 7 rounds of ${conns} x ${probes}`);
