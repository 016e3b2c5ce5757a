/**
 * `notify swarm` end to end against a real `notify serve` (in-process, port 0) for each transport and for a mix:
 * nothing lost or duplicated, and what the swarm expected is checked against figures it did not compute itself:
 * the publishing schedule (rate x duration), the connection count, and the gateway's own counters of events
 * published and written to connections.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeHistogram } from '../src/metrics/histogram.js';
import { assignTransports } from '../src/swarm/config.js';
import { TRANSPORT_NAMES, type TransportName } from '../src/protocol/transports.js';
import { startTestGateway } from './helpers/gateway.js';
import { metricValue, scrape } from './helpers/http.js';
import { runCleanup } from './helpers/lifecycle.js';
import { eventCounts, loadSwarm, scheduled, swarm, swarmConfig } from './helpers/swarm.js';

beforeAll(loadSwarm, 120_000);
afterEach(runCleanup);

// 150 connections open over 1 s, then 3 s of publishing at 20 broadcasts/s and 20 user probes/s, then 2 s drain.
// Publishing starts once the ramp is over, so every subscriber is open before the first probe: each one is owed
// every broadcast probe, and user k (connection k-1) its own user probe when k <= 60.
const CONNS = 150;
const FLAGS = { conns: String(CONNS), ramp: '1s', duration: '3s', rate: '20/s', userRate: '20/s', drain: '2s' };
const BROADCASTS = scheduled(20, 3000);
const USER_PROBES = scheduled(20, 3000);

const cases: [transport: string, label: string][] = [
  ['sse', 'SSE'],
  ['ws', 'WebSocket'],
  ['poll', 'long-poll'],
  ['mix:sse=50,ws=30,poll=20', 'a 50/30/20 mix'],
];

describe('notify swarm against notify serve', () => {
  it.each(cases)(
    '%s: every probe to every subscriber, once (%s)',
    async (transport) => {
      const gw = await startTestGateway();
      const config = swarmConfig({ ...FLAGS, transport, url: [gw.url] });
      const { outcome } = await swarm(config);
      const total = outcome.summary.total;

      // The publisher kept its schedule and the gateway accepted every probe.
      expect(BROADCASTS).toBe(60);
      expect(USER_PROBES).toBe(60);
      expect(outcome.publisher).toMatchObject({ sent: BROADCASTS + USER_PROBES, accepted: BROADCASTS + USER_PROBES, failures: {} });
      const metrics = await scrape(gw.url);
      expect(metricValue(metrics, 'notify_published_total', { stream: 'broadcast' })).toBe(BROADCASTS);
      expect(metricValue(metrics, 'notify_published_total', { stream: 'user' })).toBe(USER_PROBES);

      // Every connection opened once and stayed open.
      expect(total.connections).toEqual({ target: CONNS, peakOpen: CONNS, failed: 0, reconnects: 0 });
      expect(total.errors).toEqual({});
      expect(total.connect.count).toBe(CONNS);

      // Expected, independently: each connection every broadcast, plus one user probe for each of users 1..60.
      const expected = CONNS * BROADCASTS + USER_PROBES;
      expect(eventCounts(total)).toEqual({
        published: BROADCASTS + USER_PROBES,
        expected,
        delivered: expected,
        lost: 0,
        duplicated: 0,
        outOfOrder: 0,
        recovered: 0,
        misrouted: 0,
      });
      expect(total.events.deliveredRate).toBe(1);
      expect(total.latency.count).toBe(expected);
      expect(total.latency.min).toBeGreaterThan(0);

      // Per transport: its share of the connections (the mix keeps its shares in every prefix, so also among users
      // 1..60) and the gateway's count of events it wrote to that transport's connections, live or from history.
      const order = assignTransports(config.mix, CONNS);
      const used = TRANSPORT_NAMES.filter((t) => (config.mix[t] ?? 0) > 0);
      expect(Object.keys(outcome.summary.transports).sort()).toEqual([...used].sort());
      let sum = 0;
      for (const t of used) {
        const k = TRANSPORT_NAMES.indexOf(t);
        const conns = order.filter((x) => x === k).length;
        const userProbes = order.subarray(0, USER_PROBES).filter((x) => x === k).length;
        const s = outcome.summary.transports[t as TransportName]!;
        const want = conns * BROADCASTS + userProbes;
        expect(s.connections, t).toEqual({ target: conns, peakOpen: conns, failed: 0, reconnects: 0 });
        expect(eventCounts(s), t).toEqual({
          published: BROADCASTS + USER_PROBES,
          expected: want,
          delivered: want,
          lost: 0,
          duplicated: 0,
          outOfOrder: 0,
          recovered: 0,
          misrouted: 0,
        });
        expect(s.latency.count, t).toBe(want);
        const written =
          (metricValue(metrics, 'notify_delivered_total', { transport: t }) ?? 0) + (metricValue(metrics, 'notify_replayed_total', { transport: t }) ?? 0);
        expect(written, `${t}: events the gateway wrote to its connections`).toBe(want);
        sum += want;
      }
      expect(sum).toBe(expected);
      if (transport.startsWith('mix:')) {
        expect(Object.fromEntries(used.map((t) => [t, outcome.summary.transports[t]!.connections.target]))).toEqual({ sse: 75, ws: 45, poll: 30 });
      }

      // The encoded histograms (what result files carry and merge) hold the same values as the summary.
      const latency = decodeHistogram(outcome.histograms.total!.latency);
      expect(latency.count).toBe(expected);
      expect(latency.summary()).toEqual(total.latency);
      expect(decodeHistogram(outcome.histograms.total!.connect).count).toBe(CONNS);
      expect(outcome.selfCheck.workers.length).toBeGreaterThan(0);
      expect(outcome.stoppedEarly).toBeUndefined();
    },
    30_000,
  );
});
