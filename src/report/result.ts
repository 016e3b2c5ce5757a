/** The result file, schema `notify.result/1` (DESIGN.md "Result file"): everything a report, merge or compare needs. */
import type { SwarmOutcome } from '../swarm/run.js';

export const RESULT_SCHEMA = 'notify.result/1';

export function buildResult(outcome: SwarmOutcome, version: string): Record<string, unknown> {
  const { config } = outcome;
  // Secrets stay out of files people share.
  const { publishKey, jwtSecret, thresholds, ...rest } = config;
  return {
    schema: RESULT_SCHEMA,
    tool: { name: 'notify', version },
    run: config.run,
    startedAt: outcome.startedAt,
    endedAt: outcome.endedAt,
    stoppedEarly: outcome.stoppedEarly ?? null,
    target: { urls: outcome.urls, embedded: outcome.embedded },
    config: { ...rest, publishKey: publishKey ? '***' : undefined, jwtSecret: jwtSecret ? '***' : undefined, thresholds: thresholds.map((t) => t.expr) },
    summary: outcome.summary,
    histograms: outcome.histograms,
    storms: outcome.storms,
    publisher: outcome.publisher,
    selfCheck: outcome.selfCheck,
    timeline: outcome.timeline,
    thresholds: outcome.thresholds,
  };
}
