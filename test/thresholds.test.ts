import { describe, expect, it } from 'vitest';
import { evaluateThresholds, parseThreshold, parseThresholds, THRESHOLD_METRICS, thresholdsPassed, type Threshold } from '../src/metrics/thresholds.js';
import { emptyTransportSummary, withRates, type RunSummary, type TransportSummary } from '../src/metrics/summary.js';
import { NotifyError } from '../src/errors.js';

function transport(over: (s: TransportSummary) => void): TransportSummary {
  const s = emptyTransportSummary();
  over(s);
  return s;
}

const ws = transport((s) => {
  s.connections = { target: 100, peakOpen: 100, failed: 2, reconnects: 7 };
  s.events = withRates({ published: 1000, expected: 100_000, delivered: 99_900, lost: 100, duplicated: 5, outOfOrder: 3, recovered: 40, misrouted: 20 });
  s.latency = { count: 99_905, min: 0.4, p50: 3.2, p90: 8.5, p99: 120.25, p999: 480, max: 1500, mean: 6.1 };
  s.connect = { count: 107, min: 1, p50: 4, p90: 9, p99: 800, p999: 950, max: 950, mean: 20 };
  s.reconnect = { count: 7, min: 100, p50: 1200, p90: 2500, p99: 4900, p999: 4900, max: 4900, mean: 1500 };
  s.deliveredPerSec = 3330;
  s.errors = { ECONNRESET: 2, 'WS 1006': 7 };
});
const summary: RunSummary = { total: ws, transports: { ws } };

function check(expr: string): { actual: number; ok: boolean; value: number } {
  const [r] = evaluateThresholds([parseThreshold(expr)], summary);
  return r!;
}

function usageFailure(expr: string): NotifyError {
  try {
    parseThreshold(expr);
  } catch (err) {
    expect(err).toBeInstanceOf(NotifyError);
    const e = err as NotifyError;
    expect(e.exitCode).toBe(2);
    expect(e.code).toBe('E_USAGE');
    expect(e.message).toContain(`"${expr}"`);
    return e;
  }
  throw new Error(`"${expr}" was accepted`);
}

describe('parseThreshold', () => {
  it('parses metric, op, value and unit, with or without spaces', () => {
    const want: Omit<Threshold, 'expr'> = { metric: 'latency.p99', kind: 'time', op: '<', value: 250 };
    expect(parseThreshold('p99<250ms')).toEqual({ expr: 'p99<250ms', ...want });
    expect(parseThreshold('  p99 <  250 ms ')).toEqual({ expr: '  p99 <  250 ms ', ...want });
    expect(parseThreshold('latency.p99<250ms')).toMatchObject(want);
  });

  it('accepts every operator', () => {
    for (const op of ['<', '<=', '>', '>=', '==', '!=']) expect(parseThreshold(`lost${op}3`).op).toBe(op);
  });

  it('converts time units to ms; a bare number is ms', () => {
    expect(parseThreshold('p50<1500us').value).toBe(1.5);
    expect(parseThreshold('p50<1500µs').value).toBe(1.5);
    expect(parseThreshold('p50<20').value).toBe(20);
    expect(parseThreshold('connect.p99<1.5s').value).toBe(1500);
    expect(parseThreshold('reconnect.max<2m').value).toBe(120_000);
    expect(parseThreshold('p99.9<0.3s')).toMatchObject({ metric: 'latency.p99.9', value: 300 });
    expect(parseThreshold('p999<5ms').metric).toBe('latency.p99.9');
  });

  it('reads rates as fractions; % divides by 100', () => {
    expect(parseThreshold('lost_rate<0.1%').value).toBe(0.001);
    expect(parseThreshold('lost_rate<0.7%').value).toBe(0.007);
    expect(parseThreshold('delivered_rate>=99.9%').value).toBe(0.999);
    expect(parseThreshold('duplicated_rate<0.01')).toMatchObject({ kind: 'rate', value: 0.01 });
  });

  it('takes a transport prefix', () => {
    expect(parseThreshold('sse.p99<100ms')).toMatchObject({ transport: 'sse', metric: 'latency.p99', value: 100 });
    expect(parseThreshold('ws.lost==0')).toMatchObject({ transport: 'ws', metric: 'lost', value: 0 });
    expect(parseThreshold('poll.connect.p99.9<1s')).toMatchObject({ transport: 'poll', metric: 'connect.p99.9', value: 1000 });
    expect(parseThreshold('p99<1s')).not.toHaveProperty('transport');
  });

  it('knows the count metrics and delivered_per_sec', () => {
    for (const m of ['expected', 'recovered', 'conns.failed', 'conns.peak', 'reconnects', 'errors', 'out_of_order', 'published']) {
      expect(parseThreshold(`${m}>=1`)).toMatchObject({ metric: m, kind: 'count', value: 1 });
    }
    expect(parseThreshold('delivered_per_sec>=900/s')).toMatchObject({ kind: 'perSec', value: 900 });
    expect(THRESHOLD_METRICS).toContain('connect.p50');
  });

  it('rejects malformed expressions with a usage error naming the expression', () => {
    for (const bad of ['', 'p99', 'p99<', '<250ms', 'p99 << 250', 'p99<abc', 'p99<-5ms', 'p99 250ms', 'p99<250 ms extra']) {
      usageFailure(bad);
    }
    expect(usageFailure('lost=0').hint).toContain('==');
  });

  it('rejects unknown metrics and lists the valid ones', () => {
    const e = usageFailure('p98<5ms');
    expect(e.message).toContain('unknown metric "p98"');
    expect(e.message).toContain('latency.p99');
    expect(e.message).toContain('lost_rate');
    usageFailure('http.p99<5ms');
    usageFailure('sse.bogus==0');
  });

  it('rejects units that do not fit the metric', () => {
    expect(usageFailure('lost<5ms').message).toContain('count');
    usageFailure('lost<5%');
    usageFailure('p99<5%');
    usageFailure('lost_rate<5s');
    expect(usageFailure('lost_rate<5').hint).toContain('5%');
    usageFailure('delivered_per_sec>5ms');
  });

  it('parses a list and stops at the first bad one', () => {
    expect(parseThresholds(['p99<1s', 'lost==0'])).toHaveLength(2);
    expect(() => parseThresholds(['p99<1s', 'nope<1'])).toThrow(/nope<1/);
  });
});

describe('evaluateThresholds', () => {
  it('evaluates each operator on the measured value', () => {
    expect(check('p99<250ms')).toMatchObject({ actual: 120.25, ok: true });
    expect(check('p99<120.25ms').ok).toBe(false);
    expect(check('p99<=120.25ms').ok).toBe(true);
    expect(check('p99>0.1s').ok).toBe(true);
    expect(check('p99>=120.26').ok).toBe(false);
    expect(check('lost==100').ok).toBe(true);
    expect(check('lost!=100').ok).toBe(false);
    expect(check('lost==0')).toMatchObject({ actual: 100, ok: false });
  });

  it('compares rates as fractions', () => {
    expect(check('lost_rate<0.1%')).toMatchObject({ actual: 0.001, value: 0.001, ok: false });
    expect(check('lost_rate<=0.1%').ok).toBe(true);
    expect(check('delivered_rate>=99.9%').ok).toBe(true);
    expect(check('duplicated_rate<0.0001').ok).toBe(true);
  });

  it('reads connections, errors, throughput and the other histograms', () => {
    expect(check('conns.failed==0')).toMatchObject({ actual: 2, ok: false });
    expect(check('conns.peak>=100').ok).toBe(true);
    expect(check('reconnects<=7').ok).toBe(true);
    expect(check('errors==9').ok).toBe(true);
    expect(check('recovered>0').ok).toBe(true);
    expect(check('out_of_order==3').ok).toBe(true);
    expect(check('delivered_per_sec>=3000').ok).toBe(true);
    expect(check('connect.p99<1s').ok).toBe(true);
    expect(check('reconnect.p99<5s')).toMatchObject({ actual: 4900, ok: true });
    expect(check('mean<6ms').ok).toBe(false);
  });

  it('checks a transport prefix against that transport; a transport the run did not have is no data, a failure', () => {
    expect(check('ws.p99<100ms').ok).toBe(false);
    expect(check('sse.p99<100ms')).toMatchObject({ actual: 0, ok: false, noData: 'no data: 0 probes received (the run had no sse subscribers)' });
    expect(check('sse.delivered>0')).toMatchObject({ actual: 0, ok: false });
  });

  it('misrouted and misrouted_rate: receipts of streams the subscriber must not get, as a count and a share of expected', () => {
    expect(check('misrouted==0')).toMatchObject({ metric: 'misrouted', actual: 20, ok: false });
    expect(check('misrouted_rate<0.1%')).toMatchObject({ actual: 0.0002, ok: true });
    expect(check('ws.misrouted<=20').ok).toBe(true);
  });

  it('a threshold over no data fails, with the reason, whatever its operator', () => {
    const idle: RunSummary = { total: emptyTransportSummary(), transports: {} };
    const results = evaluateThresholds(
      parseThresholds(['reconnect.p99<5s', 'lost_rate<0.1%', 'delivered>0', 'lost==0', 'connect.p99<1s', 'conns.failed==0']),
      idle,
    );
    expect(results.map((r) => [r.actual, r.ok, r.noData])).toEqual([
      [0, false, 'no data: 0 reconnects'],
      [0, false, 'no data: 0 probes expected'],
      [0, false, 'no data: 0 probes expected'],
      [0, false, 'no data: 0 probes expected'],
      [0, false, 'no data: 0 connects'],
      [0, false, 'no data: 0 connection attempts'],
    ]);
    expect(thresholdsPassed(results)).toBe(false);
    expect(thresholdsPassed([])).toBe(true);
  });

  it('every metric, under every operator, fails over an empty summary and has data over a full one', () => {
    const idle: RunSummary = { total: emptyTransportSummary(), transports: {} };
    for (const metric of THRESHOLD_METRICS) {
      for (const op of ['<', '<=', '>', '>=', '==', '!=']) {
        const [t] = parseThresholds([`${metric}${op}0`]);
        const [empty] = evaluateThresholds([t!], idle);
        expect(empty, `${metric}${op}0 over no data`).toMatchObject({ ok: false, noData: expect.stringMatching(/^no data: 0 /) });
        const [full] = evaluateThresholds([t!], summary, { sent: 1000, accepted: 990 });
        expect(full!.noData, `${metric}${op}0 over data`).toBeUndefined();
      }
    }
  });

  it('publish.failed and publish.failed_rate: probes sent that the server did not accept, a run figure only', () => {
    const [failed, rate, none] = evaluateThresholds(parseThresholds(['publish.failed==0', 'publish.failed_rate<0.5%', 'publish.failed<=10']), summary, {
      sent: 1000,
      accepted: 990,
    });
    expect(failed).toMatchObject({ metric: 'publish.failed', kind: 'count', actual: 10, ok: false });
    expect(rate).toMatchObject({ metric: 'publish.failed_rate', kind: 'rate', actual: 0.01, ok: false });
    expect(none).toMatchObject({ actual: 10, ok: true });
    const [unsent] = evaluateThresholds(parseThresholds(['publish.failed==0']), summary, { sent: 0, accepted: 0 });
    expect(unsent).toMatchObject({ ok: false, noData: 'no data: 0 probes sent' });
    expect(usageFailure('sse.publish.failed==0').message).toContain('drop the "sse." prefix');
    expect(usageFailure('publish.failed_rate<5').message).toContain('fraction');
  });

  it("the README's CI gate fails against a server that refused every subscribe and publish", () => {
    // What a run against a server answering 500 to everything measures: attempts that all failed, nothing expected.
    const refused = transport((s) => {
      s.connections = { target: 100, peakOpen: 0, failed: 100, reconnects: 0 };
      s.events = withRates({ published: 50, expected: 0, delivered: 0, lost: 0, duplicated: 0, outOfOrder: 0, recovered: 0, misrouted: 0 });
      s.errors = { 'http-500': 100 };
    });
    const results = evaluateThresholds(parseThresholds(['p99<250ms', 'lost==0', 'conns.failed==0']), { total: refused, transports: { sse: refused } });
    expect(results.map((r) => [r.expr, r.ok, r.noData ?? r.actual])).toEqual([
      ['p99<250ms', false, 'no data: 0 probes received'],
      ['lost==0', false, 'no data: 0 probes expected'],
      ['conns.failed==0', false, 100],
    ]);
  });

  it('keeps the expression and limit in each result', () => {
    const [r] = evaluateThresholds(parseThresholds(['ws.reconnect.p99 < 5s']), summary);
    expect(r).toEqual({
      expr: 'ws.reconnect.p99 < 5s',
      transport: 'ws',
      metric: 'reconnect.p99',
      kind: 'time',
      op: '<',
      value: 5000,
      actual: 4900,
      ok: true,
    });
  });
});
