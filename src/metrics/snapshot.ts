/**
 * The live snapshot of a swarm run: what the swarm folds its workers' ticks into about once a second, and what the
 * dashboard and the plain status lines show. Declared here, between the two, so the live view needs nothing of the
 * swarm's internals.
 */
import type { DurationSummary } from './histogram.js';
import type { TimelinePoint } from '../result/schema.js';

/** The audit so far (cumulative counts of probes old enough to judge; the final audit, after the drain, is exact). */
export interface LiveAudit {
  expected: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  recovered: number;
}

/** One server's figures from its last /metrics scrapes (capacity/server-load.ts). */
export interface LiveServerLoad {
  url: string;
  /** CPU share of a core over the last scrape interval, and the worst interval so far. */
  cpu: number;
  cpuMax: number;
  /** Event-loop lag p99 at the last scrape, ms. */
  eldP99Ms: number;
  /** The last interval's CPU or the last lag past the limits (SERVER_SATURATION). */
  saturated: boolean;
}

/**
 * The server side of the live self-check: `measuring` until a server has been scraped twice, `not-measured` when no
 * --url exposes process_cpu_seconds_total.
 */
export interface LiveServerSide {
  state: 'measuring' | 'measured' | 'not-measured';
  servers: LiveServerLoad[];
}

export type Phase = 'starting' | 'ramp' | 'publishing' | 'drain' | 'finishing' | 'done';

export interface SwarmSnapshot {
  phase: Phase;
  elapsedMs: number;
  totalMs: number;
  conns: { target: number; open: number; connecting: number; reconnecting: number; failed: number; reconnects: number };
  publishedPerSec: number;
  deliveredPerSec: number;
  published: number;
  delivered: number;
  /** Receipts of another user's probes so far (a privacy leak of the server; the final audit counts the same). */
  misrouted: number;
  /** Latency of the last second and of the run so far. */
  latencyLast: DurationSummary;
  latencyAll: DurationSummary;
  errors: Record<string, number>;
  /** The audit so far, of probes sent at least `graceMs` ago (the final one, after the drain, is exact). */
  audit: LiveAudit & { graceMs: number };
  storms: { atMs: number; share: number; aborted: number; back: number }[];
  /** The client's (the busiest worker's last second), and the servers' from their last /metrics scrapes. */
  selfCheck: { eldP99Ms: number; cpu: number; saturated: boolean; server?: LiveServerSide };
  timeline: TimelinePoint[];
}
