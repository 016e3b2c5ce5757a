/** The result file, schema `notify.result/1` (DESIGN.md "Result file"): everything a report, merge or compare needs. */
import type { DurationSummary } from '../metrics/histogram.js';
import type { RunSummary, TransportName } from '../metrics/summary.js';
import type { ThresholdResult } from '../metrics/thresholds.js';
import type { EncodedHistograms, StormReport } from '../swarm/aggregate.js';
import type { TimelinePoint } from '../swarm/live.js';
import type { SwarmOutcome } from '../swarm/run.js';
import type { RunProblem } from '../swarm/verdict.js';

export const RESULT_SCHEMA = 'notify.result/1';

export interface WorkerSelfCheck {
  eldP99Ms: number;
  eldMaxMs: number;
  cpuMean: number;
  cpuMax: number;
  rssBytes: number;
}

/** A `notify.result/1` document as written by `notify swarm --out` and `notify report --merge --out`. */
export interface ResultFile {
  schema: typeof RESULT_SCHEMA;
  tool: { name: string; version: string };
  run: string;
  startedAt: string;
  endedAt: string;
  stoppedEarly: string | null;
  target: { urls: string[]; embedded: boolean };
  /** The resolved swarm config, secrets masked; `thresholds` as the expressions given. */
  config: { thresholds: string[]; [key: string]: unknown };
  summary: RunSummary;
  /** Encoded HDR histograms (compressed base64, microseconds) per transport and in total: what merges exactly. */
  histograms: Partial<Record<TransportName | 'total', EncodedHistograms>>;
  storms: StormReport[];
  publisher: { sent: number; accepted: number; failures: Record<string, number>; ack: DurationSummary };
  selfCheck: { workers: WorkerSelfCheck[]; saturated: boolean; warning?: string };
  timeline: TimelinePoint[];
  thresholds: ThresholdResult[];
  /** Why the run is a runtime failure (exit 1): no connection opened, no probe accepted, a worker lost. */
  problems: RunProblem[];
  /** Set on a result made by `notify report --merge`: the files it was made from, and how each figure was combined. */
  merged?: { from: { file: string; run: string; startedAt: string; conns: number }[]; notes: string[] };
}

export function buildResult(outcome: SwarmOutcome, version: string): ResultFile {
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
    problems: outcome.problems,
  };
}

