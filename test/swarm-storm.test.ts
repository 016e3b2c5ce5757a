/**
 * Reconnect storms against a real `notify serve`: half of the connections are dropped at once while probes are
 * being published, and come back by exponential backoff with their cursors. With the default history every missed
 * probe is replayed (nothing lost, some recovered); with a history of 2 events per stream the gap outgrows the window,
 * the server says so (`reset`, reason `window`) and the swarm reports the loss instead of hiding it.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway } from './helpers/gateway.js';
import { metricValue, scrape } from './helpers/http.js';
import { runCleanup } from './helpers/lifecycle.js';
import { eventCounts, loadSwarm, scheduled, swarm, swarmConfig } from './helpers/swarm.js';

beforeAll(loadSwarm, 120_000);
afterEach(runCleanup);

// 100 connections of every transport open over 1 s; 3 s of publishing (broadcast 50/s: a probe every 20 ms, and
// 20/s user probes); half of the open connections are aborted 1 s into publishing; 2 s drain.
const CONNS = 100;
const FLAGS = {
  transport: 'mix:sse=50,ws=30,poll=20',
  conns: String(CONNS),
  ramp: '1s',
  duration: '3s',
  rate: '50/s',
  userRate: '20/s',
  drain: '2s',
  storm: ['50%@2s'],
  reconnect: 'backoff',
};
const BROADCASTS = scheduled(50, 3000);
const USER_PROBES = scheduled(20, 3000);

describe('a reconnect storm during publishing', () => {
  it('with resume inside the history window: every aborted connection comes back, nothing is lost, the gap is recovered', async () => {
    const gw = await startTestGateway();
    const { outcome, notes } = await swarm(swarmConfig({ ...FLAGS, backoffBase: '50ms', url: [gw.url] }));
    expect(notes).toContain('storm 1: aborting 50% of open connections');
    const total = outcome.summary.total;

    // Every connection was open when the storm hit (one worker holds all 100), so exactly half were aborted,
    // and each of them came back exactly once.
    expect(outcome.selfCheck.workers).toHaveLength(1);
    const [storm] = outcome.storms;
    expect(storm).toMatchObject({ atMs: 2000, share: 0.5, aborted: CONNS / 2, back: CONNS / 2 });
    expect(storm!.back99Ms).not.toBeNull();
    expect(storm!.back100Ms).not.toBeNull();
    expect(storm!.back99Ms!).toBeLessThanOrEqual(storm!.back100Ms!);
    expect(total.connections).toEqual({ target: CONNS, peakOpen: CONNS, failed: 0, reconnects: CONNS / 2 });
    // The reconnect histogram times the same returns from each connection's own loss, which the storm caused a
    // moment after it started: its slowest is not slower than the storm's last one back (ms rounding, 0.1% bins).
    expect(total.reconnect.count).toBe(CONNS / 2);
    expect(total.reconnect.max).toBeGreaterThan(0);
    expect(total.reconnect.max).toBeLessThanOrEqual(storm!.back100Ms! * 1.001 + 0.5);
    expect(total.errors).toEqual({});

    // Expected is as without a storm (every subscriber opened before publishing); everything arrived, once.
    const expected = CONNS * BROADCASTS + USER_PROBES;
    const events = eventCounts(total);
    expect(events.recovered, 'probes missed during the outage and replayed on resume').toBeGreaterThan(0);
    expect(events).toEqual({
      published: BROADCASTS + USER_PROBES,
      expected,
      delivered: expected,
      lost: 0,
      duplicated: 0,
      outOfOrder: 0,
      recovered: events.recovered,
      misrouted: 0,
    });
    expect(total.latency.count).toBe(expected);

    // The server resumed the streams from history and never had to reset a cursor. Every event it replayed to an SSE
    // or WebSocket subscriber was published before that subscriber came back and is one it had not received: the
    // swarm must count it as recovered. (Recovered may be more: a probe meant to go out before the re-open but
    // published after it is counted too, see src/swarm/audit.ts. A long-poll's every answer after the first is a
    // "replay" for the server, so it is left out.)
    const metrics = await scrape(gw.url);
    const replayed = (t: string) => metricValue(metrics, 'notify_replayed_total', { transport: t }) ?? 0;
    expect(replayed('sse') + replayed('ws'), 'events replayed on SSE and WebSocket resumes').toBeGreaterThan(0);
    for (const t of ['sse', 'ws'] as const) expect(outcome.summary.transports[t]!.events.recovered, t).toBeGreaterThanOrEqual(replayed(t));
    expect(metricValue(metrics, 'notify_resets_total', { reason: 'window' }) ?? 0).toBe(0);
    expect(metricValue(metrics, 'notify_resets_total', { reason: 'epoch' }) ?? 0).toBe(0);
  }, 30_000);

  it('past a 2-event history window: the server resets the cursors and the swarm reports the loss', async () => {
    const gw = await startTestGateway({ history: '2' });
    // Backoff up to 500 ms: at 50 broadcasts/s nearly every aborted connection misses more than 2 of them.
    // SSE and WebSocket only: a long-poll re-polls after every answer, and a client that stalls for 3 events between
    // two polls is reset too; such a reset can also be in flight when the storm aborts that poll, so the server
    // counts one the client never reads. Streams are reset only when they come back from the storm.
    const { outcome } = await swarm(swarmConfig({ ...FLAGS, transport: 'mix:sse=50,ws=50', backoffBase: '500ms', url: [gw.url] }));
    const total = outcome.summary.total;
    const [storm] = outcome.storms;
    expect(storm).toMatchObject({ aborted: CONNS / 2, back: CONNS / 2 });
    expect(storm!.back100Ms).not.toBeNull();
    expect(total.connections).toEqual({ target: CONNS, peakOpen: CONNS, failed: 0, reconnects: CONNS / 2 });

    // At most one reset per connection that came back, and exactly the resets the server sent.
    const resets = total.errors['reset-window'] ?? 0;
    expect(resets, `errors ${JSON.stringify(total.errors)}`).toBeGreaterThan(0);
    expect(resets).toBeLessThanOrEqual(CONNS / 2);
    expect(total.errors).toEqual({ 'reset-window': resets });
    const metrics = await scrape(gw.url);
    expect(metricValue(metrics, 'notify_resets_total', { reason: 'window' })).toBe(resets);

    // The loss is in the figures: each reset skipped at least one probe the subscriber was owed.
    const events = eventCounts(total);
    expect(events.expected).toBe(CONNS * BROADCASTS + USER_PROBES);
    expect(events.lost).toBeGreaterThanOrEqual(resets);
    expect(events.delivered + events.lost).toBe(events.expected);
    expect(events.duplicated).toBe(0);
    expect(total.events.lostRate).toBeCloseTo(events.lost / events.expected, 12);
    expect(total.latency.count).toBe(events.delivered);
  }, 30_000);
});
