/** The result file, schema `notify.result/1` (DESIGN.md "Result file"): everything a report, merge or compare needs. */
import type { z } from 'zod';
import type { SwarmOutcome } from '../swarm/run.js';
import type { resultSchema } from './result-file.js';

export const RESULT_SCHEMA = 'notify.result/1';

/**
 * A `notify.result/1` document as written by `notify swarm --out` and `notify report --merge --out`: the type of what
 * the file schema (result-file.ts) accepts, so the two cannot drift. Beside `summary` (see metrics/summary.ts):
 * `config` is the resolved swarm config with secrets masked and `thresholds` as the expressions given; `histograms`
 * are encoded HDR histograms (compressed base64, microseconds) per transport and in total, what merges exactly;
 * `problems` says why the run is a runtime failure (exit 1); `merged` is set on a result made by
 * `notify report --merge`: the files it was made from, and how each figure was combined.
 */
export type ResultFile = z.output<typeof resultSchema>;

export function buildResult(outcome: SwarmOutcome, version: string): ResultFile {
  const { config } = outcome;
  // Secrets stay out of files people share.
  // The loaded profile holds its filled --target-var values (keys, tokens): the file names it and its resume modes only.
  const { publishKey, jwtSecret, thresholds, target, ...rest } = config;
  const used = Object.keys(config.mix) as (keyof typeof target.subscribe)[];
  return {
    schema: RESULT_SCHEMA,
    tool: { name: 'notify', version },
    run: config.run,
    startedAt: outcome.startedAt,
    endedAt: outcome.endedAt,
    stoppedEarly: outcome.stoppedEarly ?? null,
    target: {
      urls: outcome.urls,
      embedded: outcome.embedded,
      profile: target.name,
      source: target.source,
      resume: Object.fromEntries(used.map((t) => [t, target.subscribe[t]?.resume ?? 'none'])),
    },
    config: { ...rest, publishKey: publishKey ? '***' : undefined, jwtSecret: jwtSecret ? '***' : undefined, thresholds: thresholds.map((t) => t.expr) },
    summary: outcome.summary,
    histograms: outcome.histograms,
    storms: outcome.storms,
    publisher: outcome.publisher,
    selfCheck: outcome.selfCheck,
    timeline: outcome.timeline,
    thresholds: outcome.thresholds,
    problems: outcome.problems,
    ...(outcome.phases ? { phases: outcome.phases } : {}),
  };
}
