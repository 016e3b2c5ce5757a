/**
 * `--threshold EXPR`: parser and evaluator. Grammar: `[<transport>.]<metric> <op> <value>[unit]`, spaces optional:
 * `p99<250ms`, `lost==0`, `lost_rate<0.1%`, `connect.p99 < 1s`, `ws.reconnect.p99.9<5s`, `delivered_per_sec>=900`.
 *
 * - ops: `<` `<=` `>` `>=` `==` `!=`.
 * - time metrics (latency, connect, reconnect): units `us` `ms` `s` `m`; a bare number is ms. Compared in ms.
 * - rate metrics (`*_rate`): `%` (`0.1%` = 0.001) or a bare fraction between 0 and 1.
 * - count metrics: a bare number. `delivered_per_sec` (events/s): a bare number or `N/s`.
 * - transport prefix `sse.` `ws.` `poll.` checks that transport's summary; without it the run's total.
 *
 * A metric with no data is evaluated on 0, like every figure of an empty summary: `reconnect.p99<5s` passes when
 * nothing reconnected, `sse.p99<100ms` passes when the run had no SSE subscriber, and `delivered>0` fails in both
 * cases. A command that wants "the transport must exist" checks `Threshold.transport` against its config.
 */
import { usageError } from '../errors.js';
import type { DurationSummary } from './histogram.js';
import { emptyTransportSummary, totalErrors, TRANSPORT_NAMES, type RunSummary, type TransportName, type TransportSummary } from './summary.js';

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
  /** The measured figure, in the same unit as `value`. */
  actual: number;
  /** True when `actual <op> value` holds. */
  ok: boolean;
}

interface MetricDef {
  kind: MetricKind;
  read: (s: TransportSummary) => number;
}

const METRICS = new Map<string, MetricDef>();
const ALIASES = new Map<string, string>();

const PERCENTILES: ReadonlyArray<[name: string, key: keyof DurationSummary]> = [
  ['min', 'min'], ['p50', 'p50'], ['p90', 'p90'], ['p99', 'p99'], ['p99.9', 'p999'], ['max', 'max'], ['mean', 'mean'],
];
for (const group of ['latency', 'connect', 'reconnect'] as const) {
  for (const [name, key] of PERCENTILES) {
    const canonical = `${group}.${name}`;
    METRICS.set(canonical, { kind: 'time', read: (s) => s[group][key] });
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
] as const;
for (const [name, count, rate] of EVENT_METRICS) {
  METRICS.set(name, { kind: 'count', read: (s) => s.events[count] });
  METRICS.set(`${name}_rate`, { kind: 'rate', read: (s) => s.events[rate] });
}
METRICS.set('expected', { kind: 'count', read: (s) => s.events.expected });
METRICS.set('published', { kind: 'count', read: (s) => s.events.published });
METRICS.set('conns.failed', { kind: 'count', read: (s) => s.connections.failed });
METRICS.set('conns.peak', { kind: 'count', read: (s) => s.connections.peakOpen });
METRICS.set('reconnects', { kind: 'count', read: (s) => s.connections.reconnects });
ALIASES.set('conns.reconnects', 'reconnects');
METRICS.set('errors', { kind: 'count', read: (s) => totalErrors(s.errors) });
METRICS.set('delivered_per_sec', { kind: 'perSec', read: (s) => s.deliveredPerSec });

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
  if (dot > 0 && (TRANSPORT_NAMES as readonly string[]).includes(name.slice(0, dot))) {
    transport = name.slice(0, dot) as TransportName;
    name = name.slice(dot + 1);
  }
  const metric = ALIASES.get(name) ?? name;
  const def = METRICS.get(metric);
  if (!def) fail(expr, `unknown metric "${name}"; valid metrics: ${THRESHOLD_METRICS.join(', ')}`);
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
  return transport === undefined
    ? { expr, metric, kind: def.kind, op, value }
    : { expr, transport, metric, kind: def.kind, op, value };
}

/** Parses every `--threshold` flag; the first bad one throws (see `parseThreshold`). */
export function parseThresholds(exprs: readonly string[]): Threshold[] {
  return exprs.map(parseThreshold);
}

function compare(actual: number, op: ThresholdOp, limit: number): boolean {
  switch (op) {
    case '<': return actual < limit;
    case '<=': return actual <= limit;
    case '>': return actual > limit;
    case '>=': return actual >= limit;
    case '==': return actual === limit;
    case '!=': return actual !== limit;
  }
}

/** The figure a threshold looks at, in the threshold's unit; 0 when the run has no data for it. */
export function measure(t: Threshold, summary: RunSummary): number {
  const scope = t.transport === undefined ? summary.total : (summary.transports[t.transport] ?? emptyTransportSummary());
  return METRICS.get(t.metric)!.read(scope);
}

/** Checks every threshold against a run's summary, in the order given. */
export function evaluateThresholds(thresholds: readonly Threshold[], summary: RunSummary): ThresholdResult[] {
  return thresholds.map((t) => {
    const actual = measure(t, summary);
    return { ...t, actual, ok: compare(actual, t.op, t.value) };
  });
}

/** True when every threshold holds (and when there are none); false means exit code 99. */
export function thresholdsPassed(results: readonly ThresholdResult[]): boolean {
  return results.every((r) => r.ok);
}
