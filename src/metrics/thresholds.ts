/**
 * `--threshold EXPR`: parser and evaluator. Grammar: `[<transport>.]<metric> <op> <value>[unit]`, spaces optional:
 * `p99<250ms`, `lost==0`, `lost_rate<0.1%`, `connect.p99 < 1s`, `ws.reconnect.p99.9<5s`, `delivered_per_sec>=900`.
 *
 * - ops: `<` `<=` `>` `>=` `==` `!=`.
 * - time metrics (latency, connect, reconnect): units `us` `ms` `s` `m`; a bare number is ms. Compared in ms.
 * - rate metrics (`*_rate`): `%` (`0.1%` = 0.001) or a bare fraction between 0 and 1.
 * - count metrics: a bare number. `delivered_per_sec` (events/s): a bare number or `N/s`.
 * - transport prefix `sse.` `ws.` `poll.` checks that transport's summary; without it the run's total.
 * - `publish.failed` / `publish.failed_rate`: probes the server did not accept (any answer but 2xx, or none), of the
 *   probes sent; the run's publisher, so no transport prefix. Refused probes are owed to nobody, so `lost==0` alone
 *   passes a server that turns a share of the publishes away: gate on `publish.failed==0` too.
 *
 * A threshold over no data fails, whatever its operator: a gate that checked nothing must not pass. Each metric
 * names what it is measured over (its basis): event figures over the probes expected, latency over the probes
 * received, connect over the connects, reconnect over the reconnects, connection figures and errors over the
 * connection attempts, `published` / `expected` over the probes published. When the basis is 0, the verdict is a
 * failure with `noData` saying so: `lost==0` against a server that refused every publish is "no data: 0 probes
 * expected", `reconnect.p99<5s` in a run where nothing reconnected is "no data: 0 reconnects", `sse.p99<100ms` in
 * a run without SSE subscribers is "no data: 0 probes received".
 */
import { usageError } from '../errors.js';
import type { DurationSummary } from './histogram.js';
import { emptyTransportSummary, totalErrors, type RunSummary, type TransportSummary } from './summary.js';
import { isTransportName, type TransportName } from '../protocol/transports.js';

export type ThresholdOp = '<' | '<=' | '>' | '>=' | '==' | '!=';
/** How a metric's value reads: ms, fraction 0..1, plain count, or events per second. */
export type MetricKind = 'time' | 'rate' | 'count' | 'perSec';

/** A parsed `--threshold`. */
export interface Threshold {
  /** The expression as the user wrote it. */
  expr: string;
  /** Set when the expression starts with a transport prefix; otherwise the total is checked. */
  transport?: TransportName;
  /** Canonical metric name, e.g. `latency.p99` for `p99`. */
  metric: string;
  kind: MetricKind;
  op: ThresholdOp;
  /** The limit in the metric's unit: ms for time, a fraction for rates, a plain number otherwise. */
  value: number;
}

/** A threshold with its measured value and verdict. */
export interface ThresholdResult extends Threshold {
  /** The measured figure, in the same unit as `value` (0 when there is no data). */
  actual: number;
  /** True when there is data and `actual <op> value` holds. */
  ok: boolean;
  /** Set when the metric had nothing to be measured over, e.g. `no data: 0 probes expected`; `ok` is then false. */
  noData?: string;
  /**
   * Set when this process cannot judge the metric and leaves it to `notify report --merge` (event figures of a
   * shard that does not publish); `ok` is then true: no verdict yet, not a pass of the run.
   */
  pending?: string;
}

/** The publisher's figures a threshold can look at: the run's, not one transport's. */
export interface PublisherCounts {
  sent: number;
  accepted: number;
}
const NO_PUBLISHER: PublisherCounts = { sent: 0, accepted: 0 };

/** What a metric is measured over: a count, and its name for `noData` (`0 probes expected`). */
interface Basis {
  count: (s: TransportSummary, p: PublisherCounts) => number;
  what: string;
}

interface MetricDef {
  kind: MetricKind;
  read: (s: TransportSummary, p: PublisherCounts) => number;
  basis: Basis;
  /** The run's figure: a transport prefix is refused. */
  runOnly?: boolean;
}

const EXPECTED: Basis = { count: (s) => s.events.expected, what: 'probes expected' };
const PUBLISHED: Basis = { count: (s) => s.events.published, what: 'probes published' };
const SENT: Basis = { count: (_s, p) => p.sent, what: 'probes sent' };
const ATTEMPTS: Basis = { count: (s) => s.connect.count + s.connections.failed, what: 'connection attempts' };
const DURATION_BASIS: Record<'latency' | 'connect' | 'reconnect', Basis> = {
  latency: { count: (s) => s.latency.count, what: 'probes received' },
  connect: { count: (s) => s.connect.count, what: 'connects' },
  reconnect: { count: (s) => s.reconnect.count, what: 'reconnects' },
};

const METRICS = new Map<string, MetricDef>();
const ALIASES = new Map<string, string>();

const PERCENTILES: ReadonlyArray<[name: string, key: keyof DurationSummary]> = [
  ['min', 'min'],
  ['p50', 'p50'],
  ['p90', 'p90'],
  ['p99', 'p99'],
  ['p99.9', 'p999'],
  ['max', 'max'],
  ['mean', 'mean'],
];
for (const group of ['latency', 'connect', 'reconnect'] as const) {
  for (const [name, key] of PERCENTILES) {
    const canonical = `${group}.${name}`;
    METRICS.set(canonical, { kind: 'time', read: (s) => s[group][key], basis: DURATION_BASIS[group] });
    if (key === 'p999') ALIASES.set(`${group}.p999`, canonical);
    if (group === 'latency') {
      ALIASES.set(name, canonical);
      if (key === 'p999') ALIASES.set('p999', canonical);
    }
  }
}
const EVENT_METRICS = [
  ['delivered', 'delivered', 'deliveredRate'],
  ['lost', 'lost', 'lostRate'],
  ['duplicated', 'duplicated', 'duplicatedRate'],
  ['out_of_order', 'outOfOrder', 'outOfOrderRate'],
  ['recovered', 'recovered', 'recoveredRate'],
  ['misrouted', 'misrouted', 'misroutedRate'],
] as const;
for (const [name, count, rate] of EVENT_METRICS) {
  METRICS.set(name, { kind: 'count', read: (s) => s.events[count], basis: EXPECTED });
  METRICS.set(`${name}_rate`, { kind: 'rate', read: (s) => s.events[rate], basis: EXPECTED });
}
METRICS.set('expected', { kind: 'count', read: (s) => s.events.expected, basis: PUBLISHED });
METRICS.set('published', { kind: 'count', read: (s) => s.events.published, basis: PUBLISHED });
METRICS.set('publish.failed', { kind: 'count', read: (_s, p) => p.sent - p.accepted, basis: SENT, runOnly: true });
METRICS.set('publish.failed_rate', { kind: 'rate', read: (_s, p) => (p.sent > 0 ? (p.sent - p.accepted) / p.sent : 0), basis: SENT, runOnly: true });
METRICS.set('conns.failed', { kind: 'count', read: (s) => s.connections.failed, basis: ATTEMPTS });
METRICS.set('conns.peak', { kind: 'count', read: (s) => s.connections.peakOpen, basis: ATTEMPTS });
METRICS.set('reconnects', { kind: 'count', read: (s) => s.connections.reconnects, basis: ATTEMPTS });
ALIASES.set('conns.reconnects', 'reconnects');
METRICS.set('errors', { kind: 'count', read: (s) => totalErrors(s.errors), basis: ATTEMPTS });
METRICS.set('delivered_per_sec', { kind: 'perSec', read: (s) => s.deliveredPerSec, basis: EXPECTED });

/** Every metric name a threshold accepts (canonical names, then aliases). */
export const THRESHOLD_METRICS: readonly string[] = [...METRICS.keys(), ...ALIASES.keys()];

const EXPR = /^([a-z][\w.]*?)\s*(<=|>=|==|!=|<|>)\s*(\d+(?:\.\d+)?|\.\d+)\s*(us|µs|ms|s|m|%|\/s)?$/;
const TIME_UNIT_MS: Record<string, number> = { us: 0.001, µs: 0.001, ms: 1, s: 1000, m: 60_000 };
const EXAMPLES = 'e.g. p99<250ms, lost==0, lost_rate<0.1%, connect.p99<1s, ws.reconnect.p99<5s';

// Limits come from decimal text; trim binary noise such as 0.7/100 = 0.006999999999999999.
const tidy = (n: number): number => Number(n.toPrecision(12));

function fail(expr: string, why: string, hint?: string): never {
  throw usageError(`--threshold "${expr}": ${why}`, hint);
}

/**
 * Parses one `--threshold` expression.
 * @throws NotifyError E_USAGE (exit 2) naming the expression: malformed, unknown metric (lists the valid ones), or a
 *   unit that does not fit the metric.
 */
export function parseThreshold(expr: string): Threshold {
  const m = EXPR.exec(expr.trim().toLowerCase());
  if (!m) {
    const hint = /[^<>!=]=[^=]/.test(expr) ? 'compare with == (a single = is not an operator)' : undefined;
    fail(expr, `expected <metric> <op> <value>[unit], ${EXAMPLES}`, hint);
  }
  const [, rawName, op, number, unit] = m as unknown as [string, string, ThresholdOp, string, string | undefined];
  let name = rawName;
  let transport: TransportName | undefined;
  const dot = name.indexOf('.');
  if (dot > 0 && isTransportName(name.slice(0, dot))) {
    transport = name.slice(0, dot) as TransportName;
    name = name.slice(dot + 1);
  }
  const metric = ALIASES.get(name) ?? name;
  const def = METRICS.get(metric);
  if (!def) fail(expr, `unknown metric "${name}"; valid metrics: ${THRESHOLD_METRICS.join(', ')}`);
  if (def.runOnly && transport !== undefined) fail(expr, `${metric} is the run's publisher figure; drop the "${transport}." prefix`);
  let value = Number(number);
  switch (def.kind) {
    case 'time':
      if (unit !== undefined && !(unit in TIME_UNIT_MS)) fail(expr, `${metric} is a duration; use us, ms, s or m (got "${unit}")`);
      value = tidy(value * TIME_UNIT_MS[unit ?? 'ms']!);
      break;
    case 'rate':
      if (unit === '%') value = tidy(value / 100);
      else if (unit !== undefined) fail(expr, `${metric} is a rate; give a percentage like 0.1% or a fraction (got "${unit}")`);
      else if (value > 1) fail(expr, `${metric} without % is a fraction between 0 and 1 (got ${number})`, `did you mean ${number}%?`);
      break;
    case 'count':
      if (unit !== undefined) fail(expr, `${metric} is a count; give a bare number (got "${unit}")`);
      break;
    case 'perSec':
      if (unit !== undefined && unit !== '/s') fail(expr, `${metric} is events per second; give a number like 1000 or 1000/s (got "${unit}")`);
      break;
  }
  return transport === undefined ? { expr, metric, kind: def.kind, op, value } : { expr, transport, metric, kind: def.kind, op, value };
}

/** Parses every `--threshold` flag; the first bad one throws (see `parseThreshold`). */
export function parseThresholds(exprs: readonly string[]): Threshold[] {
  return exprs.map(parseThreshold);
}

function compare(actual: number, op: ThresholdOp, limit: number): boolean {
  switch (op) {
    case '<':
      return actual < limit;
    case '<=':
      return actual <= limit;
    case '>':
      return actual > limit;
    case '>=':
      return actual >= limit;
    case '==':
      return actual === limit;
    case '!=':
      return actual !== limit;
  }
}

const scopeOf = (t: Threshold, summary: RunSummary): TransportSummary =>
  t.transport === undefined ? summary.total : (summary.transports[t.transport] ?? emptyTransportSummary());

/** The figure a threshold looks at, in the threshold's unit; 0 when the run has no data for it. */
export function measure(t: Threshold, summary: RunSummary, publisher: PublisherCounts = NO_PUBLISHER): number {
  return METRICS.get(t.metric)!.read(scopeOf(t, summary), publisher);
}

/** `no data: 0 probes expected` when the metric had nothing to be measured over; undefined when it had. */
export function noDataReason(t: Threshold, summary: RunSummary, publisher: PublisherCounts = NO_PUBLISHER): string | undefined {
  const { basis } = METRICS.get(t.metric)!;
  const scope = scopeOf(t, summary);
  if (basis.count(scope, publisher) > 0) return undefined;
  const where = t.transport !== undefined && summary.transports[t.transport] === undefined ? ` (the run had no ${t.transport} subscribers)` : '';
  return `no data: 0 ${basis.what}${where}`;
}

/** True for a metric of the probes (expected, delivered, lost, ...): one the publisher's log decides. */
export function isEventMetric(t: Threshold): boolean {
  const { basis } = METRICS.get(t.metric)!;
  return basis === EXPECTED || basis === PUBLISHED || basis === SENT;
}

/**
 * Checks every threshold against a run's summary and its publisher's figures, in the order given; one over no data
 * fails (see `noData`). `pendingEvents`: this process has no publisher's log; event metrics are left `pending` with
 * this reason.
 */
export function evaluateThresholds(
  thresholds: readonly Threshold[],
  summary: RunSummary,
  publisher: PublisherCounts = NO_PUBLISHER,
  pendingEvents?: string,
): ThresholdResult[] {
  return thresholds.map((t) => {
    if (pendingEvents !== undefined && isEventMetric(t)) return { ...t, actual: 0, ok: true, pending: pendingEvents };
    const actual = measure(t, summary, publisher);
    const noData = noDataReason(t, summary, publisher);
    return noData === undefined ? { ...t, actual, ok: compare(actual, t.op, t.value) } : { ...t, actual, ok: false, noData };
  });
}

/** True when every threshold holds (and when there are none); false means exit code 99. */
export function thresholdsPassed(results: readonly ThresholdResult[]): boolean {
  return results.every((r) => r.ok);
}
