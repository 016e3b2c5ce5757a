#!/usr/bin/env node
// bench/probe-scan: ns to get the probe out of one notification as notify serve writes it (~200 bytes): JSON.parse
// of the whole notification + probeOf (what the transports do by default) against ProbeScanner.notification (what
// they do with probeOnly). 1,000 distinct texts, best of 9 alternating rounds of 1,000,000.
// Usage: npm run build && node bench/probe-scan.mjs [--dist dist]
import { pathToFileURL } from 'node:url';
import { args } from './lib.mjs';

const opt = args({ dist: 'dist' });
const { ProbeScanner } = await import(pathToFileURL(`${opt.dist}/transports/probe-scan.js`).href);
const { probeOf } = await import(pathToFileURL(`${opt.dist}/transports/probe.js`).href);
const N = 1_000_000;
const texts = [];
for (let seq = 1; seq <= 1000; seq++) {
  const t = 1763727600000 + seq * 50.123;
  const user = seq % 100;
  texts.push(
    `{"id":"k3Jx9aQ2-${seq.toString(36)}","type":"system","title":"swarm probe ${seq}","body":"","data":{"probe":{"run":"r8f3k2","stream":"user:${user}","seq":${seq},"t":${t}}},"createdAt":"2026-11-21T12:00:00.000Z","userId":"${user}"}`,
  );
}
const scanner = new ProbeScanner();
const ways = {
  'JSON.parse + probeOf': () => {
    let sum = 0;
    for (let k = 0; k < N; k++) sum += probeOf(JSON.parse(texts[k % 1000])).seq;
    return sum;
  },
  'ProbeScanner.notification': () => {
    let sum = 0;
    for (let k = 0; k < N; k++) sum += scanner.notification(texts[k % 1000]).seq;
    return sum;
  },
};
const best = {};
for (let round = 0; round < 9; round++) {
  for (const [name, run] of Object.entries(ways)) {
    const start = process.hrtime.bigint();
    run();
    best[name] = Math.min(best[name] ?? Infinity, Number(process.hrtime.bigint() - start) / N);
  }
}
for (const [name, ns] of Object.entries(best)) console.log(`${name.padEnd(28)} ${ns.toFixed(0)} ns per notification`);
