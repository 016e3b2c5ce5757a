/**
 * How notify writes its figures, in one place for every output (summary tables, HTML, Markdown, JUnit, compare,
 * the dashboard, status lines, `notify publish`): durations in ms, counts, percentages, rates, counts by cause.
 * Where an output must differ (a live line rewritten every second, a dashboard column), it has a named variant here,
 * not a copy of its own.
 */
import type { MetricKind } from './thresholds.js';

/** A duration given in ms: 1.06ms, 16ms, 137ms, 1.25s (two decimals below 10 ms, none above; seconds from 1 s). */
export function formatMs(v: number): string {
  const a = Math.abs(v);
  if (a >= 1000) return `${(v / 1000).toFixed(2)}s`;
  return `${v.toFixed(a >= 10 ? 0 : 2)}ms`;
}

/**
 * The live lines' variant (status lines, the dashboard, `notify publish`'s progress): always ms, one decimal below
 * 100 ms (16.4ms, 250ms), so a figure keeps its unit and its width from one second to the next.
 */
export function formatMsLive(v: number): string {
  return `${v.toFixed(Math.abs(v) >= 100 ? 0 : 1)}ms`;
}

/** A fraction as a percentage: 100.00%, 0.25%, and four decimals for the tiny ones (0.0150%). */
export function formatPercent(v: number): string {
  const a = Math.abs(v);
  return `${(v * 100).toFixed(a > 0 && a < 0.001 ? 4 : 2)}%`;
}

/** A fraction as a whole percentage: CPU 31%. */
export function formatPercentWhole(v: number): string {
  return `${(v * 100).toFixed(0)}%`;
}

/** A signed relative change: +12.5%, -3.0%, 0%; n/a when there is nothing to compare with. */
export function formatChange(r: number | null): string {
  if (r === null) return 'n/a';
  if (r === 0) return '0%';
  return `${r > 0 ? '+' : ''}${(r * 100).toFixed(1)}%`;
}

/** Events per second: 10033, 12.5 (one decimal below 100); with `/s` unless the column already says so. */
export function formatPerSec(v: number, unit = true): string {
  return `${v.toFixed(Math.abs(v) >= 100 ? 0 : 1)}${unit ? '/s' : ''}`;
}

/** A count (or a computed figure in no unit): as it is, at most three decimals. */
export function formatCount(v: number): string {
  return String(Math.round(v * 1000) / 1000);
}

/** A figure as measured, in its metric's own number (ms, a fraction, a count): integers as they are, else 3 decimals. */
export function formatRaw(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(3);
}

/** The dashboard's variant for counts that must fit a column: 950, 1.2k, 34k, 1.5M. */
export function formatCompact(n: number): string {
  const a = Math.abs(n);
  if (a < 1000) return Number.isInteger(n) ? String(n) : n.toFixed(1);
  if (a < 10_000) return `${(n / 1000).toFixed(1)}k`;
  if (a < 1_000_000) return `${Math.round(n / 1000)}k`;
  return `${(n / 1_000_000).toFixed(a < 10_000_000 ? 2 : 1)}M`;
}

/** Time left on a countdown: 75 s -> "1m15s", 9 s -> "9s" (whole seconds, rounded up). */
export function formatClock(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** A figure in its metric's unit (thresholds, compare): time as `formatMs`, rates as percentages, per second, counts. */
export function formatValue(kind: MetricKind, v: number): string {
  switch (kind) {
    case 'time':
      return formatMs(v);
    case 'rate':
      return formatPercent(v);
    case 'perSec':
      return formatPerSec(v);
    case 'count':
      return formatCount(v);
  }
}

/** "+12ms", "-0.50%": a difference in the metric's unit, with its sign. */
export function formatDelta(kind: MetricKind, v: number): string {
  if (v === 0) return '0';
  const s = formatValue(kind, v);
  return v > 0 ? `+${s}` : s;
}

/** `http-401 50, ECONNREFUSED 3`: counts by cause, largest first, the first `limit` of them. */
export function formatCauses(counts: Record<string, number>, limit = 5): string {
  const entries = Object.entries(counts)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1]);
  const shown = entries
    .slice(0, limit)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return entries.length > limit ? `${shown}, +${entries.length - limit} more` : shown;
}
