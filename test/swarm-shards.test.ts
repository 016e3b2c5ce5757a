/**
 * `notify swarm --shard I/N --run ID --start-at TIME` and `notify report --merge`, with the built binary against a
 * real gateway: three shard processes merged give the figures of one run of the same shape (the same expected,
 * delivered, lost, per transport); a fault proxy in front of one non-publishing shard makes the merge report exactly
 * the probes it dropped; a shard killed with SIGKILL and one started late are problems of the merge (exit 1), never
 * merged silently; files of two runs, or one shard twice, are refused (exit 2).
 */
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseResultText } from '../src/result/read.js';
import type { ResultFile } from '../src/result/schema.js';
import { resolveSwarmOptions } from '../src/swarm/config.js';
import { ensureBuilt, exitWithin, runNotify, type NotifyProcess } from './helpers/cli.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { runCleanup } from './helpers/lifecycle.js';
import { usage } from './helpers/usage.js';

const dir = mkdtempSync(join(tmpdir(), 'notify-shards-'));
const CONNS = 60;
const BROADCAST_PROBES = 30; // 10/s for 3 s
const USER_PROBES = 60; // 20/s for 3 s, one per user (60 users)
const SHAPE = ['--conns', String(CONNS), '--transport', 'mix:sse=50,ws=30,poll=20', '--ramp', '1s', '--duration', '3s', '--drain', '1500ms'];
const RATES = ['--rate', '10/s', '--user-rate', '20/s', '--no-dashboard', '--threshold', 'lost==0'];

let gw: TestGateway;

beforeAll(async () => {
  await ensureBuilt();
  gw = await startTestGateway();
}, 180_000);
afterAll(runCleanup);

/** An ISO time `ms` from now: the shards' common --start-at. */
const startIn = (ms: number) => new Date(Date.now() + ms).toISOString();
/**
 * Far enough ahead that every shard has started and forked its workers (2 s before --start-at) on a loaded CI
 * machine: a subscriber that opens after publishing began is owed less, which would make the runs differ.
 */
const START_MS = 6000;

function shard(i: number, n: number, run: string, startAt: string, url: string, extra: string[] = []): { p: NotifyProcess; out: string } {
  const out = join(dir, `${run}-shard-${i}.json`);
  const p = runNotify(['swarm', '--shard', `${i}/${n}`, '--run', run, '--start-at', startAt, '--url', url, ...SHAPE, ...RATES, '--out', out, ...extra]);
  return { p, out };
}

const read = (file: string): ResultFile => parseResultText(file, readFileSync(file, 'utf8'));

async function merge(files: string[], out?: string): Promise<{ code: number | string; stderr: string; result?: ResultFile }> {
  const p = runNotify(['report', '--merge', ...files, ...(out ? ['--out', out] : [])]);
  const code = await exitWithin(p, 30_000);
  return { code, stderr: p.stderr(), result: out && code !== 2 ? read(out) : undefined };
}

describe('three shards merged are one run', () => {
  let merged: ResultFile;
  let single: ResultFile;
  const shards: ResultFile[] = [];

  it('each shard opens its part, shard 1 publishes, the merge settles the others from its log', async () => {
    const startAt = startIn(START_MS);
    const runs = [1, 2, 3].map((i) => shard(i, 3, 'shards1', startAt, gw.url));
    for (const { p } of runs) expect(await exitWithin(p, 40_000), p.stderr()).toBe(0);
    for (const { out } of runs) shards.push(read(out));
    // A third of the connections each (connections i with i % 3 === I - 1), on time.
    expect(shards.map((s) => s.summary.total.connections.target)).toEqual([20, 20, 20]);
    expect(shards.map((s) => s.shard?.lateMs ?? NaN).every((ms) => ms <= 1000)).toBe(true);
    expect(shards.map((s) => s.publisher.sent)).toEqual([BROADCAST_PROBES + USER_PROBES, 0, 0]);
    // Shards 2 and 3 cannot judge lost without the log: pending, not passed, not failed; latency is theirs.
    expect(runs[1]!.p.stderr()).toMatch(/^PENDING lost==0 \(this shard does not publish/m);
    expect(runs[1]!.p.stderr()).toMatch(/^shard 2\/3 does not publish: its expected, delivered and lost are settled by notify report --merge/m);
    expect(shards[1]!.shard?.ledger?.entries.length).toBeGreaterThan(0);
    expect(shards[1]!.summary.total.latency.count).toBeGreaterThan(0);

    const m = await merge(
      runs.map((r) => r.out),
      join(dir, 'merged.json'),
    );
    expect(m.code, m.stderr).toBe(0);
    merged = m.result!;
    expect(m.stderr).toMatch(/^PASS lost==0 \(actual 0\)$/m);
  }, 60_000);

  it('gives the expected, delivered and lost of one run of the same shape', async () => {
    const out = join(dir, 'single.json');
    const p = runNotify(['swarm', '--url', gw.url, ...SHAPE, ...RATES, '--out', out]);
    expect(await exitWithin(p, 40_000), p.stderr()).toBe(0);
    single = read(out);
    const owed = CONNS * BROADCAST_PROBES + USER_PROBES;
    for (const r of [single, merged]) {
      expect(r.summary.total.events).toMatchObject({ published: BROADCAST_PROBES + USER_PROBES, expected: owed, delivered: owed, lost: 0 });
      expect(r.summary.total.connections.target).toBe(CONNS);
    }
    for (const t of ['sse', 'ws', 'poll'] as const) {
      const pick = (r: ResultFile) => {
        const s = r.summary.transports[t]!;
        return { target: s.connections.target, expected: s.events.expected, delivered: s.events.delivered, lost: s.events.lost };
      };
      expect(pick(merged), t).toEqual(pick(single));
    }
    expect(merged.run).toBe('shards1');
    expect(merged.config.conns).toBe(CONNS);
    // Latency is every receipt of every shard, merged from the histograms.
    expect(merged.summary.total.latency.count).toBe(shards.reduce((a, s) => a + s.summary.total.latency.count, 0));
    expect(merged.problems).toEqual([]);
  }, 60_000);

  it('refuses files of two runs, and one shard twice', async () => {
    const twice = join(dir, 'shards1-shard-2-copy.json');
    copyFileSync(join(dir, 'shards1-shard-2.json'), twice);
    const dup = await merge([join(dir, 'shards1-shard-1.json'), join(dir, 'shards1-shard-2.json'), twice]);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toContain('are both shard 2/3');
    const mixed = await merge([join(dir, 'shards1-shard-1.json'), join(dir, 'single.json')]);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain("single.json: not a shard's result");
  }, 30_000);
});

describe('a fault proxy in front of one shard', () => {
  it('the merge reports exactly the probes the proxy dropped, on that shard only', async () => {
    const run = 'shards2';
    const drop = [5, 9, 17];
    const proxy = await startFaultProxy(gw.url, { dropSeqs: drop, run });
    const startAt = startIn(START_MS);
    const runs = [shard(1, 3, run, startAt, gw.url), shard(2, 3, run, startAt, gw.url), shard(3, 3, run, startAt, proxy.url)];
    for (const { p } of runs) expect(await exitWithin(p, 40_000), p.stderr()).toBe(0);
    const third = read(runs[2]!.out);
    const sse = third.summary.transports.sse!.connections.target;
    const ws = third.summary.transports.ws!.connections.target;
    expect(proxy.dropped).toEqual({ sse: sse * drop.length, ws: ws * drop.length });

    const m = await merge(
      runs.map((r) => r.out),
      join(dir, 'merged-faulty.json'),
    );
    // lost==0 is crossed: exit 99, with the figures.
    expect(m.code, m.stderr).toBe(99);
    const t = m.result!.summary.transports;
    expect(t.sse!.events.lost).toBe(sse * drop.length);
    expect(t.ws!.events.lost).toBe(ws * drop.length);
    // A dropped long-poll answer is asked again from its cursor: nothing lost there.
    expect(t.poll!.events.lost).toBe(0);
    expect(m.result!.summary.total.events.expected).toBe(CONNS * BROADCAST_PROBES + USER_PROBES);
    expect(m.result!.summary.total.events.lost).toBe((sse + ws) * drop.length);
    expect(m.stderr).toMatch(/^FAIL lost==0 \(actual \d+\)$/m);
    // Files of another run are not shards of this one.
    const other = await merge([runs[0]!.out, join(dir, 'shards1-shard-2.json')]);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('is of run shards1');
  }, 60_000);
});

describe('shards that died or started late', () => {
  it('are problems of the merge (exit 1), never merged silently', async () => {
    const run = 'shards3';
    const startAt = startIn(2500);
    const first = shard(1, 3, run, startAt, gw.url);
    const dying = shard(2, 3, run, startAt, gw.url);
    await dying.p.waitStderr(/shard 2\/3: 20 of 60 connections/, 10_000);
    // Launched 1.5 s after --start-at (its workers begin later still): its ramp and first probes are off the run's
    // schedule, yet it opens its connections while publishing goes on, so its result has figures to merge.
    const lateBy = Date.parse(startAt) + 1500 - Date.now();
    await new Promise((r) => setTimeout(r, lateBy));
    const late = shard(3, 3, run, startAt, gw.url);
    dying.p.child.kill('SIGKILL');
    expect(await exitWithin(dying.p, 5000)).toBe('SIGKILL');
    expect(await exitWithin(first.p, 40_000), first.p.stderr()).toBe(0);
    expect(await exitWithin(late.p, 40_000), late.p.stderr()).toBe(0);
    expect(late.p.stderr()).toMatch(/started \d+ ms after --start-at/);

    const m = await merge([first.out, late.out], join(dir, 'merged-broken.json'));
    expect(m.code, m.stderr).toBe(1);
    const codes = m.result!.problems.map((p) => p.code);
    expect(codes).toEqual(['shard-missing', 'shard-late']);
    expect(m.stderr).toContain('RUN FAILED: shard 2/3 of run shards3 is missing');
    expect(m.stderr).toMatch(/RUN FAILED: .*shards3-shard-3\.json: shard 3\/3 started \d+\.\d s after --start-at/);
  }, 60_000);
});

describe('shard flags', () => {
  const base = { url: ['http://127.0.0.1:1'], conns: '30' };
  it('name the flag and the value that is wrong', () => {
    expect(usage(() => resolveSwarmOptions({ ...base, shard: '4/3', run: 'r', startAt: startIn(0) }))).toContain('--shard must be I/N with 1 <= I <= N');
    expect(usage(() => resolveSwarmOptions({ ...base, shard: '1/3' }))).toContain('--shard 1/3 needs --run ID and --start-at TIME');
    expect(usage(() => resolveSwarmOptions({ ...base, shard: '1/40', run: 'r', startAt: startIn(0) }))).toContain('--conns 30 is the run');
    expect(usage(() => resolveSwarmOptions({ ...base, startAt: 'tomorrow' }))).toContain('--start-at must be an ISO 8601 time');
    expect(usage(() => resolveSwarmOptions({ ...base, startAt: '2026-12-03T10:00:00' }))).toContain('with its zone');
    expect(usage(() => resolveSwarmOptions({ ...base, publish: 'none' }))).toContain('--publish none needs --shard I/N');
    expect(usage(() => resolveSwarmOptions({ ...base, shard: '2/3', run: 'r', startAt: startIn(0), publish: 'sometimes' }))).toContain(
      '--publish must be one of auto, yes, none',
    );
    expect(usage(() => resolveSwarmOptions({ url: [], shard: '1/2', run: 'r', startAt: startIn(0) }))).toContain('needs --url');
    expect(usage(() => resolveSwarmOptions({ ...base, run: 'a b' }))).toContain('--run may use');
  });

  it('shard 1 publishes by default; --publish moves it', () => {
    const at = startIn(60_000);
    expect(resolveSwarmOptions({ ...base, shard: '1/3', run: 'r', startAt: at }).publishes).toBe(true);
    expect(resolveSwarmOptions({ ...base, shard: '2/3', run: 'r', startAt: at }).publishes).toBe(false);
    expect(resolveSwarmOptions({ ...base, shard: '1/3', run: 'r', startAt: at, publish: 'none' }).publishes).toBe(false);
    expect(resolveSwarmOptions({ ...base, shard: '3/3', run: 'r', startAt: at, publish: 'yes' }).publishes).toBe(true);
    expect(resolveSwarmOptions({ ...base }).publishes).toBe(true);
  });
});
