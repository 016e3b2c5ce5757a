/**
 * Folds the workers' final parts into the run summary, per transport and in total (the summing is result/sum.ts's,
 * the same as a merge of shards), and measures storms from every aborted connection's return time.
 */
import type { RunSummary } from '../metrics/summary.js';
import { TRANSPORT_NAMES, type TransportName } from '../protocol/transports.js';
import { addCounts, scopeSummary, sumParts, type ScopePart } from '../result/sum.js';
import { AuditTally } from './audit.js';
import type { EncodedHistograms, ResultHistograms, StormReport } from '../result/schema.js';
import type { Storm } from './config.js';
import type { TransportPart, WorkerResult } from './messages.js';

export interface Aggregate {
  summary: RunSummary;
  /** Per transport the run used, and in total (always there). */
  histograms: ResultHistograms;
  storms: StormReport[];
}

/** A worker's part of one transport, as the summing takes it. */
function workerPart(p: TransportPart): ScopePart {
  const tally = new AuditTally();
  tally.merge(p.audit);
  return {
    connections: { target: p.target, peakOpen: p.peakOpen, failed: p.failed, reconnects: p.reconnects },
    events: tally.total(),
    errors: p.errors,
    histograms: { latency: p.latency, connect: p.connect, reconnect: p.reconnect },
  };
}

export function aggregate(results: WorkerResult[], published: number, publishingMs: number, storms: Storm[]): Aggregate {
  const seconds = Math.max(publishingMs, 1) / 1000;
  // One publisher for every worker: its count is the run's, and delivery rates are over the publishing phase.
  const summarize = (parts: TransportPart[]) => {
    const sum = sumParts(parts.map(workerPart));
    return scopeSummary(sum, published, sum.events.delivered / seconds);
  };
  const transports: RunSummary['transports'] = {};
  const histograms: Partial<Record<TransportName, EncodedHistograms>> = {};
  const all: TransportPart[] = [];
  for (const name of TRANSPORT_NAMES) {
    const parts = results.map((r) => r.transports[name]).filter((p) => p !== undefined);
    if (parts.length === 0) continue;
    const scope = summarize(parts);
    transports[name] = scope.summary;
    histograms[name] = scope.histograms;
    all.push(...parts);
  }
  const total = summarize(all);
  return {
    summary: { total: total.summary, transports },
    histograms: { ...histograms, total: total.histograms },
    storms: storms.map((s, i) =>
      stormReport(
        s,
        results.map((r) => r.storms[i]),
      ),
    ),
  };
}

function stormReport(storm: Storm, parts: (WorkerResult['storms'][number] | undefined)[]): StormReport {
  let aborted = 0;
  const back: number[] = [];
  const failures: Record<string, number> = {};
  for (const p of parts) {
    if (!p) continue;
    aborted += p.aborted;
    back.push(...p.backMs);
    addCounts(failures, p.failures);
  }
  back.sort((a, b) => a - b);
  const at = (share: number): number | null => {
    if (aborted === 0) return 0;
    const need = Math.ceil(aborted * share);
    return back.length >= need ? Math.round(back[need - 1]!) : null;
  };
  return { atMs: storm.atMs, share: storm.share, aborted, back: back.length, back99Ms: at(0.99), back100Ms: at(1), failures };
}
