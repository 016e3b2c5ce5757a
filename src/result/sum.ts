/**
 * Adding up the figures of one scope (a transport, or the total): connections, audit counts and errors by cause
 * summed, duration histograms added bucket by bucket (exact). The swarm sums its workers' parts with it
 * (swarm/aggregate.ts) and `notify report --merge` the shards' results (result/merge.ts), so the arithmetic exists
 * once; rates and percentiles are then recomputed from the sums.
 */
import { createHistogram, EMPTY_DURATION_SUMMARY, type DurationHistogram, type DurationSummary } from '../metrics/histogram.js';
import { withRates, type EventCounts, type TransportSummary } from '../metrics/summary.js';
import type { EncodedHistograms } from './schema.js';

const HISTOGRAMS = ['latency', 'connect', 'reconnect'] as const;
export type HistogramKind = (typeof HISTOGRAMS)[number];
const CONNECTION_KEYS = ['target', 'peakOpen', 'failed', 'reconnects'] as const;
const EVENT_KEYS = ['expected', 'delivered', 'lost', 'duplicated', 'outOfOrder', 'recovered', 'misrouted'] as const;

/** Audit counts; `published` is the publisher's figure, not a part's. */
type AuditEvents = Omit<EventCounts, 'published'>;

/** One part of a scope: a worker's share of a run, or one shard's result. */
export interface ScopePart {
  connections: TransportSummary['connections'];
  events: AuditEvents;
  errors: Record<string, number>;
  histograms: EncodedHistograms;
}

/** The parts of a scope added up. */
export interface ScopeSum {
  connections: TransportSummary['connections'];
  events: AuditEvents;
  errors: Record<string, number>;
  histograms: Record<HistogramKind, DurationHistogram>;
}

/** Adds every count of `from` into `into`, by key (errors or failures by cause, closes). */
export function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/**
 * Sums the parts of one scope. Peak open is the sum of the parts' peaks: they peak at different moments, so it is an
 * upper bound of the true peak.
 * @param onBadHistogram called (and expected to throw) when a part's histogram does not decode; the decode error is
 *   thrown as it is without it.
 */
export function sumParts(
  parts: readonly ScopePart[],
  onBadHistogram: (index: number, kind: HistogramKind, err: unknown) => never = (_i, _k, err) => {
    throw err;
  },
): ScopeSum {
  const connections = { target: 0, peakOpen: 0, failed: 0, reconnects: 0 };
  const events = { expected: 0, delivered: 0, lost: 0, duplicated: 0, outOfOrder: 0, recovered: 0, misrouted: 0 };
  const errors: Record<string, number> = {};
  const histograms = { latency: createHistogram(), connect: createHistogram(), reconnect: createHistogram() };
  for (const [i, p] of parts.entries()) {
    for (const k of CONNECTION_KEYS) connections[k] += p.connections[k];
    for (const k of EVENT_KEYS) events[k] += p.events[k];
    addCounts(errors, p.errors);
    for (const k of HISTOGRAMS) {
      try {
        histograms[k].add(p.histograms[k]);
      } catch (err) {
        onBadHistogram(i, k, err);
      }
    }
  }
  return { connections, events, errors, histograms };
}

/**
 * A scope's summary and encoded histograms from its sum: rates from the counts, percentiles from the histograms.
 * `published` and `deliveredPerSec` are the whole's, which the caller knows: one publisher for every worker of a
 * run, one per shard in a merge.
 */
export function scopeSummary(sum: ScopeSum, published: number, deliveredPerSec: number): { summary: TransportSummary; histograms: EncodedHistograms } {
  const h = sum.histograms;
  return {
    summary: {
      connections: sum.connections,
      events: withRates({ published, ...sum.events }),
      latency: h.latency.summary(),
      connect: h.connect.summary(),
      reconnect: h.reconnect.summary(),
      deliveredPerSec,
      errors: sum.errors,
    },
    histograms: { latency: h.latency.encode(), connect: h.connect.encode(), reconnect: h.reconnect.encode() },
  };
}

/**
 * Percentiles of parts whose histograms are not at hand: each the worst part's (an upper bound), the count summed and
 * the mean weighted by it; every figure 0 when no part saw anything.
 */
export function worstPercentiles(parts: readonly DurationSummary[]): DurationSummary {
  const seen = parts.filter((p) => p.count > 0);
  if (seen.length === 0) return { ...EMPTY_DURATION_SUMMARY };
  const count = seen.reduce((a, p) => a + p.count, 0);
  const max = (k: keyof DurationSummary) => Math.max(...seen.map((p) => p[k]));
  return {
    count,
    min: Math.min(...seen.map((p) => p.min)),
    p50: max('p50'),
    p90: max('p90'),
    p99: max('p99'),
    p999: max('p999'),
    max: max('max'),
    mean: Math.round((seen.reduce((a, p) => a + p.mean * p.count, 0) / count) * 1000) / 1000,
  };
}
