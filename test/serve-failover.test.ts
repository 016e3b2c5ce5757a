/**
 * Failover across --url, end to end: two `notify serve` processes sharing a real redis-server or nats-server, a swarm
 * process of 200 mixed subscribers (SSE, WebSocket, long-poll) spread over both, and one gateway killed with SIGKILL
 * while probes are being published. The subscribers of the dead gateway reconnect to the other --url and resume by
 * cursor; the broker's history holds what they missed, so the audit finds nothing lost. When the dead gateway is the
 * one the swarm publishes to, the publisher moves on to the next --url too.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exitWithin, runNotify } from './helpers/cli.js';
import { ensureBuilt } from './helpers/build.js';
import { spawnGateway, type SpawnedGateway } from './helpers/fuzz.js';
import { runCleanup, until } from './helpers/lifecycle.js';
import { startNats } from './helpers/nats.js';
import { startRedis } from './helpers/redis.js';

afterEach(runCleanup);
beforeAll(ensureBuilt, 120_000);

const CONNS = 200;

const brokers = [
  ['redis', async () => (await startRedis()).url],
  ['nats', async () => (await startNats({ jetstream: true })).url],
] as const;

/** The sum of a counter's samples on a gateway's GET /metrics (every label), 0 when it has none yet. */
async function counter(gw: SpawnedGateway, name: string): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

/** Resolves once the gateway's counter has reached `atLeast` (it is read every 50 ms). */
async function counterReaches(gw: SpawnedGateway, name: string, atLeast: number, timeoutMs: number): Promise<void> {
  let value = 0;
  const poll = setInterval(
    () =>
      void counter(gw, name).then(
        (v) => (value = v),
        () => undefined,
      ),
    50,
  );
  try {
    await until(() => value >= atLeast, `${name} >= ${atLeast} on ${gw.url} (at ${value})`, timeoutMs);
  } finally {
    clearInterval(poll);
  }
}

async function killed(gw: SpawnedGateway): Promise<void> {
  gw.proc.child.kill('SIGKILL');
  expect(await exitWithin(gw.proc, 3000)).toBe('SIGKILL');
}

/** The swarm over [a, b]: 6 s of publishing after a 1 s ramp; its result is the JSON it prints on stdout. */
function swarmOver(a: SpawnedGateway, b: SpawnedGateway, publish: string[]) {
  return runNotify([
    'swarm',
    ...['--url', a.url, '--url', b.url],
    ...['--conns', String(CONNS), '--transport', 'mix:sse=40,ws=30,poll=30', '--ramp', '1s', '--duration', '6s', '--drain', '3s'],
    ...publish,
    ...['--reconnect', 'backoff', '--backoff-base', '50ms', '--backoff-cap', '500ms', '--no-dashboard', '--out', '-'],
  ]);
}

interface Result {
  summary: { total: { connections: { target: number; failed: number; reconnects: number }; events: Record<string, number> } };
  publisher: { sent: number; accepted: number; failures: Record<string, number> };
  problems: unknown[];
}

async function resultOf(swarm: ReturnType<typeof swarmOver>): Promise<Result> {
  const code = await exitWithin(swarm, 20_000);
  expect(code, swarm.stderr()).toBe(0);
  return JSON.parse(swarm.stdout()) as Result;
}

describe.each(brokers)('%s broker: two gateway processes, a swarm over both --url, one gateway killed', (_name, startBroker) => {
  it('SIGKILL of gateway B while publishing: its subscribers reconnect to A and resume; none lost', { timeout: 25_000 }, async () => {
    const broker = await startBroker();
    const [a, b] = await Promise.all([spawnGateway(['--broker', broker]), spawnGateway(['--broker', broker])]);
    const swarm = swarmOver(a, b, ['--rate', '20/s', '--user-rate', '20/s']);
    // B's 100 subscribers get 20 broadcasts a second: past 2,000 deliveries publishing has run a good second.
    await counterReaches(b, 'notify_delivered_total', 2000, 12_000);
    await killed(b);
    const r = await resultOf(swarm);
    const t = r.summary.total;
    expect(t.events.lost, swarm.stderr()).toBe(0);
    expect(t.events.delivered).toBe(t.events.expected);
    expect(t.events.expected).toBeGreaterThan(0);
    expect(t.events.duplicated).toBe(0);
    // Connection i is on --url i % 2: B held the odd half, and each of them had to come back at least once.
    expect(t.connections.reconnects).toBeGreaterThanOrEqual(CONNS / 2);
    expect(r.publisher.accepted).toBe(r.publisher.sent);
    expect(r.problems).toEqual([]);
  });

  it('SIGKILL of gateway A, the one published to: the publisher moves on to B; none refused, none lost', { timeout: 25_000 }, async () => {
    const broker = await startBroker();
    const [a, b] = await Promise.all([spawnGateway(['--broker', broker]), spawnGateway(['--broker', broker])]);
    // Broadcasts only: each probe is owed to all 200 subscribers, so a probe lost is at most CONNS lost receipts.
    const swarm = swarmOver(a, b, ['--rate', '40/s']);
    await counterReaches(a, 'notify_published_total', 40, 12_000);
    await killed(a);
    const r = await resultOf(swarm);
    const t = r.summary.total;
    const { sent, accepted, failures } = r.publisher;
    // A probe whose request was cut by the kill (sent, unanswered) may or may not have been stored: it stays
    // expected, and it is the only kind that may be missing. Nothing is refused: what A refused went to B.
    const cutOnly = Object.fromEntries(Object.entries(failures).filter(([cause]) => cause === 'ECONNRESET' || cause === 'socket-closed'));
    expect(failures, 'only cut requests fail').toEqual(cutOnly);
    const cut = Object.values(cutOnly).reduce((n, k) => n + k, 0);
    expect(accepted + cut).toBe(sent);
    expect(sent).toBeGreaterThan(200);
    expect(t.events.lost, swarm.stderr()).toBeLessThanOrEqual(cut * CONNS);
    expect(t.events.delivered + t.events.lost).toBe(t.events.expected);
    expect(t.events.duplicated).toBe(0);
    expect(t.connections.reconnects).toBeGreaterThanOrEqual(CONNS / 2);
  });
});
