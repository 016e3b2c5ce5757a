/**
 * Markdown for a GitHub Actions job summary: appended to the file named by env GITHUB_STEP_SUMMARY by
 * `notify swarm` (the run) and `notify report` (the result shown, or the comparison).
 */
import { noResumeNote } from './summary-table.js';
import { appendFile } from 'node:fs/promises';
import { type TransportSummary } from '../metrics/summary.js';
import { TRANSPORT_NAMES } from '../protocol/transports.js';
import {
  formatCauses,
  formatChange,
  formatDelta,
  formatMs as ms,
  formatPercent as pct,
  formatPercentWhole,
  formatPerSec,
  formatValue,
} from '../metrics/format.js';
import type { Comparison } from './compare.js';
import type { ResultFile } from '../result/schema.js';

/** Table cells cannot hold `|` or line breaks. */
const cell = (s: unknown): string => String(s).replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
const row = (cells: unknown[]): string => `| ${cells.map(cell).join(' | ')} |`;

export function resultMarkdown(result: ResultFile, title = `notify swarm \`${result.run}\``): string {
  const out: string[] = [`### ${title}`, ''];
  const failed = result.thresholds.filter((t) => !t.ok);
  if (result.thresholds.length) {
    out.push(
      failed.length ? `**${failed.length} of ${result.thresholds.length} thresholds crossed**` : `**All ${result.thresholds.length} thresholds passed**`,
      '',
    );
  }
  if (result.selfCheck.warning) out.push(`> [!WARNING]\n> ${cell(result.selfCheck.warning)}`, '');
  else if (result.selfCheck.sides) out.push(`Self-check: ${cell(result.selfCheck.sides)}`, '');
  const noResume = noResumeNote(result.target);
  if (noResume) out.push(`> [!NOTE]\n> ${cell(noResume)}`, '');
  if (result.stoppedEarly) out.push(`Stopped early: ${cell(result.stoppedEarly)}`, '');
  for (const p of result.problems ?? []) out.push(`> [!CAUTION]\n> Run failed: ${cell(p.message)}`, '');
  out.push(row(['', 'conns', 'failed', 'reconnects', 'delivered', 'lost', 'dup', 'out-of-order', 'misrouted', 'latency p50', 'p99', 'max', 'events/s']));
  out.push(row(Array(13).fill('---')));
  const scopes: [string, TransportSummary][] = [];
  for (const n of TRANSPORT_NAMES) if (result.summary.transports[n]) scopes.push([n, result.summary.transports[n]!]);
  scopes.push(['**total**', result.summary.total]);
  for (const [name, s] of scopes) {
    const l = s.latency;
    out.push(
      row([
        name,
        s.connections.target,
        s.connections.failed,
        s.connections.reconnects,
        `${s.events.delivered} (${pct(s.events.deliveredRate)})`,
        `${s.events.lost} (${pct(s.events.lostRate)})`,
        s.events.duplicated,
        s.events.outOfOrder,
        s.events.misrouted,
        l.count ? ms(l.p50) : '-',
        l.count ? ms(l.p99) : '-',
        l.count ? ms(l.max) : '-',
        formatPerSec(s.deliveredPerSec, false),
      ]),
    );
  }
  const causes = (c: Record<string, number>) => formatCauses(c, Infinity);
  for (const [name, s] of scopes) if (causes(s.errors) && name !== '**total**') out.push('', `Errors (${name}): ${cell(causes(s.errors))}`);
  if (causes(result.publisher.failures))
    out.push('', `Publisher: sent ${result.publisher.sent}, accepted ${result.publisher.accepted}; failed: ${cell(causes(result.publisher.failures))}`);
  out.push(...serverRows(result.selfCheck));
  if (result.thresholds.length) {
    out.push('', row(['', 'threshold', 'actual']), row(['---', '---', '---']));
    for (const t of result.thresholds)
      out.push(row([t.pending ? '⏳' : t.ok ? '✅' : '❌', `\`${t.expr}\``, t.pending ?? t.noData ?? formatValue(t.kind, t.actual)]));
  }
  return out.join('\n') + '\n\n';
}

/** Each --url's own load beside the run's figures, and which side ran out of CPU (nothing for older files). */
function serverRows(sc: ResultFile['selfCheck']): string[] {
  if (!sc.servers?.length) return [];
  const lines = ['', row(['server', 'CPU mean', 'CPU worst interval', 'event-loop lag p99', '']), row(Array(5).fill('---'))];
  for (const s of sc.servers) {
    lines.push(row([s.url, formatPercentWhole(s.cpuMean), formatPercentWhole(s.cpuMax), ms(s.eldP99Ms), s.saturated ? '**SATURATED**' : 'ok']));
  }
  if (sc.bottleneck) lines.push('', `Bottleneck: **${sc.bottleneck}**`);
  return lines;
}

export function comparisonMarkdown(c: Comparison, baseName: string, currentName: string, selfCheck?: string): string {
  const out = [
    `### notify report: \`${cell(currentName)}\` against \`${cell(baseName)}\``,
    '',
    c.regressions.length ? `**${c.regressions.length} regression(s)**: ${c.regressions.map((r) => `\`${r.name}\``).join(', ')}` : '**No regression**',
    '',
    row(['', 'base', 'current', 'delta', 'delta %', 'rule', '']),
    row(Array(7).fill('---')),
    ...c.rows.map((r) =>
      row([
        r.name,
        formatValue(r.kind, r.base),
        formatValue(r.kind, r.current),
        formatDelta(r.kind, r.delta),
        formatChange(r.deltaRatio),
        r.rules.map((x) => `\`${x}\``).join(' '),
        r.rules.length === 0 ? '' : r.regressed ? '❌' : '✅',
      ]),
    ),
  ];
  if (selfCheck) out.push('', `> [!WARNING]\n> ${cell(selfCheck.trim().split('\n')[0]!)}`);
  return out.join('\n') + '\n\n';
}

/** Appends to $GITHUB_STEP_SUMMARY when it is set; returns the file written, if any. */
export async function appendStepSummary(env: Record<string, string | undefined>, markdown: string): Promise<string | undefined> {
  const file = env.GITHUB_STEP_SUMMARY;
  if (!file) return undefined;
  await appendFile(file, markdown);
  return file;
}
