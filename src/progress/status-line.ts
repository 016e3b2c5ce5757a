/** The plain progress line printed every few seconds when there is no dashboard (CI, pipes, TERM=dumb). */
import { formatMsLive as ms, formatPercentWhole } from '../metrics/format.js';
import type { SwarmSnapshot } from '../metrics/snapshot.js';

export function statusLine(s: SwarmSnapshot): string {
  const c = s.conns;
  let line =
    `[${s.phase} ${Math.round(s.elapsedMs / 1000)}s/${Math.round(s.totalMs / 1000)}s] ` +
    `open ${c.open}/${c.target} connecting ${c.connecting} reconnecting ${c.reconnecting} failed ${c.failed} | ` +
    `pub ${s.publishedPerSec}/s recv ${s.deliveredPerSec}/s | ` +
    (s.latencyLast.count === 0 ? 'p50 - p99 - max -' : `p50 ${ms(s.latencyLast.p50)} p99 ${ms(s.latencyLast.p99)} max ${ms(s.latencyLast.max)}`);
  const errors = Object.values(s.errors).reduce((a, b) => a + b, 0);
  if (errors) line += ` | errors ${errors}`;
  const a = s.audit;
  if (a.expected > 0) line += ` | lost ${a.lost} dup ${a.duplicated} ooo ${a.outOfOrder} (>${a.graceMs / 1000}s old)`;
  if (s.misrouted) line += ` | MISROUTED ${s.misrouted}`;
  for (const [i, st] of s.storms.entries()) if (st.aborted) line += ` | storm${i + 1} back ${st.back}/${st.aborted}`;
  if (s.selfCheck.saturated) line += ` | CLIENT SATURATED (loop p99 ${ms(s.selfCheck.eldP99Ms)})`;
  for (const server of s.selfCheck.server?.servers ?? []) {
    if (server.saturated) line += ` | SERVER SATURATED (${server.url} CPU ${formatPercentWhole(server.cpu)}, loop p99 ${ms(server.eldP99Ms)})`;
  }
  return line;
}
