/**
 * What the swarm's main process and its worker processes say to each other (Node IPC, JSON). Workers send encoded
 * HDR histograms and plain counts; the main process merges them exactly.
 */
import type { LiveAudit } from '../metrics/snapshot.js';
import type { AuditCounts, LedgerEntry, WindowCounts } from './audit.js';
import type { ReconnectPolicy, Shard } from './config.js';
import type { TransportName } from '../protocol/transports.js';
import type { SubscribePlan } from '../targets/subscribe.js';

export interface WorkerPlan {
  run: string;
  /**
   * This worker takes every `workers`-th of its shard's connections from the `index`-th (without a shard: connections
   * i with i % workers === index).
   */
  index: number;
  workers: number;
  /** The run's connections, every shard's included: connection i's user, transport and ramp time follow from i. */
  conns: number;
  /** This process's shard of the run (`--shard`): connections i with i % count === index - 1. */
  shard?: Shard;
  users: number;
  userPrefix: string;
  urls: string[];
  /** Transport of every connection (an index into TRANSPORT_NAMES), as an array for JSON. */
  transports: number[];
  localAddresses: string[];
  /** Epoch ms at which connection 0 opens; connection i opens at startAt + rampMs * i / conns. */
  startAt: number;
  rampMs: number;
  reconnect: ReconnectPolicy;
  backoffBaseMs: number;
  backoffCapMs: number;
  pollTimeoutS: number;
  /** When set, the worker mints an HS256 token per user (sub = user id). */
  jwtSecret?: string;
  /** How to subscribe: the target profile's subscribe side. */
  target: SubscribePlan;
  /** `--http2`: SSE and long-poll subscribers as streams, at most this many per HTTP/2 session. */
  http2?: { streamsPerConn: number };
  /** `--insecure-tls`: accept any certificate on https:// and wss:// URLs. */
  insecureTls?: boolean;
}

export type MainToWorker =
  | { type: 'start'; plan: WorkerPlan }
  | { type: 'storm'; index: number; share: number; overMs?: number }
  /** The publisher's send log since the last one (appended to the worker's copy, for the live audit). */
  | { type: 'log'; times: Record<string, number[]>; refused: Record<string, number[]> }
  /** A scenario phase begins: receipts, re-opens and server closes count toward it from now. */
  | { type: 'phase'; index: number }
  /** Close and re-open this worker's share of connections at `rate` per second for `durationMs` (they resume). */
  | { type: 'churn'; rate: number; durationMs: number }
  /** Stop reading `share` of the open connections for `durationMs`, then read again. */
  | { type: 'slow'; share: number; durationMs: number }
  /**
   * `windows`: each scenario phase's span (epoch ms), for its own expected / delivered / lost. `ledger`: this process
   * has no publisher's log (a shard that does not publish): send each subscriber's `LedgerEntry`s too.
   */
  | { type: 'finish'; sendTimes: Record<string, number[]>; refused: Record<string, number[]>; windows?: [number, number][]; ledger?: boolean };

export interface WorkerTick {
  type: 'tick';
  index: number;
  open: number;
  connecting: number;
  /** Lost and waiting to come back. */
  reconnecting: number;
  /** Cumulative failed connection attempts. */
  failed: number;
  /** Cumulative successful re-opens. */
  reconnects: number;
  /** New probes received since the last tick. */
  received: number;
  /** Receipts of another user's probes since the last tick (misrouted: known at once, unlike lost). */
  misrouted: number;
  /** Latency of those probes (encoded histogram). */
  latency: string;
  /** The audit so far, of probes sent at least LIVE_AUDIT_GRACE_MS ago (cumulative; the final audit is exact). */
  audit: LiveAudit;
  /** Errors by cause since the last tick. */
  errors: Record<string, number>;
  /** Per storm: connections aborted, and back so far. */
  stormsAborted: number[];
  stormsBack: number[];
  /** Event-loop delay p99 / max of the last tick, ms; CPU of the last tick as a share of one core (0..1+). */
  eldP99Ms: number;
  eldMaxMs: number;
  cpu: number;
}

export interface TransportPart {
  /** Audit totals keyed by stream kind (`broadcast`, `user`). */
  audit: Record<string, AuditCounts>;
  latency: string;
  connect: string;
  reconnect: string;
  target: number;
  peakOpen: number;
  failed: number;
  reconnects: number;
  errors: Record<string, number>;
}

/**
 * How old a probe must be before the live audit counts it lost when it has not arrived: well past any latency a
 * healthy run shows, so a slow second does not read as loss. The final audit, after the drain, is exact.
 */
export const LIVE_AUDIT_GRACE_MS = 5000;

/** One worker's figures of one scenario phase. */
export interface PhasePart {
  latency: string;
  reconnects: number;
  /** Streams the server (or the network) ended during the phase, by cause. */
  closed: Record<string, number>;
  /** slow: connections paused; of those, cut by the server; of those, open again. */
  paused: number;
  cut: number;
  back: number;
  audit: WindowCounts;
}

export interface StormPart {
  aborted: number;
  /** ms after the storm at which each aborted connection was open again. */
  backMs: number[];
  /** Failed attempts by cause among the aborted connections until they were back. */
  failures: Record<string, number>;
}

export interface WorkerResult {
  type: 'result';
  index: number;
  transports: Partial<Record<TransportName, TransportPart>>;
  storms: StormPart[];
  phases: PhasePart[];
  /** With `finish.ledger`: every subscriber's streams, with its transport (an index into TRANSPORT_NAMES). */
  ledger?: (LedgerEntry & { transport: number })[];
  selfCheck: { eldP99Ms: number; eldMaxMs: number; cpuMean: number; cpuMax: number; rssBytes: number };
  /** `--http2`: HTTP/2 sessions this worker opened (reconnects included). */
  http2Sessions?: number;
}

/** Every connection of the worker has finished its first attempt (opened or failed): its part of the ramp is done. */
export interface WorkerRamped {
  type: 'ramped';
  index: number;
}

export type WorkerToMain = { type: 'ready'; index: number } | WorkerTick | WorkerRamped | WorkerResult | { type: 'fatal'; index: number; message: string };
