/**
 * Scenario phases against notify serve, each phase's own figures checked against what the test made happen: a burst
 * of a known size, a storm spread over a window, churn at a rate, slow readers cut by the server's slow-consumer
 * policy (its own metric must say the same), and a server restart through the scenario's `server`.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Phase } from '../src/scenario/load.js';
import type { SwarmConfig } from '../src/swarm/config.js';
import { ROOT } from './helpers/build.js';
import { freePort } from './helpers/child-server.js';
import { startTestGateway } from './helpers/gateway.js';
import { runCleanup } from './helpers/lifecycle.js';
import { loadSwarm, swarm, swarmConfig } from './helpers/swarm.js';

beforeAll(loadSwarm, 120_000);
afterEach(runCleanup);

/** A config whose `duration` covers the phases (the swarm helper's time limit is built from it). */
function withPhases(config: SwarmConfig, phases: Phase[], server?: { command: string; ready: string }) {
  config.scenario = { name: 'test', file: 'test.yaml', phases, server };
  return config;
}

const base = { transport: 'sse', ramp: '300ms', drain: '1s', userRate: '0/s' };

describe('scenario phases against notify serve', () => {
  it('burst: the phase owns exactly its probes; steady phases around it have their own', async () => {
    const gw = await startTestGateway();
    const config = withPhases(swarmConfig({ ...base, url: [gw.url], conns: '20', rate: '10/s', duration: '3s' }), [
      { kind: 'steady', durationMs: 1000 },
      { kind: 'burst', count: 50, streams: 'broadcast' },
      { kind: 'steady', durationMs: 1000 },
    ]);
    const { outcome } = await swarm(config);
    const phases = outcome.phases!;
    expect(phases.map((p) => p.kind)).toEqual(['steady', 'burst', 'steady']);
    expect(phases[1]!.extras).toEqual({ sent: 50 });
    // The burst's 50 went to every subscriber, and the ~10/s of the schedule that fell inside it with them.
    expect(phases[1]!.events.expected).toBeGreaterThanOrEqual(20 * 50);
    expect(phases.map((p) => p.events.lost)).toEqual([0, 0, 0]);
    // Together the phases cover every probe owed in the run.
    expect(phases.reduce((a, p) => a + p.events.expected, 0)).toBe(outcome.summary.total.events.expected);
    expect(phases[0]!.endMs).toBeLessThanOrEqual(phases[1]!.startMs);
  });

  it('storm spread over a window: half the connections aborted, all back, nothing lost (notify serve resumes)', async () => {
    const gw = await startTestGateway();
    const config = withPhases(swarmConfig({ ...base, url: [gw.url], conns: '40', rate: '20/s', reconnect: 'immediate', duration: '3s' }), [
      { kind: 'steady', durationMs: 500 },
      { kind: 'storm', share: 0.5, overMs: 1000 },
      { kind: 'steady', durationMs: 1000 },
    ]);
    const { outcome } = await swarm(config);
    const storm = outcome.phases![1]!;
    expect(storm.extras).toEqual({ storm: 1 });
    expect(storm.endMs - storm.startMs).toBeGreaterThanOrEqual(990);
    expect(outcome.storms).toHaveLength(1);
    expect(outcome.storms[0]).toMatchObject({ aborted: 20, back: 20 });
    expect(storm.reconnects + outcome.phases![2]!.reconnects).toBe(20);
    expect(outcome.summary.total.events.lost).toBe(0);
  });

  it('churn: connections closed and re-opened at the rate, resumed without loss, no error counted', async () => {
    const gw = await startTestGateway();
    const config = withPhases(swarmConfig({ ...base, url: [gw.url], conns: '20', rate: '20/s', duration: '2.5s' }), [
      { kind: 'churn', rate: 20, durationMs: 1500 },
      { kind: 'steady', durationMs: 1000 },
    ]);
    const { outcome } = await swarm(config);
    const churn = outcome.phases![0]!;
    // 20/s for 1.5 s: 30 closes, each re-opened (a few may land in the next phase).
    expect(churn.reconnects + outcome.phases![1]!.reconnects).toBeGreaterThanOrEqual(25);
    expect(churn.reconnects + outcome.phases![1]!.reconnects).toBeLessThanOrEqual(31);
    expect(outcome.summary.total.events.lost).toBe(0);
    expect(outcome.summary.total.errors).toEqual({});
  });

  it('slow: readers that stop are cut by the slow-consumer policy; the server counts the same cuts, and they come back', async () => {
    const gw = await startTestGateway({ maxBuffer: '64kb' });
    // 200 probes/s of 8 KB while they are paused: 4.8 MB each, more than the kernel buffers and the server's 64 KB hold.
    const config = withPhases(
      swarmConfig({ ...base, url: [gw.url], conns: '10', rate: '200/s', payloadBytes: '8000', reconnect: 'immediate', duration: '6s' }),
      [
        { kind: 'steady', durationMs: 200 },
        { kind: 'slow', share: 0.2, durationMs: 3000 },
        { kind: 'steady', durationMs: 3000 },
      ],
    );
    const { outcome } = await swarm(config, {}, 30_000);
    const slow = outcome.phases![1]!;
    expect(slow.paused).toBe(2);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    const serverCuts = Number(/^notify_slow_consumer_closes_total(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1] ?? NaN);
    expect(slow.cut).toBe(serverCuts);
    expect(slow.cut).toBeGreaterThan(0);
    expect(slow.back).toBe(slow.cut);
  }, 60_000);

  it('server-restart: the scenario starts the server, kills it, starts it again; ready and all-back times, the loss reported', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const config = withPhases(
      swarmConfig({ ...base, url: [url], conns: '20', rate: '20/s', reconnect: 'immediate', duration: '4s', backoffCap: '200ms' }),
      [
        { kind: 'steady', durationMs: 800 },
        { kind: 'server-restart', signal: 'SIGKILL', downMs: 500 },
        { kind: 'steady', durationMs: 1000 },
      ],
      { command: `${process.execPath} ${ROOT}bin/notify.js serve --port ${port}`, ready: `${url}/healthz` },
    );
    const { outcome, notes } = await swarm(config, {}, 30_000);
    const restart = outcome.phases![1]!;
    expect(restart.extras.downMs).toBeGreaterThanOrEqual(500);
    expect(restart.extras.readyMs).toBeGreaterThan(0);
    expect(restart.extras.allBackMs).not.toBeNull();
    // Each subscriber came back once; the last ones may open just after the phase ends (its all-back check reads ticks a second old).
    expect(restart.reconnects + outcome.phases![2]!.reconnects).toBe(20);
    // The in-memory broker forgets everything: the new epoch resets every cursor, and what was sent while down is lost.
    expect(outcome.summary.total.errors['reset-epoch']).toBe(20);
    expect(restart.events.lost).toBeGreaterThan(0);
    // Lost by when each probe was sent: the phases together hold the run's loss (some may fall just after the restart).
    expect(outcome.phases!.reduce((a, p) => a + p.events.lost, 0)).toBe(outcome.summary.total.events.lost);
    expect(notes.some((n) => n.startsWith('server-restart: SIGKILL'))).toBe(true);
  }, 60_000);
});
