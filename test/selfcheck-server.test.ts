/**
 * The server side of the self-check in a real run: the swarm scrapes its own notify serve's /metrics over the run and
 * the result says which side ran out of CPU, with the server's figures next to the client's.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSwarm, swarm, swarmConfig } from './helpers/swarm.js';

beforeAll(loadSwarm, 120_000);

describe('the self-check measures the server', () => {
  it('reports the CPU share and loop lag of notify serve, and a verdict on both sides', async () => {
    const config = swarmConfig({ conns: '50', ramp: '1s', duration: '6s', rate: '10/s', drain: '1s' });
    const { outcome } = await swarm(config);
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
  }, 60_000);
});
