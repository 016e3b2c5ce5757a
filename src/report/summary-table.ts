/**
 * The final summary of a run as cli-table3 tables (stderr): per transport and total, errors by cause per transport,
 * the publisher's failures by cause, storms, thresholds (with the reason when one had no data) and, last, why the run
 * is a runtime failure. Every failure class the result file holds shows here too, so nothing fails only in the JSON.
 */
import Table from 'cli-table3';
import type { DurationSummary } from '../metrics/histogram.js';
import type { RunSummary, TransportSummary } from '../metrics/summary.js';
import type { ThresholdResult } from '../metrics/thresholds.js';
import { formatCauses, formatMs as ms, formatPercent as pct, formatPerSec, formatRaw } from '../metrics/format.js';
import type { PhaseReport, PublisherFigures, ResultFile, RunProblem, StormReport } from '../result/schema.js';

const dist = (d: DurationSummary) => (d.count === 0 ? '-' : `${ms(d.p50)} / ${ms(d.p90)} / ${ms(d.p99)} / ${ms(d.max)}`);

export interface SummaryView {
  summary: RunSummary;
  storms?: StormReport[];
  thresholds?: ThresholdResult[];
  selfCheckWarning?: string;
  /** Which side ran out of CPU, with the client's and the servers' figures (absent in older files). */
  selfCheckSides?: string;
  durationS?: number;
  publisher?: PublisherFigures;
  problems?: readonly RunProblem[];
  phases?: PhaseReport[];
  /** The target's profile and, per transport used, how it resumes after a reconnect. */
  target?: { profile?: string; resume?: Record<string, string> };
  /** A shard that does not publish: its expected / delivered / lost wait for the merge (this says which shard). */
  pendingShard?: string;
}

/** What the summary shows of a result: the same for a run that just ended and for `notify report`. */
export function summaryViewOf(result: ResultFile): SummaryView {
  return {
    summary: result.summary,
    storms: result.storms,
    thresholds: result.thresholds,
    selfCheckWarning: result.selfCheck.warning,
    selfCheckSides: result.selfCheck.sides,
    publisher: result.publisher,
    problems: result.problems,
    target: result.target,
    phases: result.phases,
    pendingShard: result.shard && !result.shard.publishes ? `${result.shard.index}/${result.shard.count}` : undefined,
  };
}

/** What a target that cannot resume means for the figures, when one of the run's transports is such; else undefined. */
export function noResumeNote(target: SummaryView['target']): string | undefined {
  const over = Object.entries(target?.resume ?? {})
    .filter(([, mode]) => mode === 'none')
    .map(([t]) => t);
  if (over.length === 0) return undefined;
  return `the ${target?.profile ?? ''} target cannot resume over ${over.join(', ')} (resume: none): what it sent while a subscriber was reconnecting is lost to that subscriber, and counted as lost`;
}

/** What a phase did, in a few words: its own figures, slow readers cut and back, streams the server ended. */
export function phaseNotes(p: PhaseReport): string {
  return [
    ...Object.entries(p.extras).map(([k, v]) => `${k} ${v === null ? 'never' : Number.isInteger(v) ? v : v.toFixed(0)}`),
    ...(p.paused > 0 ? [`paused ${p.paused}, cut ${p.cut}, back ${p.back}`] : []),
    ...(Object.keys(p.closed).length > 0 ? [`closed: ${formatCauses(p.closed, Infinity)}`] : []),
  ].join('; ');
}

/** One row per scenario phase: its span, its own lost and latency, and what it did. */
function phaseTable(phases: readonly PhaseReport[], style: Table.TableConstructorOptions['style']): string {
  const table = new Table({ head: ['phase', 'from-to', 'expected', 'delivered', 'lost', 'reconnects', 'latency p50/p99', 'notes'], style });
  phases.forEach((p, i) => {
    const l = p.latency;
    table.push([
      `${i + 1} ${p.kind}`,
      `${(p.startMs / 1000).toFixed(1)}-${(p.endMs / 1000).toFixed(1)}s`,
      p.events.expected,
      p.events.delivered,
      p.events.lost,
      p.reconnects,
      l.count === 0 ? '-' : `${ms(l.p50)} / ${ms(l.p99)}`,
      phaseNotes(p),
    ]);
  });
  return table.toString() + '\n';
}

export function renderSummary(view: SummaryView, color: boolean): string {
  const style = color ? {} : { head: [], border: [] };
  const rows: [string, TransportSummary][] = [...Object.entries(view.summary.transports), ['total', view.summary.total]] as [string, TransportSummary][];
  const conns = new Table({ head: ['', 'conns', 'peak open', 'failed', 'reconnects', 'connect p50/p90/p99/max', 'reconnect p99'], style });
  const events = new Table({ head: ['', 'expected', 'delivered', 'lost', 'duplicated', 'out-of-order', 'recovered', 'misrouted', 'events/s'], style });
  const latency = new Table({ head: ['', 'latency p50', 'p90', 'p99', 'p99.9', 'max', 'mean'], style });
  for (const [name, s] of rows) {
    const c = s.connections;
    const e = s.events;
    conns.push([name, c.target, c.peakOpen, c.failed, c.reconnects, dist(s.connect), s.reconnect.count ? ms(s.reconnect.p99) : '-']);
    const pending = view.pendingShard !== undefined;
    events.push([
      name,
      pending ? 'pending' : e.expected,
      pending ? 'pending' : `${e.delivered} (${pct(e.deliveredRate)})`,
      pending ? 'pending' : `${e.lost} (${pct(e.lostRate)})`,
      e.duplicated,
      e.outOfOrder,
      e.recovered,
      e.misrouted,
      pending ? 'pending' : formatPerSec(s.deliveredPerSec, false),
    ]);
    const l = s.latency;
    latency.push(l.count === 0 ? [name, '-', '-', '-', '-', '-', '-'] : [name, ms(l.p50), ms(l.p90), ms(l.p99), ms(l.p999), ms(l.max), ms(l.mean)]);
  }
  let out = view.pendingShard
    ? `shard ${view.pendingShard} does not publish: its expected, delivered and lost are settled by notify report --merge with the publishing shard's log\n`
    : `published ${view.summary.total.events.published} probes\n`;
  out += `${conns.toString()}\n${events.toString()}\n${latency.toString()}\n`;
  if (view.phases?.length) out += phaseTable(view.phases, style);
  if (view.selfCheckWarning) out += `WARNING: ${view.selfCheckWarning}\n`;
  else if (view.selfCheckSides) out += `self-check: ${view.selfCheckSides}\n`;
  const perTransport = Object.entries(view.summary.transports);
  if (perTransport.length > 1) {
    for (const [name, s] of perTransport) if (formatCauses(s.errors)) out += `errors (${name}): ${formatCauses(s.errors, Infinity)}\n`;
  } else if (formatCauses(view.summary.total.errors)) {
    out += `errors${perTransport[0] ? ` (${perTransport[0][0]})` : ''}: ${formatCauses(view.summary.total.errors, Infinity)}\n`;
  }
  if (view.summary.total.events.misrouted > 0) {
    out += `MISROUTED: ${view.summary.total.events.misrouted} receipts of probes of another user's stream: the server sent notifications to subscribers they were not for\n`;
  }
  const noResume = noResumeNote(view.target);
  if (noResume) out += `NO RESUME: ${noResume}\n`;
  if (view.publisher) {
    const p = view.publisher;
    const failed = formatCauses(p.failures, Infinity);
    out += `publisher: sent ${p.sent}, accepted ${p.accepted}${failed ? `; failed: ${failed}` : ''}\n`;
  }
  for (const [i, s] of (view.storms ?? []).entries()) {
    const t = (v: number | null) => (v === null ? 'never' : ms(v));
    out += `storm ${i + 1} (${Math.round(s.share * 100)}% at ${ms(s.atMs)}): aborted ${s.aborted}, back ${s.back}; 99% back in ${t(s.back99Ms)}, 100% in ${t(s.back100Ms)}`;
    const f = Object.entries(s.failures);
    out += f.length ? `; failed attempts: ${formatCauses(s.failures, Infinity)}\n` : '\n';
  }
  for (const r of view.thresholds ?? []) {
    out += `${r.pending ? 'PENDING' : r.ok ? 'PASS' : 'FAIL'} ${r.expr} (${r.pending ?? r.noData ?? `actual ${formatRaw(r.actual)}`})\n`;
  }
  for (const p of view.problems ?? []) out += `RUN FAILED: ${p.message}\n`;
  return out;
}
