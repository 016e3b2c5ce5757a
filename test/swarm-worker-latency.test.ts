/**
 * The worker records each receipt's latency once, in its transport's tick histogram, and derives the rest at each
 * tick: the run's per-transport histograms must equal the sum of the ticks, transport by transport and in total.
 */
import { describe, expect, it } from 'vitest';
import { decodeHistogram, mergeHistograms } from '../src/metrics/histogram.js';
import { SubscriberAudit } from '../src/swarm/audit.js';
import type { WorkerPlan, WorkerTick } from '../src/swarm/messages.js';
import { SwarmWorker } from '../src/swarm/worker.js';
import { loadTarget } from '../src/targets/load.js';
import { subscribePlan } from '../src/targets/subscribe.js';

describe('swarm worker latency', () => {
  it('per-transport histograms are the sum of the ticks, and the ticks cover every transport', async () => {
    // sse, ws, sse, poll, sse: what a mix assigns; no connection is opened (the transports are never created).
    const kinds = [0, 1, 0, 2, 0];
    const plan: WorkerPlan = {
      run: 'r1',
      index: 0,
      workers: 1,
      conns: kinds.length,
      users: kinds.length,
      userPrefix: 'u',
      urls: ['http://127.0.0.1:1'],
      transports: kinds,
      localAddresses: [],
      startAt: 0,
      rampMs: 0,
      reconnect: 'backoff',
      backoffBaseMs: 100,
      backoffCapMs: 1000,
      pollTimeoutS: 25,
      target: subscribePlan(loadTarget(undefined, [])),
    };
    const ticks: WorkerTick[] = [];
    const worker = new SwarmWorker(plan, (m) => void (m.type === 'tick' && ticks.push(m)));
    // What start() sets up before it opens anything.
    const internals = worker as unknown as { audits: SubscriberAudit[]; stats: { target: number }[] };
    kinds.forEach((k, i) => {
      internals.audits[i] = new SubscriberAudit('r1', [`user:u${i + 1}`, 'broadcast']);
      internals.stats[k]!.target++;
      worker.opened(i, performance.now());
    });
    const tick = () => (worker as unknown as { tick(): void }).tick();

    const epoch = performance.timeOrigin + performance.now();
    let seq = 0;
    for (let t = 0; t < 3; t++) {
      for (let k = 0; k < 7; k++) {
        seq++;
        const at = performance.now();
        // Latencies differ per connection and probe: 1..~70 ms.
        kinds.forEach((_, i) =>
          worker.notification(i, { data: { probe: { run: 'r1', stream: 'broadcast', seq, t: epoch - 1 - i * 13 - k * 2.5 } } }, undefined, at),
        );
        // A duplicate is not timed again.
        worker.notification(0, { data: { probe: { run: 'r1', stream: 'broadcast', seq, t: epoch } } }, undefined, at);
      }
      tick();
    }
    const result = await worker.finish({ broadcast: Array.from({ length: seq }, () => epoch - 1000) });

    const perTick = ticks.map((t) => decodeHistogram(t.latency));
    expect(perTick.map((h) => h.count)).toEqual([7 * kinds.length, 7 * kinds.length, 7 * kinds.length, 0]);
    expect(ticks.map((t) => t.received)).toEqual(perTick.map((h) => h.count));
    const parts = result.transports;
    expect(Object.keys(parts).sort()).toEqual(['poll', 'sse', 'ws']);
    expect(decodeHistogram(parts.sse!.latency).count).toBe(3 * seq);
    expect(decodeHistogram(parts.ws!.latency).count).toBe(seq);
    expect(decodeHistogram(parts.poll!.latency).count).toBe(seq);
    // Exact: the same buckets, whether summed by tick or by transport.
    const byTransport = mergeHistograms(Object.values(parts).map((p) => p.latency));
    expect(mergeHistograms(perTick).summary()).toEqual(byTransport.summary());
    expect(byTransport.count).toBe(seq * kinds.length);
  });
});
