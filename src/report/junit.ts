/**
 * JUnit XML for CI test reporters: one test case per threshold, a `<failure>` for each crossed one (or one over no
 * data). A run that is a runtime failure (no connection opened, no probe accepted, a worker lost) adds a test case
 * `run` with an `<error>` per problem. The run's headline figures and warnings go to `<system-out>`, so a run without
 * thresholds still leaves a readable record.
 */
import { formatMs as ms, formatValue } from '../metrics/format.js';
import type { ResultFile } from '../result/schema.js';

// XML 1.0 allows tab, LF, CR and everything from U+0020 except the surrogates and U+FFFE/U+FFFF.
const NOT_XML = /[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu;
const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Text safe in an XML attribute or element: escaped, and characters XML cannot hold dropped. */
export const escapeXml = (s: unknown): string =>
  String(s)
    .replace(NOT_XML, '')
    .replace(/[&<>"']/g, (c) => ESC[c]!);

const seconds = (from: string, to: string): string => {
  const d = (Date.parse(to) - Date.parse(from)) / 1000;
  return Number.isFinite(d) && d >= 0 ? d.toFixed(3) : '0';
};

/** Headline figures as plain text lines (JUnit system-out). */
function headline(result: ResultFile): string {
  const t = result.summary.total;
  const e = t.events;
  const lines = [
    `run ${result.run}: ${t.connections.target} connections (peak open ${t.connections.peakOpen}, failed ${t.connections.failed}, reconnects ${t.connections.reconnects})`,
    `events: published ${e.published}, expected ${e.expected}, delivered ${e.delivered}, lost ${e.lost}, duplicated ${e.duplicated}, out-of-order ${e.outOfOrder}, recovered ${e.recovered}, misrouted ${e.misrouted}`,
    t.latency.count
      ? `latency: p50 ${ms(t.latency.p50)}, p90 ${ms(t.latency.p90)}, p99 ${ms(t.latency.p99)}, max ${ms(t.latency.max)}`
      : 'latency: no probe received',
  ];
  // The warning carries the verdict on both sides; without one (neither side saturated, or the server not measured), the verdict alone.
  if (result.selfCheck.warning) lines.push(`WARNING: ${result.selfCheck.warning}`);
  else if (result.selfCheck.sides) lines.push(`self-check: ${result.selfCheck.sides}`);
  if (result.stoppedEarly) lines.push(`stopped early: ${result.stoppedEarly}`);
  return lines.join('\n');
}

export function renderJunit(result: ResultFile): string {
  const failures = result.thresholds.filter((t) => !t.ok).length;
  const time = seconds(result.startedAt, result.endedAt);
  const suite = `notify swarm ${result.run}`;
  const cases = result.thresholds.map((t) => {
    const name = escapeXml(t.expr);
    const open = `    <testcase classname="notify.thresholds" name="${name}" time="0">`;
    const actual = formatValue(t.kind, t.actual);
    if (t.pending) return `${open}\n      <skipped message="${escapeXml(t.pending)}"/>\n    </testcase>`;
    if (t.ok) return `${open}\n      <system-out>${escapeXml(`actual ${actual}`)}</system-out>\n    </testcase>`;
    const message = t.noData ? `${t.expr} failed: ${t.noData}` : `${t.expr} crossed: actual ${actual}, limit ${t.op} ${formatValue(t.kind, t.value)}`;
    return `${open}\n      <failure type="threshold" message="${escapeXml(message)}">${escapeXml(message)}</failure>\n    </testcase>`;
  });
  const problems = result.problems ?? [];
  if (problems.length) {
    const errors = problems.map((p) => `      <error type="${escapeXml(p.code)}" message="${escapeXml(p.message)}">${escapeXml(p.message)}</error>`);
    cases.unshift(`    <testcase classname="notify.run" name="run" time="${time}">\n${errors.join('\n')}\n    </testcase>`);
  }
  const tests = cases.length;
  const errorCount = problems.length ? 1 : 0;
  const props = [
    ['run', result.run],
    ['target', result.target.urls.join(' ')],
    ['conns', String(result.summary.total.connections.target)],
    ['client.saturated', String(result.selfCheck.saturated)],
    // `not measured`: no --url exposed Prometheus metrics (or a file from before the server side was measured).
    ['server.saturated', result.selfCheck.servers ? String(result.selfCheck.servers.some((s) => s.saturated)) : 'not measured'],
    ...(result.selfCheck.bottleneck ? [['bottleneck', result.selfCheck.bottleneck]] : []),
    ...(result.stoppedEarly ? [['stoppedEarly', result.stoppedEarly]] : []),
  ];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="notify" tests="${tests}" failures="${failures}" errors="${errorCount}" time="${time}">`,
    `  <testsuite name="${escapeXml(suite)}" tests="${tests}" failures="${failures}" errors="${errorCount}" skipped="${result.thresholds.filter((t) => t.pending).length}" time="${time}" timestamp="${escapeXml(result.startedAt)}">`,
    '    <properties>',
    ...props.map(([k, v]) => `      <property name="${escapeXml(k)}" value="${escapeXml(v)}"/>`),
    '    </properties>',
    ...cases,
    `    <system-out>${escapeXml(headline(result))}</system-out>`,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
