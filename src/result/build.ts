/** Building a `notify.result/1` document from what a swarm run measured (DESIGN.md "Result file"). */
import type { TransportName } from '../protocol/transports.js';
import type { LoadedTarget } from '../targets/load.js';
import { RESULT_SCHEMA, type ResultFile } from './schema.js';

/** What of the run's resolved config a result keeps (secrets masked, thresholds as their expressions). */
export interface RunConfig {
  run: string;
  mix: Partial<Record<TransportName, number>>;
  thresholds: readonly { expr: string }[];
  publishKey?: string;
  jwtSecret?: string;
  target: Pick<LoadedTarget, 'name' | 'source' | 'subscribe'>;
}

/** A run's outcome: its figures, typed by the result schema, and what it ran against. */
export interface RunOutcome extends Pick<
  ResultFile,
  'summary' | 'histograms' | 'storms' | 'publisher' | 'selfCheck' | 'timeline' | 'thresholds' | 'problems' | 'phases' | 'shard'
> {
  config: RunConfig;
  urls: string[];
  embedded: boolean;
  startedAt: string;
  endedAt: string;
  stoppedEarly?: string;
}

export function buildResult(outcome: RunOutcome, version: string): ResultFile {
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
    ...(outcome.shard ? { shard: outcome.shard } : {}),
  };
}
