/**
 * `notify report --compare base.json`: headline figures of a run against a baseline, and `--max-regression` rules
 * that turn a worse figure into exit 99.
 *
 * Rule grammar: `[<transport>.]<metric>:<+|-><amount>[unit]`, metric names as in `--threshold`:
 * - `+` : the figure may grow by at most <amount> (higher is worse: latency, lost, failed);
 *   `-` : it may shrink by at most <amount> (lower is worse: delivered_rate, delivered_per_sec).
 * - `%` : relative to the baseline's value (`p99:+10%` = at most 1.1 x the baseline's p99);
 *   otherwise absolute, in the metric's unit: durations with us/ms/s/m (bare = ms), rates as a fraction
 *   (`lost_rate:+0.001` = 0.1 percentage point), counts and events/s as a number (`lost:+0` = not one more lost).
 */
import Table from 'cli-table3';
import { isNotifyError, usageError } from '../errors.js';
import { formatChange, formatDelta, formatValue } from '../metrics/format.js';
import type { RunSummary } from '../metrics/summary.js';
import type { ResultFile } from '../result/schema.js';
import { measure, parseThreshold, type MetricKind, type PublisherCounts, type Threshold } from '../metrics/thresholds.js';

export interface RegressionRule {
  expr: string;
  /** The metric as a threshold (transport, canonical metric, kind) so that `measure` can read it. */
  target: Threshold;
  /** `up`: regression when the figure grows past the allowance; `down`: when it shrinks past it. */
  direction: 'up' | 'down';
  relative: boolean;
  /** A fraction of the baseline when relative, else an amount in the metric's unit. */
  amount: number;
}

/** Used when no `--max-regression` is given. */
export const DEFAULT_REGRESSION_RULES: readonly string[] = ['p99:+20%', 'lost:+0', 'delivered_rate:-1%'];

/** The figures every comparison shows, by their `--threshold` names. */
export const HEADLINE_METRICS: readonly string[] = [
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
];

const RULE = /^([a-z][\w.]*?)\s*:\s*([+-])\s*(\d+(?:\.\d+)?|\.\d+)\s*(%|us|µs|ms|s|m)?$/;
const TIME_UNIT_MS: Record<string, number> = { us: 0.001, µs: 0.001, ms: 1, s: 1000, m: 60_000 };
const tidy = (n: number): number => Number(n.toPrecision(12));

function metricOf(name: string, flag: string, expr: string): Threshold {
  try {
    return parseThreshold(`${name}==0`);
  } catch (err) {
    if (!isNotifyError(err)) throw err;
    // Reuse the threshold parser's list of valid metrics, but name the flag the user typed.
    throw usageError(`${flag} "${expr}": ${err.message.replace(/^--threshold "[^"]*": /, '')}`);
  }
}

/**
 * Parses one `--max-regression` rule.
 * @throws NotifyError E_USAGE (exit 2) naming the rule: malformed, unknown metric, or a unit that does not fit.
 */
export function parseRegressionRule(expr: string): RegressionRule {
  const flag = '--max-regression';
  const m = RULE.exec(expr.trim().toLowerCase());
  if (!m) throw usageError(`${flag} "${expr}": expected <metric>:<+|-><amount>[%|unit], e.g. p99:+10%, lost:+0, delivered_rate:-5%, connect.p99:+50ms`);
  const [, name, sign, number, unit] = m as unknown as [string, string, '+' | '-', string, string | undefined];
  const target = metricOf(name, flag, expr);
  let amount = Number(number);
  const relative = unit === '%';
  if (relative) amount = tidy(amount / 100);
  else if (target.kind === 'time') amount = tidy(amount * TIME_UNIT_MS[unit ?? 'ms']!);
  else if (unit !== undefined) {
    throw usageError(
      `${flag} "${expr}": ${target.metric} is a ${target.kind === 'rate' ? 'rate (give % of the baseline, or a fraction)' : 'count (give % of the baseline, or a number)'}; "${unit}" does not fit`,
    );
  }
  return { expr, target, direction: sign === '+' ? 'up' : 'down', relative, amount };
}

export function parseRegressionRules(exprs: readonly string[]): RegressionRule[] {
  return exprs.map(parseRegressionRule);
}

export interface DeltaRow {
  /** The metric as shown (`p99`, `ws.connect.p99`). */
  name: string;
  kind: MetricKind;
  base: number;
  current: number;
  delta: number;
  /** delta / base; null when the baseline is 0. */
  deltaRatio: number | null;
  /** The rules that apply to this figure, and whether any was crossed. */
  rules: string[];
  /** The largest (up) or smallest (down) value allowed by the rules; undefined without rules. */
  limit?: number;
  regressed: boolean;
}

export interface Comparison {
  rows: DeltaRow[];
  regressions: DeltaRow[];
  rulesUsed: string[];
}

const rowKey = (t: Threshold) => `${t.transport ? `${t.transport}.` : ''}${t.metric}`;

/**
 * Compares the headline figures (and every figure a rule names) of `current` against `base`; `publishers` are the
 * two runs' publisher figures, for the `publish.*` metrics.
 */
export function compareSummaries(
  base: RunSummary,
  current: RunSummary,
  rules: readonly RegressionRule[],
  publishers?: readonly [base: PublisherCounts, current: PublisherCounts],
): Comparison {
  const targets = new Map<string, { name: string; target: Threshold }>();
  for (const name of HEADLINE_METRICS) {
    const target = parseThreshold(`${name}==0`);
    targets.set(rowKey(target), { name, target });
  }
  for (const r of rules) {
    const key = rowKey(r.target);
    if (!targets.has(key)) targets.set(key, { name: r.expr.split(':')[0]!.trim(), target: r.target });
  }
  const rows: DeltaRow[] = [];
  for (const [key, { name, target }] of targets) {
    const b = measure(target, base, publishers?.[0]);
    const c = measure(target, current, publishers?.[1]);
    const row: DeltaRow = { name, kind: target.kind, base: b, current: c, delta: c - b, deltaRatio: b === 0 ? null : (c - b) / b, rules: [], regressed: false };
    for (const r of rules.filter((rule) => rowKey(rule.target) === key)) {
      const allowance = r.relative ? Math.abs(b) * r.amount : r.amount;
      const limit = tidy(r.direction === 'up' ? b + allowance : b - allowance);
      const crossed = r.direction === 'up' ? c > limit : c < limit;
      row.rules.push(r.expr);
      row.limit = limit;
      row.regressed ||= crossed;
    }
    rows.push(row);
  }
  return { rows, regressions: rows.filter((r) => r.regressed), rulesUsed: rules.map((r) => r.expr) };
}

/** The delta table (stderr), and one line per regression. */
export function renderComparison(c: Comparison, color: boolean): string {
  const style = color ? { compact: true } : { head: [], border: [], compact: true };
  const table = new Table({ head: ['', 'base', 'current', 'delta', 'delta %', 'rule', 'verdict'], style });
  for (const r of c.rows) {
    table.push([
      r.name,
      formatValue(r.kind, r.base),
      formatValue(r.kind, r.current),
      formatDelta(r.kind, r.delta),
      formatChange(r.deltaRatio),
      r.rules.join(' '),
      r.rules.length === 0 ? '' : r.regressed ? 'REGRESSION' : 'ok',
    ]);
  }
  let out = `${table.toString()}\nrules: ${c.rulesUsed.join(', ')}\n`;
  for (const r of c.regressions) {
    out += `REGRESSION ${r.name}: ${formatValue(r.kind, r.base)} -> ${formatValue(r.kind, r.current)} (${formatChange(r.deltaRatio)}), allowed by ${r.rules.join(' ')}: ${formatValue(r.kind, r.limit!)}\n`;
  }
  if (c.regressions.length === 0) out += 'no regression\n';
  return out;
}

type SelfCheck = ResultFile['selfCheck'];

/**
 * Which side of each run ran out of CPU, when either did. A figure from a saturated run measures the machine as much
 * as the change, so a comparison says so beside its table; undefined when both runs were clean or neither recorded
 * a verdict (files from before the server side was measured).
 */
export function selfCheckChange(base: SelfCheck, current: SelfCheck): string | undefined {
  const saturated = (b: SelfCheck['bottleneck']) => b === 'client' || b === 'server' || b === 'both';
  if (!saturated(base.bottleneck) && !saturated(current.bottleneck)) return undefined;
  const side = ({ bottleneck: b }: SelfCheck) =>
    b === undefined
      ? 'not recorded'
      : b === 'neither'
        ? 'not saturated'
        : b === 'unknown'
          ? 'server side not measured'
          : b === 'both'
            ? 'client and server ran out of CPU'
            : `${b} ran out of CPU`;
  const lines = [
    `self-check: base ${side(base)}, current ${side(current)}; a saturated side's latency and rate figures measure the machine as well as the change`,
  ];
  for (const [name, sc] of [
    ['base', base],
    ['current', current],
  ] as const)
    if (sc.sides) lines.push(`  ${name}: ${sc.sides}`);
  return lines.join('\n') + '\n';
}
