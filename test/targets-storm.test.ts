/**
 * Reconnect storms against targets that cannot and can resume. Half the subscribers are aborted at once in the middle
 * of publishing and reconnect at once. The Express + Redis example keeps no history (its profile says resume: none),
 * so what it relays while a subscriber is away is lost to it, and the report must say both: lost > 0, and that the
 * target cannot resume. nchan replays from the Last-Event-ID a reconnecting subscriber sends, so nothing is lost.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildResult } from '../src/result/build.js';
import { renderSummary, summaryViewOf } from '../src/report/summary-table.js';
import type { RawSwarmOptions } from '../src/swarm/config.js';
import type { SwarmOutcome } from '../src/swarm/run.js';
import { VERSION } from '../src/version.js';
import { runCleanup } from './helpers/lifecycle.js';
import { startNchan } from './helpers/nchan.js';
import { startRedis } from './helpers/redis.js';
import { eventCounts, loadSwarm, scheduled, swarm, swarmConfig } from './helpers/swarm.js';
import { startExample } from './helpers/example-app.js';

beforeAll(loadSwarm, 120_000);
afterEach(runCleanup);

const CONNS = 20;
/**
 * 20 subscribers on 10 users over a 1 s ramp; 3 s of publishing, 200 broadcast probes a second (one every 5 ms, so
 * that an immediate reconnect, a few ms away, still misses some) and 20 user probes a second; half the subscribers
 * aborted 1.5 s into publishing.
 */
const STORM = {
  conns: String(CONNS),
  users: '10',
  ramp: '1s',
  duration: '3s',
  rate: '200/s',
  userRate: '20/s',
  drain: '1s',
  storm: ['50%@2500ms'],
  reconnect: 'immediate',
} satisfies RawSwarmOptions;
/** Each subscriber: every broadcast probe (200/s for 3 s), and its user's share of the user probes (20/s for 3 s over 10 users). */
const OWED = CONNS * scheduled(200, 3000) + (CONNS * scheduled(20, 3000)) / 10;

/**
 * The storm against the Express + Redis example, run once for the tests that read it (whichever comes first starts
 * it; the servers are stopped at that test's cleanup, the outcome is plain data).
 */
let noResumeRun: Promise<SwarmOutcome> | undefined;
function stormWithoutResume(): Promise<SwarmOutcome> {
  noResumeRun ??= (async () => {
    const redis = await startRedis();
    const app = await startExample('express-redis-sse', ['--redis', redis.url]);
    const target = 'examples/express-redis-sse/notify-target.yaml';
    return (await swarm(swarmConfig({ ...STORM, target, targetVar: [`redisUrl=${redis.url}`], url: [app] }))).outcome;
  })();
  return noResumeRun;
}

describe('a reconnect storm', () => {
  it('against a target without resume (the Express + Redis example) loses what was sent meanwhile, and the report says it cannot resume', async () => {
    const outcome = await stormWithoutResume();
    const total = outcome.summary.total;
    const counts = eventCounts(total);
    expect(outcome.storms).toMatchObject([{ aborted: CONNS / 2, back: CONNS / 2 }]);
    expect(total.connections).toMatchObject({ target: CONNS, failed: 0, reconnects: CONNS / 2 });
    // Every subscriber opened before publishing began, so each is owed every probe of its streams, reconnect or not.
    expect(counts.expected).toBe(OWED);
    // The aborted half misses what the app relayed while it was away; the app cannot send it again.
    expect(counts.lost).toBeGreaterThan(0);
    expect(counts).toEqual({ ...counts, delivered: counts.expected - counts.lost, duplicated: 0, outOfOrder: 0, misrouted: 0 });
    const result = buildResult(outcome, VERSION);
    expect(result.target).toMatchObject({ profile: 'express-redis-sse', source: 'examples/express-redis-sse/notify-target.yaml', resume: { sse: 'none' } });
    const printed = renderSummary(summaryViewOf(result), false);
    expect(printed).toMatch(/^NO RESUME: the express-redis-sse target cannot resume over sse \(resume: none\)/m);
    expect(printed).toMatch(/^storm 1 \(50% at 2\.50s\): aborted 10, back 10;/m);
  });

  it('against a target without resume counts nothing as recovered: it has nothing to replay', async () => {
    const { summary } = await stormWithoutResume();
    // What a reconnected subscriber receives from such a server is live, whenever its probe was meant to be sent.
    expect(summary.total.events.recovered).toBe(0);
  });

  it('against nchan over SSE, which resumes from Last-Event-ID, loses nothing', async () => {
    const nchan = await startNchan();
    const { outcome } = await swarm(swarmConfig({ ...STORM, target: 'nchan', url: [nchan.url] }));
    const total = outcome.summary.total;
    const counts = eventCounts(total);
    expect(outcome.storms).toMatchObject([{ aborted: CONNS / 2, back: CONNS / 2 }]);
    expect(total.connections).toMatchObject({ target: CONNS, failed: 0, reconnects: CONNS / 2 });
    expect(counts.expected).toBe(OWED);
    expect(counts).toEqual({ ...counts, delivered: counts.expected, lost: 0, duplicated: 0, outOfOrder: 0, misrouted: 0 });
    // What was published while a subscriber was away came back through the replay (recovered, also delivered).
    expect(counts.recovered).toBeGreaterThan(0);
    const result = buildResult(outcome, VERSION);
    expect(result.target).toMatchObject({ profile: 'nchan', resume: { sse: 'last-event-id' } });
    expect(renderSummary(summaryViewOf(result), false)).not.toMatch(/NO RESUME/);
  });
});
