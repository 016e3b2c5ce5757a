/**
 * Folds the workers' final parts into the run summary: audit counts summed, HDR histograms merged exactly, storms
 * measured from every aborted connection's return time.
 */
import { createHistogram, type DurationHistogram } from '../metrics/histogram.js';
import { withRates, type RunSummary, type TransportSummary } from '../metrics/summary.js';
import { TRANSPORT_NAMES, type TransportName } from '../protocol/transports.js';
import { AuditTally, toEventCounts } from './audit.js';
import type { EncodedHistograms, ResultHistograms, StormReport } from '../result/schema.js';
import type { Storm } from './config.js';
import type { WorkerResult } from './messages.js';

export interface Aggregate {
  summary: RunSummary;
  /** Per transport the run used, and in total (always there). */
  histograms: ResultHistograms;
  storms: StormReport[];
}

function addErrors(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

export function aggregate(results: WorkerResult[], published: number, publishingMs: number, storms: Storm[]): Aggregate {
  const transports: RunSummary['transports'] = {};
  const histograms: Partial<Record<TransportName, EncodedHistograms>> = {};
  const totalH = { latency: createHistogram(), connect: createHistogram(), reconnect: createHistogram() };
  const totalTally = new AuditTally();
  const total: TransportSummary['connections'] = { target: 0, peakOpen: 0, failed: 0, reconnects: 0 };
  const totalErrors: Record<string, number> = {};
  const seconds = Math.max(publishingMs, 1) / 1000;

  for (const name of TRANSPORT_NAMES) {
    const parts = results.map((r) => r.transports[name]).filter((p) => p !== undefined);
    if (parts.length === 0) continue;
    const tally = new AuditTally();
    const h: Record<keyof EncodedHistograms, DurationHistogram> = { latency: createHistogram(), connect: createHistogram(), reconnect: createHistogram() };
    const connections = { target: 0, peakOpen: 0, failed: 0, reconnects: 0 };
    const errors: Record<string, number> = {};
    for (const p of parts) {
      tally.merge(p.audit);
      totalTally.merge(p.audit);
      for (const k of ['latency', 'connect', 'reconnect'] as const) {
        h[k].add(p[k]);
        totalH[k].add(p[k]);
      }
      connections.target += p.target;
      // Workers peak at different moments: the sum is an upper bound of the true peak.
      connections.peakOpen += p.peakOpen;
      connections.failed += p.failed;
      connections.reconnects += p.reconnects;
      addErrors(errors, p.errors);
    }
    for (const k of Object.keys(connections) as (keyof typeof connections)[]) total[k] += connections[k];
    addErrors(totalErrors, errors);
    const events = withRates(toEventCounts(tally.total(), published));
    transports[name] = {
      connections,
      events,
      latency: h.latency.summary(),
      connect: h.connect.summary(),
      reconnect: h.reconnect.summary(),
      deliveredPerSec: events.delivered / seconds,
      errors,
    };
    histograms[name] = { latency: h.latency.encode(), connect: h.connect.encode(), reconnect: h.reconnect.encode() };
  }
  const events = withRates(toEventCounts(totalTally.total(), published));
  const summary: RunSummary = {
    total: {
      connections: total,
      events,
      latency: totalH.latency.summary(),
      connect: totalH.connect.summary(),
      reconnect: totalH.reconnect.summary(),
      deliveredPerSec: events.delivered / seconds,
      errors: totalErrors,
    },
    transports,
  };
  const totalEncoded = { latency: totalH.latency.encode(), connect: totalH.connect.encode(), reconnect: totalH.reconnect.encode() };
  return {
    summary,
    histograms: { ...histograms, total: totalEncoded },
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
    addErrors(failures, p.failures);
  }
  back.sort((a, b) => a - b);
  const at = (share: number): number | null => {
    if (aborted === 0) return 0;
    const need = Math.ceil(aborted * share);
    return back.length >= need ? Math.round(back[need - 1]!) : null;
  };
  return { atMs: storm.atMs, share: storm.share, aborted, back: back.length, back99Ms: at(0.99), back100Ms: at(1), failures };
}
