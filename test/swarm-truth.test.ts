/**
 * Measurement truth: the swarm against a purpose-built SSE server that drops, duplicates, reorders and delays known
 * broadcast probes (picked by the probe's seq in `data.probe`). The swarm must report exactly those faults, once per
 * subscriber, and the injected delay within 2 ms.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeHistogram } from '../src/metrics/histogram.js';
import { listenForTest, runCleanup } from './helpers/lifecycle.js';
import type { SwarmSnapshot } from '../src/metrics/snapshot.js';
import { eventCounts, loadSwarm, scheduled, swarm, swarmConfig } from './helpers/swarm.js';

beforeAll(loadSwarm, 120_000);
afterEach(runCleanup);

interface Faults {
  /** Probe seqs never written. */
  drop?: number[];
  /** Probe seqs written twice (same id, same cursor). */
  duplicate?: number[];
  /** [a, a+1]: probe a is held back and written right after probe a+1. */
  swap?: [number, number];
  /**
   * Each probe is written this long after its intended send time `t` (epoch ms on this process's clock, which is
   * also the publisher's: it runs in this process), waited out exactly rather than by a bare timer.
   */
  delayMs?: number;
}

interface FaultServer {
  url: string;
  /** Notification frames written, over all subscribers. */
  written(): number;
  subscribers(): number;
}

const nowEpochMs = () => performance.timeOrigin + performance.now();

/** Calls `then` once `nowEpochMs() >= at`: a timer to about 2 ms before, then turns of the event loop. */
function waitUntil(at: number, then: () => void): void {
  const left = at - nowEpochMs();
  if (left <= 0) return then();
  if (left > 2) setTimeout(() => waitUntil(at, then), left - 2);
  else setImmediate(() => waitUntil(at, then));
}

/**
 * Enough of docs/protocol.md for the swarm's SSE transport: GET /healthz, GET /events (retry, init, notification
 * events with `id:` cursors `<epoch>.0.<broadcastSeq>`), POST /publish (one request or an array) -> 202 {ids, delivered}.
 */
async function startFaultServer(faults: Faults): Promise<FaultServer> {
  const epoch = 'Tru7h';
  const subs = new Set<ServerResponse>();
  const drop = new Set(faults.drop ?? []);
  const duplicate = new Set(faults.duplicate ?? []);
  let held: string | undefined;
  let seq = 0;
  let written = 0;

  const writeAll = (frames: string[]) => {
    if (frames.length === 0) return;
    const chunk = frames.join('');
    for (const res of subs) res.write(chunk);
    written += frames.length * subs.size;
  };
  // Delayed writes leave in publish order: each waits for its own time and for the one before it. Two timers due
  // within the last 2 ms of a wait could otherwise fire in either order, and a swap would be the test's own.
  const due: { at: number; frames: string[] }[] = [];
  const pump = () => {
    const next = due[0];
    if (!next) return;
    waitUntil(next.at, () => {
      due.shift();
      writeAll(next.frames);
      pump();
    });
  };
  const writeAt = (t: number | undefined, frames: string[]) => {
    if (!faults.delayMs || t === undefined) return writeAll(frames);
    due.push({ at: t + faults.delayMs, frames });
    if (due.length === 1) pump();
  };

  /** Frames to write for one broadcast notification, after the faults for its probe seq. */
  const framesFor = (frame: string, probeSeq: number | undefined): string[] => {
    if (probeSeq === undefined) return [frame];
    if (drop.has(probeSeq)) return [];
    if (duplicate.has(probeSeq)) return [frame, frame];
    if (faults.swap && probeSeq === faults.swap[0]) {
      held = frame;
      return [];
    }
    if (faults.swap && probeSeq === faults.swap[1] && held !== undefined) {
      const out = [frame, held];
      held = undefined;
      return out;
    }
    return [frame];
  };

  const publish = (res: ServerResponse, body: string) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      res.writeHead(400, { 'Content-Type': 'application/json' }).end('{"error":{"code":"E_JSON","message":"bad JSON"}}');
      return;
    }
    const requests = (Array.isArray(parsed) ? parsed : [parsed]) as { broadcast?: boolean; notification: Record<string, unknown> }[];
    const ids: string[] = [];
    for (const r of requests) {
      const id = `${epoch}-${ids.length}-${Date.now()}`;
      ids.push(id);
      if (r.broadcast !== true) continue; // this server only serves the broadcast stream
      seq++;
      const n = { id, type: r.notification.type, title: r.notification.title, body: '', createdAt: new Date().toISOString(), data: r.notification.data };
      const probe = (r.notification.data as { probe?: { seq?: unknown; t?: unknown } } | undefined)?.probe;
      const probeSeq = typeof probe?.seq === 'number' ? probe.seq : undefined;
      const t = typeof probe?.t === 'number' ? probe.t : undefined;
      writeAt(t, framesFor(`id: ${epoch}.0.${seq}\nevent: notification\ndata: ${JSON.stringify(n)}\n\n`, probeSeq));
    }
    res.writeHead(202, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ids, delivered: subs.size }));
  };

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'GET' && path === '/healthz') return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
    if (req.method === 'GET' && path === '/events') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store' });
      const cursor = `${epoch}.0.${seq}`;
      res.write(`retry: 3000\n\nid: ${cursor}\nevent: init\ndata: ${JSON.stringify({ cursor, unread: [], unreadCount: 0 })}\n\n`);
      subs.add(res);
      res.on('close', () => subs.delete(res));
      return;
    }
    if (req.method === 'POST' && path === '/publish') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => publish(res, body));
      return;
    }
    res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":{"code":"E_NOT_FOUND","message":"no such route"}}');
  });
  return { url: await listenForTest(server), written: () => written, subscribers: () => subs.size };
}

// 10 SSE subscribers open over 1 s; then 2 s of broadcasts at 40/s (probes 1..80); 0.5 s drain. Few connections,
// so that fanning a probe out (10 writes here, 10 reads in the worker) adds little to the latency being measured.
const CONNS = 10;
const FLAGS = { transport: 'sse', conns: String(CONNS), ramp: '1s', duration: '2s', rate: '40/s', userRate: '0/s', drain: '500ms' };
const PROBES = scheduled(40, 2000);
/**
 * The control server writes every probe this long after its intended time, the faulty one 30 ms later still. Long
 * enough that the probe has reached the server by then even when this process is slow to publish it (a probe that
 * comes later is written when it comes, and its latency is no longer the server's choice).
 */
const BASE_MS = 30;
const DELAY_MS = 30;

describe('the swarm reports exactly what a faulty server did', () => {
  it('counts drops, a duplicate and a swap once per subscriber, and measures a 30 ms delay within 2 ms', async () => {
    expect(PROBES).toBe(80);
    // Two runs at the same time, so that both see the same machine: a control server without faults, and one that
    // drops seqs 5 and 9, sends 3 twice, holds 7 back until after 8, and writes everything 30 ms later.
    const control = await startFaultServer({ delayMs: BASE_MS });
    const faulty = await startFaultServer({ drop: [5, 9], duplicate: [3], swap: [7, 8], delayMs: BASE_MS + DELAY_MS });
    const [base, run] = (await Promise.all([swarm(swarmConfig({ ...FLAGS, url: [control.url] })), swarm(swarmConfig({ ...FLAGS, url: [faulty.url] }))])).map(
      (r) => r.outcome,
    );

    // The control run: every probe to every subscriber, once.
    expect(base!.publisher).toMatchObject({ sent: PROBES, accepted: PROBES, failures: {} });
    expect(control.written()).toBe(CONNS * PROBES);
    expect(eventCounts(base!.summary.total)).toEqual({
      published: PROBES,
      expected: CONNS * PROBES,
      delivered: CONNS * PROBES,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
      recovered: 0,
      misrouted: 0,
    });
    expect(base!.summary.total.latency.count).toBe(CONNS * PROBES);

    // The faulty run, per subscriber: 80 probes owed, 78 different ones arrive in 79 frames (3 twice, 5 and 9 never).
    expect(run!.publisher).toMatchObject({ sent: PROBES, accepted: PROBES, failures: {} });
    expect(faulty.written()).toBe(CONNS * (PROBES - 2 + 1));
    const total = run!.summary.total;
    expect(eventCounts(total)).toEqual({
      published: PROBES,
      expected: CONNS * PROBES,
      delivered: CONNS * (PROBES - 2),
      lost: 2 * CONNS,
      duplicated: CONNS,
      outOfOrder: CONNS,
      recovered: 0,
      misrouted: 0,
    });
    expect(total.events.lostRate).toBeCloseTo(2 / PROBES, 12);
    expect(total.events.duplicatedRate).toBeCloseTo(1 / PROBES, 12);
    expect(total.events.outOfOrderRate).toBeCloseTo(1 / PROBES, 12);
    expect(total.connections).toEqual({ target: CONNS, peakOpen: CONNS, failed: 0, reconnects: 0 });
    expect(total.errors).toEqual({});
    // One latency per distinct probe received: a duplicate is not timed again.
    expect(total.latency.count).toBe(CONNS * (PROBES - 2));
    expect(decodeHistogram(run!.histograms.total!.latency).count).toBe(CONNS * (PROBES - 2));

    // The delay. No probe arrives sooner than its server wrote it (at the histogram's resolution, 32 us at 60 ms).
    // The fastest probe of each run is the one the machine delayed least (the hop from this process to a swarm
    // worker, under a millisecond when idle), so the difference of the minima is the injected 30 ms within 2 ms.
    // Medians also carry whatever else the shared 2-core machine is doing to either run (a worker's event-loop delay
    // p99 reached 54 ms under the full suite), so they are held to the delay only within 10 ms.
    const why = `latency with the delay ${JSON.stringify(total.latency)}, without ${JSON.stringify(base!.summary.total.latency)}; client self-check ${JSON.stringify([base!.selfCheck, run!.selfCheck])}`;
    expect(base!.summary.total.latency.min, why).toBeGreaterThanOrEqual(BASE_MS - 0.016);
    expect(total.latency.min, why).toBeGreaterThanOrEqual(BASE_MS + DELAY_MS - 0.032);
    expect(Math.abs(total.latency.min - base!.summary.total.latency.min - DELAY_MS), why).toBeLessThanOrEqual(2);
    expect(Math.abs(total.latency.p50 - base!.summary.total.latency.p50 - DELAY_MS), why).toBeLessThanOrEqual(10);
  }, 30_000);
});

describe('the audit while the run goes', () => {
  it('counts the dropped probes as lost once they are older than the grace period, before the final audit says the same', async () => {
    const faulty = await startFaultServer({ drop: [2, 3] });
    const snapshots: SwarmSnapshot[] = [];
    // Publishing 1 s, then a drain past the 5 s grace plus the log's and the ticks' second each: the live audit has
    // seen every probe by the end.
    const config = swarmConfig({ ...FLAGS, url: [faulty.url], duration: '1s', drain: '7500ms' });
    const { outcome } = await swarm(config, { onSnapshot: (s) => snapshots.push(s) });
    const probes = scheduled(40, 1000);
    const live = snapshots.filter((s) => s.phase !== 'done').at(-1)!.audit;
    expect(live).toMatchObject({ expected: CONNS * probes, lost: 2 * CONNS, duplicated: 0, outOfOrder: 0 });
    expect(outcome.summary.total.events).toMatchObject({ expected: CONNS * probes, lost: 2 * CONNS });
    // Earlier, while the drops were younger than the grace period, they were not yet called lost.
    expect(snapshots.find((s) => s.phase === 'drain')!.audit.lost).toBeLessThan(2 * CONNS);
  }, 30_000);
});
