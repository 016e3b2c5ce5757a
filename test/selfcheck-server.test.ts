/**
 * The server side of the self-check in a real run: the swarm scrapes its own notify serve's /metrics over the run and
 * the result says which side ran out of CPU, with the server's figures next to the client's; the live snapshots carry
 * the server's last scrape for the dashboard.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { SwarmSnapshot } from '../src/metrics/snapshot.js';
import { loadSwarm, swarm, swarmConfig } from './helpers/swarm.js';

beforeAll(loadSwarm, 120_000);

describe('the self-check measures the server', () => {
  it('reports the CPU share and loop lag of notify serve, and a verdict on both sides', async () => {
    const config = swarmConfig({ conns: '50', ramp: '1s', duration: '6s', rate: '10/s', drain: '1s' });
    const snapshots: SwarmSnapshot[] = [];
    const { outcome } = await swarm(config, { onSnapshot: (snap) => snapshots.push(snap) });
    const sc = outcome.selfCheck;
    expect(sc.servers).toHaveLength(1);
    const s = sc.servers![0]!;
    expect(s.url).toBe(outcome.urls[0]);
    expect(s.samples).toBeGreaterThanOrEqual(2);
    expect(s.cpuMean).toBeGreaterThan(0);
    expect(s.cpuMean).toBeLessThan(2);
    expect(s.cpuMax).toBeGreaterThanOrEqual(s.cpuMean * 0.5);
    expect(s.eldP99Ms).toBeGreaterThan(0);
    expect(s.eldP99Ms).toBeLessThan(5000);
    expect(['client', 'server', 'both', 'neither']).toContain(sc.bottleneck);
    expect(sc.sides).toMatch(/server (not )?saturated: http:\/\/127\.0\.0\.1:\d+ \(CPU \d+% of a core/);

    // The live view: measuring until the server has been scraped twice (at the start, then 5 s on), then its figures.
    const sides = snapshots.map((snap) => snap.selfCheck.server);
    expect(sides[0]).toEqual({ state: 'measuring', servers: [] });
    const measured = sides.filter((side) => side?.state === 'measured');
    expect(measured.length).toBeGreaterThan(0);
    for (const side of measured) {
      expect(side!.servers).toHaveLength(1);
      const live = side!.servers[0]!;
      expect(live.url).toBe(s.url);
      expect(live.cpu).toBeGreaterThan(0);
      expect(live.cpu).toBeLessThanOrEqual(live.cpuMax);
      expect(live.cpuMax).toBeLessThanOrEqual(s.cpuMax);
      expect(live.eldP99Ms).toBeGreaterThan(0);
    }
    // The final frame has the last scrape, the one the result is judged on: the same worst interval.
    const done = snapshots.at(-1)!;
    expect(done.phase).toBe('done');
    expect(done.selfCheck.server!.servers[0]!.cpuMax).toBe(s.cpuMax);
  }, 60_000);
});
