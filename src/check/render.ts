/** The text report: one line per check (status, name, summary), then its evidence and, unless it passed, the fix. */
import { Chalk } from 'chalk';
import type { CheckReport, CheckStatus } from './schema.js';

const LABEL: Record<CheckStatus, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };

export function renderCheckReport(report: CheckReport, color: boolean): string {
  const c = new Chalk({ level: color ? 1 : 0 });
  const paint: Record<CheckStatus, (s: string) => string> = { pass: c.green, warn: c.yellow, fail: c.red, skip: c.gray };
  const width = Math.max(...report.checks.map((r) => r.name.length), 4);
  let out = `notify check ${report.url} (target: ${report.target}, user: ${report.user})\n\n`;
  for (const r of report.checks) {
    out += `${paint[r.status](LABEL[r.status])}  ${r.name.padEnd(width)}  ${r.summary}\n`;
    for (const e of r.evidence) out += `      ${c.gray('·')} ${e}\n`;
    if (r.status !== 'pass') for (const f of r.fix) out += `      ${c.cyan('fix')} ${f}\n`;
  }
  const { pass, warn, fail, skip } = report.counts;
  out += `\n${pass} passed, ${warn} warned, ${fail} failed, ${skip} skipped in ${(report.durationMs / 1000).toFixed(1)} s\n`;
  return out;
}
