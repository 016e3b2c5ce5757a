/**
 * Each scenario phase's figures in the result: its span, what it did (its extras), and the workers' parts summed
 * (latency merged exactly, lost by the time each probe was sent), so a reader sees what the storm did beside the run.
 */
import { mergeHistograms } from '../metrics/histogram.js';
import type { PhaseReport } from '../result/schema.js';
import { addCounts } from '../result/sum.js';
import type { Phase } from '../scenario/load.js';
import type { WorkerResult } from './messages.js';
import type { PhaseExtras } from './phases/index.js';

export interface PhaseSpan {
  phase: Phase;
  /** Epoch ms. */
  from: number;
  to: number;
  extras: PhaseExtras;
}

export function phaseReports(spans: readonly PhaseSpan[], results: readonly WorkerResult[], t0: number): PhaseReport[] {
  return spans.map((span, i) => {
    const parts = results.map((r) => r.phases[i]).filter((p) => p !== undefined);
    const sum = (f: (p: (typeof parts)[number]) => number) => parts.reduce((a, p) => a + f(p), 0);
    const closed: Record<string, number> = {};
    for (const p of parts) addCounts(closed, p.closed);
    const latency = mergeHistograms(parts.map((p) => p.latency));
    return {
      kind: span.phase.kind,
      startMs: span.from - t0,
      endMs: span.to - t0,
      events: { expected: sum((p) => p.audit.expected), delivered: sum((p) => p.audit.delivered), lost: sum((p) => p.audit.lost) },
      latency: latency.summary(),
      latencyHistogram: latency.encode(),
      reconnects: sum((p) => p.reconnects),
      closed,
      paused: sum((p) => p.paused),
      cut: sum((p) => p.cut),
      back: sum((p) => p.back),
      extras: span.extras,
    };
  });
}
