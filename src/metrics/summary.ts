/**
 * The figures of a swarm run, per transport and in total: the `summary` part of a `notify.result/1` file and the
 * input of threshold evaluation. Plain data (JSON-safe), so it crosses worker boundaries and lands in result files
 * as is. Declared once, as the zod schemas that check result files (src/result/schema.ts); the types are
 * derived from them. Definitions of every event figure: DESIGN.md "notify swarm measurement definitions" and
 * src/swarm/audit.ts.
 */
import { z } from 'zod';
import { durationSummarySchema, EMPTY_DURATION_SUMMARY } from './histogram.js';

const count = z.number().finite();

/** Connection figures (counts). */
export const connectionCountsSchema = z.object({
  /** Connections the run was asked to hold. */
  target: count,
  /** Most connections open at the same moment. */
  peakOpen: count,
  /** Connection attempts (first or re-) that did not reach an open stream. */
  failed: count,
  /** Successful re-opens after a lost connection. */
  reconnects: count,
});

/** Delivery audit counts (probes). Summable across subscribers, workers and machines. */
export const eventCountsSchema = z.object({
  /** Probes the publisher sent during the publishing phase (the same figure in every transport summary). */
  published: count,
  /** Sum over subscribers of their expected sets. */
  expected: count,
  /** Distinct expected probes received by the end of the drain. */
  delivered: count,
  /** expected - delivered. */
  lost: count,
  /** Receipts of a probe already received. */
  duplicated: count,
  /** Receipts of a new probe whose seq is below the highest already seen on that stream. */
  outOfOrder: count,
  /** Probes missed live and received through replay after a reconnect (also counted in delivered). */
  recovered: count,
  /**
   * Receipts of a probe of a stream the subscriber must not receive (another user's `user:<id>`): a server that
   * leaks one user's notifications to another. Never expected, never delivered; 0 on a correct server. Absent in
   * result files written before it was counted, read as 0.
   */
  misrouted: count.default(0),
});
export type EventCounts = z.infer<typeof eventCountsSchema>;

/**
 * Every event figure as a fraction of `expected` (0..1; duplicatedRate and misroutedRate may exceed 1). One
 * denominator for all, so rates add up the way counts do: deliveredRate + lostRate = 1. All 0 when nothing was expected.
 */
export const eventRatesSchema = z.object({
  deliveredRate: count,
  lostRate: count,
  duplicatedRate: count,
  outOfOrderRate: count,
  recoveredRate: count,
  misroutedRate: count.default(0),
});
export type EventRates = z.infer<typeof eventRatesSchema>;

/** Summary of one transport's subscribers, or of all of them. */
export const transportSummarySchema = z.object({
  connections: connectionCountsSchema,
  events: eventCountsSchema.extend(eventRatesSchema.shape),
  /** Receive time - probe's intended send time, in ms. */
  latency: durationSummarySchema,
  /** Start of a connection attempt -> stream open, in ms. */
  connect: durationSummarySchema,
  /** Loss of a connection -> stream open again, in ms. */
  reconnect: durationSummarySchema,
  /** Delivered probes per second of the run (events/s). */
  deliveredPerSec: count,
  /** Failures by cause (e.g. `ECONNRESET`, `http-503`, `ws-1006`, `unparsable`, `no-answer`): counts. */
  errors: z.record(z.string(), count),
});
export type TransportSummary = z.infer<typeof transportSummarySchema>;

/** Per-transport summaries (only the transports the run used) and their total. */
export const runSummarySchema = z.object({
  total: transportSummarySchema,
  transports: z.object({
    sse: transportSummarySchema.optional(),
    ws: transportSummarySchema.optional(),
    poll: transportSummarySchema.optional(),
    socketio: transportSummarySchema.optional(),
  }),
});
export type RunSummary = z.infer<typeof runSummarySchema>;

const ratio = (n: number, d: number): number => (d > 0 ? n / d : 0);

/** Rates of a set of event counts, all relative to `expected`. */
export function eventRates(c: EventCounts): EventRates {
  return {
    deliveredRate: ratio(c.delivered, c.expected),
    lostRate: ratio(c.lost, c.expected),
    duplicatedRate: ratio(c.duplicated, c.expected),
    outOfOrderRate: ratio(c.outOfOrder, c.expected),
    recoveredRate: ratio(c.recovered, c.expected),
    misroutedRate: ratio(c.misrouted, c.expected),
  };
}

/** Event counts with their rates attached. */
export function withRates(c: EventCounts): EventCounts & EventRates {
  return { ...c, ...eventRates(c) };
}

/** A summary with every figure 0: what a transport with no data is measured as. */
export function emptyTransportSummary(): TransportSummary {
  return {
    connections: { target: 0, peakOpen: 0, failed: 0, reconnects: 0 },
    events: withRates({ published: 0, expected: 0, delivered: 0, lost: 0, duplicated: 0, outOfOrder: 0, recovered: 0, misrouted: 0 }),
    latency: { ...EMPTY_DURATION_SUMMARY },
    connect: { ...EMPTY_DURATION_SUMMARY },
    reconnect: { ...EMPTY_DURATION_SUMMARY },
    deliveredPerSec: 0,
    errors: {},
  };
}

/** Total of all error causes. */
export function totalErrors(errors: Record<string, number>): number {
  let n = 0;
  for (const v of Object.values(errors)) n += v;
  return n;
}
