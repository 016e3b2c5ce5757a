/**
 * `notify report`: merge of shard results from their encoded HDR histograms (exact against the histogram of the
 * combined data), --compare with --max-regression rules (exit 99 on a regression, 0 without), and bad input files
 * (exit 2 naming the file). Results are synthetic, from histograms of known values; the CLI runs in-process.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../src/cli.js';
import { decodeHistogram } from '../src/metrics/histogram.js';
import { compareSummaries, parseRegressionRule, parseRegressionRules } from '../src/report/compare.js';
import { mergeResults, normalizeTimeline } from '../src/result/merge.js';
import { parseResultText } from '../src/result/read.js';
import type { PhaseReport, ResultFile } from '../src/result/schema.js';
import { fakeIo } from './helpers/fake-io.js';
import { fixtureResult, histogramOf, latencies } from './helpers/result-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'notify-report-'));
const save = (name: string, doc: unknown): string => {
  const file = join(dir, name);
  writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2));
  return file;
};

async function cli(args: string[], env: Record<string, string> = {}) {
  const f = fakeIo({ env });
  const code = await run(args, f.io);
  return { code, stdout: f.stdout(), stderr: f.stderr() };
}

// Two shards of one scenario: different sizes and latency shapes, so a wrong merge shows in the percentiles.
const latA = latencies(20_000, 1);
const latB = latencies(7_000, 2, 3);
const conA = latencies(300, 3, 10);
const conB = latencies(200, 4, 20);
const recA = latencies(40, 5, 50);
const shardA = fixtureResult({
  run: 'ra',
  conns: 300,
  published: 100,
  expected: 30_000,
  lost: 2,
  duplicated: 1,
  failed: 3,
  reconnects: 40,
  latencyMs: latA,
  connectMs: conA,
  reconnectMs: recA,
  errors: { ECONNRESET: 3 },
  thresholds: ['p99<50ms', 'lost==0', 'connect.p99<1s'],
});
const shardB = fixtureResult({
  run: 'rb',
  conns: 200,
  published: 100,
  expected: 20_000,
  lost: 0,
  outOfOrder: 4,
  misrouted: 6,
  latencyMs: latB,
  connectMs: conB,
  errors: { ECONNRESET: 1, 'HTTP 503': 2 },
  thresholds: ['p99<50ms', 'lost==0', 'connect.p99<1s'],
});

describe('merge', () => {
  it('equals the histogram of the combined data: counts and every percentile exact', () => {
    const merged = mergeResults([
      { file: 'a.json', result: shardA },
      { file: 'b.json', result: shardB },
    ]);
    const all = { latency: histogramOf([...latA, ...latB]), connect: histogramOf([...conA, ...conB]), reconnect: histogramOf(recA) };
    for (const scope of [merged.summary.total, merged.summary.transports.sse!]) {
      expect(scope.latency).toEqual(all.latency.summary());
      expect(scope.connect).toEqual(all.connect.summary());
      expect(scope.reconnect).toEqual(all.reconnect.summary());
    }
    expect(merged.summary.total.latency.count).toBe(27_000);
    // The merged encoding decodes to the same distribution.
    expect(decodeHistogram(merged.histograms.total!.latency).summary()).toEqual(all.latency.summary());
    // Not simply the worse shard's figure: shard B alone has a higher p99 than the combination.
    expect(merged.summary.total.latency.p99).toBeLessThan(shardB.summary.total.latency.p99);
  });

  it('sums connections, counts and errors, recomputes rates, and re-evaluates thresholds on the merged figures', () => {
    const merged = mergeResults([
      { file: 'a.json', result: shardA },
      { file: 'b.json', result: shardB },
    ]);
    const t = merged.summary.total;
    expect(t.connections).toEqual({ target: 500, peakOpen: 500, failed: 3, reconnects: 40 });
    expect(t.events).toMatchObject({ published: 200, expected: 50_000, delivered: 49_998, lost: 2, duplicated: 1, outOfOrder: 4, misrouted: 6 });
    expect(t.events.misroutedRate).toBeCloseTo(6 / 50_000, 12);
    expect(merged.summary.transports.sse!.events.misrouted).toBe(6);
    expect(merged.problems).toEqual([]);
    expect(t.events.lostRate).toBeCloseTo(2 / 50_000, 12);
    expect(t.errors).toEqual({ ECONNRESET: 4, 'HTTP 503': 2 });
    expect(t.deliveredPerSec).toBeCloseTo(shardA.summary.total.deliveredPerSec + shardB.summary.total.deliveredPerSec, 9);
    expect(merged.config.conns).toBe(500);
    expect(merged.run).toBe('ra+rb');
    expect(merged.merged!.from.map((f) => f.file)).toEqual(['a.json', 'b.json']);
    const byExpr = Object.fromEntries(merged.thresholds.map((r) => [r.expr, r]));
    expect(byExpr['lost==0']).toMatchObject({ actual: 2, ok: false });
    expect(byExpr['p99<50ms']!.actual).toBe(t.latency.p99);
    expect(byExpr['connect.p99<1s']!.actual).toBe(t.connect.p99);
    // Seconds of the timeline line up and add.
    expect(merged.timeline.find((p) => p.t === 5)!.delivered).toBe(10 * 300 + 10 * 200);
  });

  it("merges a scenario's phases: counts summed, latency exact from the phases' histograms, recovery times the worst", () => {
    const phase = (kind: string, startMs: number, endMs: number, lat: number[], extras: Record<string, number | null>, lost: number): PhaseReport => {
      const h = histogramOf(lat);
      return {
        kind,
        startMs,
        endMs,
        events: { expected: 1000, delivered: 1000 - lost, lost },
        latency: h.summary(),
        latencyHistogram: h.encode(),
        reconnects: 5,
        closed: { eof: 2 },
        paused: 0,
        cut: 0,
        back: 0,
        extras,
      };
    };
    const [la, lb] = [latencies(3000, 71), latencies(2000, 72, 3)];
    const a = {
      ...shardA,
      phases: [phase('burst', 0, 1000, la, { sent: 50 }, 1), phase('server-restart', 1000, 4000, la, { downMs: 2000, allBackMs: 900 }, 0)],
    };
    const b = {
      ...shardB,
      phases: [phase('burst', 10, 1100, lb, { sent: 50 }, 0), phase('server-restart', 1100, 4200, lb, { downMs: 2000, allBackMs: null }, 3)],
    };
    const merged = mergeResults([
      { file: 'a.json', result: a },
      { file: 'b.json', result: b },
    ]);
    const [burst, restart] = merged.phases!;
    expect(burst).toMatchObject({
      kind: 'burst',
      startMs: 0,
      endMs: 1100,
      events: { expected: 2000, delivered: 1999, lost: 1 },
      reconnects: 10,
      closed: { eof: 4 },
    });
    expect(burst!.extras).toEqual({ sent: 100 });
    expect(burst!.latency).toEqual(histogramOf([...la, ...lb]).summary());
    // One machine's connections never all came back: neither did the run's.
    expect(restart!.extras).toEqual({ downMs: 2000, allBackMs: null });
    expect(restart!.events.lost).toBe(3);
    // Other phases on another machine: not merged, and said so.
    const other = mergeResults([
      { file: 'a.json', result: a },
      { file: 'c.json', result: { ...shardB, phases: [b.phases[0]!] } },
    ]);
    expect(other.phases).toBeUndefined();
    expect(other.merged!.notes.join('\n')).toContain('phases not merged: a.json has [burst,server-restart], c.json has [burst]');
  });

  it('folds timeline points that fall on the same second', () => {
    const tl = normalizeTimeline([
      { t: 1, published: 5, delivered: 50, p99: 3, p50: 1, open: 10, reconnects: 0, errors: 0 },
      { t: 2, published: 5, delivered: 50, p99: 9, p50: 2, open: 10, reconnects: 1, errors: 1 },
      { t: 2, published: 1, delivered: 7, p99: 4, p50: 3, open: 9, reconnects: 2, errors: 0 },
    ]);
    expect(tl).toEqual([
      { t: 1, published: 5, delivered: 50, p99: 3, p50: 1, open: 10, reconnects: 0, errors: 0 },
      { t: 2, published: 6, delivered: 57, p99: 9, p50: 3, open: 9, reconnects: 2, errors: 1 },
    ]);
  });

  it('CLI: writes the merged result with --out, and exits 99 when the merged figures cross a threshold', async () => {
    const a = save('shard-a.json', shardA);
    const b = save('shard-b.json', shardB);
    const out = join(dir, 'merged.json');
    const r = await cli(['report', '--merge', a, b, '--out', out]);
    expect(r.stderr).toContain('merged 2 results');
    expect(r.stderr).toContain('FAIL lost==0 (actual 2)');
    expect(r.code).toBe(99);
    const merged = parseResultText(out, readFileSync(out, 'utf8'));
    expect(merged.summary.total.latency).toEqual(histogramOf([...latA, ...latB]).summary());

    // A clean pair merges to exit 0; the positional file joins the --merge list.
    const clean = fixtureResult({ run: 'rc', conns: 10, published: 10, expected: 100, latencyMs: [1, 2, 3], connectMs: [5], thresholds: ['lost==0'] });
    const c = save('clean.json', clean);
    const ok = await cli(['report', c, '--merge', c]);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain('PASS lost==0');
  });

  it('self-check: a server scraped by several shards is one server, and the bottleneck is judged on the merged sides', async () => {
    const url = 'http://127.0.0.1:8080';
    const withServers = (r: ResultFile, servers: NonNullable<ResultFile['selfCheck']['servers']>, workerCpu: number): ResultFile => ({
      ...r,
      selfCheck: {
        workers: [{ eldP99Ms: 4, eldMaxMs: 9, cpuMean: 0.3, cpuMax: workerCpu, rssBytes: 2 ** 26 }],
        saturated: workerCpu > 0.9,
        servers,
        bottleneck: 'neither',
        sides: 'x',
      },
    });
    // Shard a saw the server at 40% on average over 6 scrapes, b at 70% over 2 with a worst interval of 95%: saturated.
    const a = withServers(shardA, [{ url, samples: 6, cpuMean: 0.4, cpuMax: 0.6, eldP99Ms: 12, saturated: false }], 0.5);
    const b = withServers(shardB, [{ url, samples: 2, cpuMean: 0.7, cpuMax: 0.95, eldP99Ms: 30, saturated: true }], 0.5);
    const merged = mergeResults([
      { file: 'a.json', result: a },
      { file: 'b.json', result: b },
    ]);
    const sc = merged.selfCheck;
    expect(sc.servers).toHaveLength(1);
    expect(sc.servers![0]!.url).toBe(url);
    expect(sc.servers![0]!.samples).toBe(8);
    expect(sc.servers![0]!.cpuMean).toBeCloseTo((6 * 0.4 + 2 * 0.7) / 8, 12);
    expect(sc.servers![0]).toMatchObject({ cpuMax: 0.95, eldP99Ms: 30, saturated: true });
    expect(sc.workers).toHaveLength(2);
    expect(sc.saturated).toBe(false);
    expect(sc.bottleneck).toBe('server');
    expect(sc.sides).toMatch(
      /^client not saturated .*; server saturated: http:\/\/127\.0\.0\.1:8080 \(CPU 48% of a core on average, 95% at worst; loop p99 30\.0 ms\)$/,
    );
    expect(sc.warning).toMatch(/: latency figures are the server running out of CPU$/);

    // A saturated worker of one shard is named by its file; two servers stay two; the summary prints the verdict.
    const c = withServers(shardB, [{ url: 'http://127.0.0.1:8081', samples: 3, cpuMean: 0.2, cpuMax: 0.3, eldP99Ms: 5, saturated: false }], 0.97);
    const both = mergeResults([
      { file: 'a.json', result: a },
      { file: 'c.json', result: c },
    ]);
    expect(both.selfCheck.servers!.map((s) => s.url)).toEqual([url, 'http://127.0.0.1:8081']);
    expect(both.selfCheck.bottleneck).toBe('client');
    expect(both.selfCheck.saturated).toBe(true);
    expect(both.selfCheck.sides).toMatch(/^client saturated: c\.json worker 1 \(loop p99 4\.0 ms, CPU 97% of a core\); server not saturated: /);
    const r = await cli(['report', '--merge', save('sc-a.json', a), save('sc-c.json', c)]);
    expect(r.stderr).toMatch(/WARNING: client saturated: .*sc-c\.json worker 1 .*latency figures include client-side delay/);

    // Files without servers (older, or no /metrics): the server side is not measured, as in one run.
    const old = mergeResults([
      { file: 'a.json', result: shardA },
      { file: 'b.json', result: shardB },
    ]);
    expect(old.selfCheck.servers).toBeUndefined();
    expect(old.selfCheck.bottleneck).toBe('unknown');
    expect(old.selfCheck.sides).toMatch(/server side not measured/);
  });

  it('a histogram that does not decode is exit 2 naming the file and the field', async () => {
    const broken = structuredClone(shardB) as ResultFile;
    broken.histograms.sse!.latency = 'not-a-histogram';
    const a = save('ok-a.json', shardA);
    const b = save('broken-b.json', broken);
    const r = await cli(['report', '--merge', a, b]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${b}: histograms.sse.latency is not a valid encoded HDR histogram`);
  });
});

describe('compare', () => {
  const base = fixtureResult({ run: 'base', conns: 100, published: 100, expected: 10_000, latencyMs: latencies(10_000, 7), connectMs: latencies(100, 8, 10) });
  // Same run shape, every latency 1.5x: p99 grows by 50%.
  const slower = fixtureResult({
    run: 'slow',
    conns: 100,
    published: 100,
    expected: 10_000,
    latencyMs: latencies(10_000, 7, 1.5),
    connectMs: latencies(100, 8, 10),
  });
  const lossy = fixtureResult({
    run: 'lossy',
    conns: 100,
    published: 100,
    expected: 10_000,
    lost: 1,
    latencyMs: latencies(10_000, 7),
    connectMs: latencies(100, 8, 10),
  });

  it('parses rules: direction, relative or absolute, units', () => {
    expect(parseRegressionRule('p99:+10%')).toMatchObject({ direction: 'up', relative: true, amount: 0.1, target: { metric: 'latency.p99' } });
    expect(parseRegressionRule('delivered_rate:-5%')).toMatchObject({ direction: 'down', relative: true, amount: 0.05 });
    expect(parseRegressionRule('lost:+0')).toMatchObject({ direction: 'up', relative: false, amount: 0, target: { metric: 'lost' } });
    expect(parseRegressionRule('ws.connect.p99:+0.5s')).toMatchObject({ relative: false, amount: 500, target: { transport: 'ws', metric: 'connect.p99' } });
    expect(() => parseRegressionRule('p99<10%')).toThrow(/--max-regression "p99<10%": expected <metric>:<\+\|->/);
    expect(() => parseRegressionRule('latency:+10%')).toThrow(/--max-regression "latency:\+10%": unknown metric "latency"; valid metrics: .*p99/);
    expect(() => parseRegressionRule('lost:+5ms')).toThrow(/lost is a count/);
  });

  it('flags a figure past its allowance, and only then', () => {
    const up = compareSummaries(base.summary, slower.summary, parseRegressionRules(['p99:+20%']));
    const row = up.rows.find((r) => r.name === 'p99')!;
    expect(row.deltaRatio!).toBeCloseTo(0.5, 1);
    expect(row.regressed).toBe(true);
    expect(up.regressions.map((r) => r.name)).toEqual(['p99']);
    expect(compareSummaries(base.summary, slower.summary, parseRegressionRules(['p99:+60%'])).regressions).toEqual([]);
    // Lower is better for latency: a faster run never regresses on p99.
    expect(compareSummaries(slower.summary, base.summary, parseRegressionRules(['p99:+0%'])).regressions).toEqual([]);
    const lost = compareSummaries(base.summary, lossy.summary, parseRegressionRules(['lost:+0', 'delivered_rate:-1%']));
    expect(lost.regressions.map((r) => r.name)).toEqual(['lost']);
    expect(compareSummaries(base.summary, lossy.summary, parseRegressionRules(['delivered_rate:-0.001%'])).regressions.map((r) => r.name)).toEqual([
      'delivered_rate',
    ]);
    // Every headline figure is in the table, with and without rules.
    expect(lost.rows.map((r) => r.name)).toEqual([
      'p50',
      'p99',
      'max',
      'connect.p99',
      'reconnect.p99',
      'lost',
      'lost_rate',
      'delivered_rate',
      'duplicated',
      'out_of_order',
      'misrouted',
      'conns.failed',
      'delivered_per_sec',
    ]);
  });

  it('CLI: exit 99 on a constructed regression, 0 without; default rules when none given', async () => {
    const b = save('base.json', base);
    const s = save('slower.json', slower);
    const l = save('lossy.json', lossy);
    const same = await cli(['report', b, '--compare', b]);
    expect(same.code).toBe(0);
    expect(same.stderr).toContain('default rules');
    expect(same.stderr).toContain('no regression');

    const reg = await cli(['report', s, '--compare', b]);
    expect(reg.code).toBe(99);
    expect(reg.stderr).toMatch(/REGRESSION p99: .* -> .* \(\+\d+\.\d%\), allowed by p99:\+20%/);

    expect((await cli(['report', s, '--compare', b, '--max-regression', 'p99:+60%'])).code).toBe(0);
    expect((await cli(['report', l, '--compare', b])).code).toBe(99);
    expect((await cli(['report', l, '--compare', b, '--max-regression', 'lost:+1'])).code).toBe(0);
    expect((await cli(['report', s, '--compare', b, '--max-regression', 'nonsense'])).code).toBe(2);
  });

  it('CLI: says which side of either run ran out of CPU, and nothing when neither did', async () => {
    const b = save('clean.json', base);
    const saturated = structuredClone(slower);
    saturated.selfCheck = {
      ...saturated.selfCheck,
      saturated: false,
      bottleneck: 'server',
      sides: 'the server ran out of CPU: http://127.0.0.1:1 at 97% of a core, event-loop p99 310 ms',
    };
    const s = save('server-bound.json', saturated);
    const summary = save('step-summary-sides.md', '');
    const r = await cli(['report', s, '--compare', b, '--max-regression', 'p99:+60%'], { GITHUB_STEP_SUMMARY: summary });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('self-check: base not recorded, current server ran out of CPU;');
    expect(r.stderr).toContain('  current: the server ran out of CPU: http://127.0.0.1:1 at 97% of a core');
    expect(readFileSync(summary, 'utf8')).toMatch(/> \[!WARNING\]\n> self-check: base not recorded, current server ran out of CPU;/);
    const clean = await cli(['report', b, '--compare', b]);
    expect(clean.stderr).not.toContain('self-check:');
  });

  it('CLI: appends the comparison to $GITHUB_STEP_SUMMARY', async () => {
    const b = save('base2.json', base);
    const s = save('slower2.json', slower);
    const summary = save('step-summary.md', '# earlier step\n');
    const r = await cli(['report', s, '--compare', b], { GITHUB_STEP_SUMMARY: summary });
    expect(r.code).toBe(99);
    const md = readFileSync(summary, 'utf8');
    expect(md.startsWith('# earlier step\n')).toBe(true);
    expect(md).toContain('**1 regression(s)**: `p99`');
    expect(md).toMatch(/\| p99 \| .* \| `p99:\+20%` \| ❌ \|/);
  });
});

describe('bad input files', () => {
  it('exit 2 naming the file and what is wrong', async () => {
    const cases: [string, string, RegExp][] = [
      ['empty.json', '', /empty\.json: not JSON/],
      ['text.json', 'hello', /text\.json: not JSON \(Unexpected token/],
      ['array.json', '[1,2]', /array\.json: not a notify result: the JSON is an array/],
      ['other.json', JSON.stringify({ schema: 'k6/summary' }), /other\.json: wrong schema "k6\/summary" \(expected "notify\.result\/1"\)/],
      ['noschema.json', JSON.stringify({ run: 'x' }), /noschema\.json: not a notify result: no "schema" field/],
    ];
    const partial = structuredClone(shardA) as unknown as { summary: { total: { latency: { p99: unknown } } } };
    partial.summary.total.latency.p99 = 'fast';
    cases.push([
      'partial.json',
      JSON.stringify(partial),
      /partial\.json: not a valid notify\.result\/1 file: summary\.total\.latency\.p99: Expected number, received string/,
    ]);
    for (const [name, text, re] of cases) {
      const file = save(name, text);
      const r = await cli(['report', file]);
      expect(r.code, name).toBe(2);
      expect(r.stderr, name).toMatch(re);
    }
    const missing = await cli(['report', join(dir, 'missing.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing\.json: cannot read the file \(no such file\)/);
    const good = save('good.json', shardA);
    const badBase = await cli(['report', good, '--compare', join(dir, 'text.json')]);
    expect(badBase.code).toBe(2);
    expect(badBase.stderr).toMatch(/text\.json: not JSON/);
  });

  it('usage errors: no file, several files without --merge, rules without --compare', async () => {
    expect((await cli(['report'])).code).toBe(2);
    const a = save('u-a.json', shardA);
    const two = await cli(['report', a, a]);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain('--merge');
    expect((await cli(['report', a, '--max-regression', 'p99:+5%'])).code).toBe(2);
  });
});

describe('result files written before misrouted and problems existed', () => {
  it('read with misrouted 0 and no problems, and merge', async () => {
    const { parseResult } = await import('../src/result/read.js');
    const old = JSON.parse(JSON.stringify(shardA)) as Record<string, unknown> & {
      summary: { total: { events: Record<string, unknown> }; transports: { sse: { events: Record<string, unknown> } } };
    };
    for (const e of [old.summary.total.events, old.summary.transports.sse.events]) {
      delete e.misrouted;
      delete e.misroutedRate;
    }
    delete old.problems;
    const read = parseResult('old.json', old);
    expect(read.summary.total.events).toMatchObject({ misrouted: 0, misroutedRate: 0 });
    expect(read.problems).toEqual([]);
    expect(
      mergeResults([
        { file: 'old.json', result: read },
        { file: 'b.json', result: shardB },
      ]).summary.total.events.misrouted,
    ).toBe(6);
  });
});
