/**
 * `notify swarm --target` audits servers that are not notify serve: each real server below runs behind its target
 * profile (the built-ins nchan, pushpin and socketio, and the example apps' own profile files), and every probe must
 * reach every subscriber it was owed, once, in order, and nobody else. Then the same server behind a fault proxy
 * (helpers/fault-proxy.ts) that drops broadcast probes 3 and 7 on their way to the subscribers: the swarm must count
 * exactly two lost per subscriber, which is what the proxy says it dropped. A clean run and a faulty run go side by
 * side, each on a server of its own, so that neither sees the other's traffic and the pair takes the time of one.
 *
 * Every nchan run has a fresh nginx: a new /sub/both subscriber can be sent a broadcast published in the same second
 * before it connected (docs/nchan.conf). Here no probe is published before every subscriber has opened (publishing
 * starts after the ramp), so no subscriber is ever owed less than it is sent; the audit would file such a receipt
 * as `early` (not expected, not delivered; src/swarm/audit.ts), which no event figure counts.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TransportSummary } from '../src/metrics/summary.js';
import type { RawSwarmOptions } from '../src/swarm/config.js';
import { ROOT } from './helpers/build.js';
import { exitWithin, runNotify } from './helpers/cli.js';
import { probeMatcher, startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { onCleanup, runCleanup } from './helpers/lifecycle.js';
import { startNats } from './helpers/nats.js';
import { startNchan } from './helpers/nchan.js';
import { startPushpin } from './helpers/pushpin.js';
import { startRedis } from './helpers/redis.js';
import { startSocketioApp } from './helpers/socketio-app.js';
import { eventCounts, loadSwarm, scheduled, swarm, swarmConfig, type SwarmRun } from './helpers/swarm.js';
import { startExample } from './helpers/example-app.js';

beforeAll(loadSwarm, 120_000);
afterEach(runCleanup);

/** Broadcast probes the fault proxy drops. */
const DROP = [3, 7];
const CONNS = 20;
const USERS = 10;
const RATE = 20;
const USER_RATE = 20;
const DURATION_MS = 2000;
/** Small loads: 20 subscribers on 10 users, 1 s ramp, then 2 s of 20 broadcast and 20 user probes a second. */
const LOAD = {
  conns: String(CONNS),
  users: String(USERS),
  ramp: '1s',
  duration: `${DURATION_MS}ms`,
  rate: `${RATE}/s`,
  userRate: `${USER_RATE}/s`,
  drain: '1s',
} satisfies RawSwarmOptions;

const newRun = () => `r${randomBytes(4).toString('hex')}`;

/**
 * What `conns` subscribers are owed when every one opens before publishing starts: every broadcast probe (when the
 * profile's subscribers receive broadcast) and the probes of its user, `users` users sharing the user probes
 * round-robin and the subscribers spread evenly over the users.
 */
function owed(conns: number, { broadcast = true, user = true } = {}): number {
  const b = broadcast ? conns * scheduled(RATE, DURATION_MS) : 0;
  const u = user ? (conns / USERS) * scheduled(USER_RATE, DURATION_MS) : 0;
  return b + u;
}

/** Every probe owed reached its subscriber once, in order, and only there; every connection opened and stayed. */
function expectAllDelivered(s: TransportSummary, conns: number, expected: number): void {
  expect(eventCounts(s)).toEqual({
    published: s.events.published,
    expected,
    delivered: expected,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    recovered: 0,
    misrouted: 0,
  });
  expect(s.events.delivered).toBeGreaterThan(0);
  expect(s.errors).not.toHaveProperty('no-probe');
  expect(s.connections).toMatchObject({ target: conns, peakOpen: conns, failed: 0, reconnects: 0 });
}

/** Exactly the dropped probes are missing: two per subscriber, and nothing else is wrong. */
function expectDropsLost(s: TransportSummary, conns: number, expected: number): void {
  expect(eventCounts(s)).toEqual({
    published: s.events.published,
    expected,
    delivered: expected - DROP.length * conns,
    lost: DROP.length * conns,
    duplicated: 0,
    outOfOrder: 0,
    recovered: 0,
    misrouted: 0,
  });
  expect(s.errors).not.toHaveProperty('no-probe');
  expect(s.connections).toMatchObject({ target: conns, peakOpen: conns, failed: 0, reconnects: 0 });
}

/** The publisher sent the whole schedule and the server took all of it. */
function expectAllPublished(run: SwarmRun, probes: number): void {
  expect(run.outcome.publisher).toMatchObject({ sent: probes, accepted: probes, failures: {} });
  expect(run.outcome.summary.total.events.published).toBe(probes);
  expect(run.outcome.problems).toEqual([]);
}

/** A clean run against `direct` and a run through a fault proxy in front of `faulty`, at the same time. */
async function pair(
  direct: string,
  faulty: string,
  flags: RawSwarmOptions,
  proxied: RawSwarmOptions = flags,
): Promise<{ clean: SwarmRun; dropped: SwarmRun; proxy: FaultProxy }> {
  const run = newRun();
  const proxy = await startFaultProxy(faulty, { dropSeqs: DROP, run });
  const [clean, dropped] = await Promise.all([
    swarm(swarmConfig({ ...LOAD, ...flags, url: [direct] })),
    swarm(swarmConfig({ ...LOAD, ...proxied, run, url: [proxy.url] })),
  ]);
  return { clean: clean!, dropped: dropped!, proxy };
}

/** The app's Redis channels (`PUBSUB CHANNELS notifications:*`, sorted) once they are `want`, or after 3 s as they are. */
async function channelsSettleTo(url: string, want: string[]): Promise<string[]> {
  const client = new Redis(url, { maxRetriesPerRequest: 0 });
  onCleanup(() => client.disconnect());
  const deadline = Date.now() + 3000;
  for (;;) {
    const channels = ((await client.pubsub('CHANNELS', 'notifications:*')) as string[]).sort();
    if (JSON.stringify(channels) === JSON.stringify(want) || Date.now() > deadline) return channels;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the fault proxy picks the probes to drop', () => {
  const probe = (seq: number, stream = 'broadcast', run = 'r1') => JSON.stringify({ probe: { run, stream, seq, t: 1796227268123.5 } });
  const drop = probeMatcher(DROP, 'r1');

  it('as JSON at any depth, and as JSON escaped once or twice inside strings', () => {
    expect(drop(`data: ${probe(3)}\n\n`)).toBe(true);
    expect(drop(`42["notification",{"id":"x","data":${probe(7)}}]`)).toBe(true);
    expect(drop(JSON.stringify({ data: probe(3) }))).toBe(true);
    expect(drop(JSON.stringify({ data: JSON.stringify({ inner: probe(7) }) }))).toBe(true);
    expect(drop('{"probe":{"t":1.5, "seq": 3, "stream": "broadcast", "run": "r1"}}')).toBe(true);
  });

  it('and nothing else: other seqs, user streams, other runs, near misses', () => {
    expect(drop(probe(4))).toBe(false);
    expect(drop(probe(33))).toBe(false);
    expect(drop(probe(3, 'user:u3'))).toBe(false);
    expect(drop(probe(3, 'broadcast', 'r2'))).toBe(false);
    expect(drop('{"stream":"broadcast","seq":3}')).toBe(false);
    expect(probeMatcher(DROP)(probe(3, 'broadcast', 'r2'))).toBe(true);
  });
});

describe('notify swarm --target against real servers', () => {
  it('nchan (docs/nchan.conf): SSE, WebSocket (ws+meta.nchan) and long-poll deliver everything; through the fault proxy SSE and WS lose exactly the drops', async () => {
    const [direct, faulty] = await Promise.all([startNchan(), startNchan()]);
    const { clean, dropped, proxy } = await pair(
      direct.url,
      faulty.url,
      { target: 'nchan', conns: '30', transport: 'mix:sse=1,ws=1,poll=1' },
      { target: 'nchan', conns: '20', transport: 'mix:sse=1,ws=1' },
    );
    const probes = scheduled(RATE, DURATION_MS) + scheduled(USER_RATE, DURATION_MS);
    expectAllPublished(clean, probes);
    expectAllPublished(dropped, probes);
    for (const t of ['sse', 'ws', 'poll'] as const) expectAllDelivered(clean.outcome.summary.transports[t]!, 10, owed(10));
    expectAllDelivered(clean.outcome.summary.total, 30, owed(30));
    for (const t of ['sse', 'ws'] as const) expectDropsLost(dropped.outcome.summary.transports[t]!, 10, owed(10));
    expect(proxy.dropped).toEqual({ sse: DROP.length * 10, ws: DROP.length * 10 });
  });

  it('Pushpin (docs/pushpin): SSE through Pushpin delivers everything; through the fault proxy it loses exactly the drops', async () => {
    const [direct, faulty] = await Promise.all([startPushpin(), startPushpin()]);
    const { clean, dropped, proxy } = await pair(
      direct.url,
      faulty.url,
      { target: 'pushpin', targetVar: [`publishUrl=${direct.publishUrl}`] },
      { target: 'pushpin', targetVar: [`publishUrl=${faulty.publishUrl}`] },
    );
    const probes = scheduled(RATE, DURATION_MS) + scheduled(USER_RATE, DURATION_MS);
    expectAllPublished(clean, probes);
    expectAllPublished(dropped, probes);
    expectAllDelivered(clean.outcome.summary.transports.sse!, CONNS, owed(CONNS));
    expectDropsLost(dropped.outcome.summary.transports.sse!, CONNS, owed(CONNS));
    expect(proxy.dropped).toEqual({ sse: DROP.length * CONNS, ws: 0 });
  });

  it('a Socket.IO app (the socketio profile): everything delivered; through the fault proxy over its WebSocket, exactly the drops lost', async () => {
    const [direct, faulty] = await Promise.all([startSocketioApp(), startSocketioApp()]);
    const { clean, dropped, proxy } = await pair(direct.url, faulty.url, { target: 'socketio' });
    const probes = scheduled(RATE, DURATION_MS) + scheduled(USER_RATE, DURATION_MS);
    expectAllPublished(clean, probes);
    expectAllPublished(dropped, probes);
    expectAllDelivered(clean.outcome.summary.transports.socketio!, CONNS, owed(CONNS));
    expectDropsLost(dropped.outcome.summary.transports.socketio!, CONNS, owed(CONNS));
    expect(proxy.dropped).toEqual({ sse: 0, ws: DROP.length * CONNS });
  });

  it('the Express + Redis example (its notify-target.yaml, a real redis-server): everything delivered; through the fault proxy, exactly the drops lost', async () => {
    const [redisA, redisB] = await Promise.all([startRedis(), startRedis()]);
    const [direct, faulty] = await Promise.all([
      startExample('express-redis-sse', ['--redis', redisA.url]),
      startExample('express-redis-sse', ['--redis', redisB.url]),
    ]);
    const target = 'examples/express-redis-sse/notify-target.yaml';
    const { clean, dropped, proxy } = await pair(
      direct,
      faulty,
      { target, targetVar: [`redisUrl=${redisA.url}`] },
      { target, targetVar: [`redisUrl=${redisB.url}`] },
    );
    const probes = scheduled(RATE, DURATION_MS) + scheduled(USER_RATE, DURATION_MS);
    expectAllPublished(clean, probes);
    expectAllPublished(dropped, probes);
    expectAllDelivered(clean.outcome.summary.transports.sse!, CONNS, owed(CONNS));
    expectDropsLost(dropped.outcome.summary.transports.sse!, CONNS, owed(CONNS));
    expect(proxy.dropped).toEqual({ sse: DROP.length * CONNS, ws: 0 });
    // The swarm has closed its subscribers: the app has let go of every user channel, and keeps broadcast.
    expect(await channelsSettleTo(redisA.url, ['notifications:broadcast'])).toEqual(['notifications:broadcast']);
  });

  it('the NATS example (its notify-target.yaml, a real nats-server): everything delivered; through the fault proxy, exactly the drops lost', async () => {
    const [natsA, natsB] = await Promise.all([startNats(), startNats()]);
    const [direct, faulty] = await Promise.all([startExample('nats-sse', ['--nats', natsA.url]), startExample('nats-sse', ['--nats', natsB.url])]);
    const target = 'examples/nats-sse/notify-target.yaml';
    const { clean, dropped, proxy } = await pair(
      direct,
      faulty,
      { target, targetVar: [`natsUrl=${natsA.url}`] },
      { target, targetVar: [`natsUrl=${natsB.url}`] },
    );
    const probes = scheduled(RATE, DURATION_MS) + scheduled(USER_RATE, DURATION_MS);
    expectAllPublished(clean, probes);
    expectAllPublished(dropped, probes);
    expectAllDelivered(clean.outcome.summary.transports.sse!, CONNS, owed(CONNS));
    expectDropsLost(dropped.outcome.summary.transports.sse!, CONNS, owed(CONNS));
    expect(proxy.dropped).toEqual({ sse: DROP.length * CONNS, ws: 0 });
  });
});

/**
 * The last command of README "Test your own server", as the README shows it: the test reads it from there, and only
 * points it at this test's app and redis-server (free ports instead of 3000 and 6379).
 */
function readmeCommand(): string[] {
  const readme = readFileSync(`${ROOT}README.md`, 'utf8');
  const section = /^## Test your own server\n([\s\S]*?)^## /m.exec(readme)?.[1];
  if (section === undefined) throw new Error('README.md has no "## Test your own server" section');
  const commands = [...section.matchAll(/^notify swarm --target examples\/express-redis-sse\/notify-target\.yaml(?:[^\n]*\\\n)*[^\n]*$/gm)].map((m) =>
    m[0].replace(/\\\n/g, ' ').replace(/\s+#.*$/, ''),
  );
  const last = commands.at(-1);
  if (last === undefined) throw new Error('README "Test your own server" shows no `notify swarm --target examples/express-redis-sse/...` command');
  if (/['"$`]/.test(last)) throw new Error(`the README command needs a shell to be split: ${last}`);
  return last.trim().split(/\s+/).slice(1);
}

describe('the README walkthrough', () => {
  it('its last command, notify swarm --target examples/express-redis-sse/notify-target.yaml ... --threshold lost==0, exits 0', async () => {
    const args = readmeCommand();
    expect(args.slice(0, 5)).toEqual(['swarm', '--target', 'examples/express-redis-sse/notify-target.yaml', '--url', 'http://127.0.0.1:3000']);
    expect(args).toContain('lost==0');
    const redis = await startRedis();
    const app = await startExample('express-redis-sse', ['--redis', redis.url]);
    const cli = runNotify([...args.map((a) => (a === 'http://127.0.0.1:3000' ? app : a)), '--target-var', `redisUrl=${redis.url}`, '--no-dashboard']);
    const code = await exitWithin(cli, 30_000);
    expect({ code, stderr: cli.stderr() }).toMatchObject({ code: 0 });
    expect(cli.stderr()).toMatch(/^PASS lost==0 \(actual 0\)$/m);
    expect(cli.stderr()).toMatch(/^NO RESUME: the express-redis-sse target cannot resume over sse \(resume: none\)/m);
  });
});
