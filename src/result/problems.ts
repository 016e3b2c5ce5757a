/**
 * Whether a run measured anything at all. A run in which no connection ever opened, or in which the server accepted
 * none of the probes sent, or whose workers did not all report, is a runtime failure (exit 1) whatever its
 * thresholds say: its figures describe a server that was not tested. Each problem is one sentence a person can act
 * on; they go to the result file (`problems`), the printed summary and every report. The figures are judged the same
 * way for a swarm run and for a merge of shards; lost workers only the swarm knows of (swarm/verdict.ts).
 */
import { formatCauses } from '../metrics/format.js';
import type { RunSummary } from '../metrics/summary.js';
import type { PublisherFigures, RunProblem } from './schema.js';

/** What to check for the commonest publish failure causes. */
function publishHint(failures: Record<string, number>): string {
  if (failures['http-401'] || failures['http-403'])
    return ': the server refused the publish key; pass the key it was started with (--publish-key or NOTIFY_PUBLISH_KEY)';
  if (failures.ECONNREFUSED) return ': nothing listens at the publish URL';
  return '';
}

/** The problems the figures show (none for a run that measured something). */
export function runProblems(summary: RunSummary, publisher: PublisherFigures): RunProblem[] {
  const problems: RunProblem[] = [];
  const t = summary.total;
  if (t.connections.target > 0 && t.connect.count === 0) {
    const causes = formatCauses(t.errors);
    problems.push({
      code: 'no-connection',
      message: `no connection ever opened: ${t.connections.failed} of the attempts failed${causes ? ` (${causes})` : ''}`,
    });
  }
  if (publisher.sent > 0 && publisher.accepted === 0) {
    const causes = formatCauses(publisher.failures);
    problems.push({
      code: 'no-probe-accepted',
      message: `the server accepted none of the ${publisher.sent} probes sent${causes ? ` (${causes})` : ''}${publishHint(publisher.failures)}`,
    });
  }
  return problems;
}
