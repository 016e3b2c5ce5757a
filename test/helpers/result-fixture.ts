/**
 * Synthetic `notify.result/1` documents and live snapshots for report and dashboard tests: built from histograms of
 * known values, so merged and compared figures can be checked exactly without running a swarm.
 */
import { createHistogram, type DurationHistogram } from '../../src/metrics/histogram.js';
import { withRates, type TransportSummary } from '../../src/metrics/summary.js';
import type { TransportName } from '../../src/protocol/transports.js';
import { evaluateThresholds, parseThresholds } from '../../src/metrics/thresholds.js';
import type { SwarmSnapshot } from '../../src/metrics/snapshot.js';
import { RESULT_SCHEMA, type ResultFile, type TimelinePoint } from '../../src/result/schema.js';

/** A deterministic generator (mulberry32) so fixtures are the same on every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` latency-like values in ms: mostly a few ms, with a long tail. */
export function latencies(n: number, seed: number, scale = 1): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => {
    const u = r();
    return scale * (u < 0.95 ? 1 + u * 8 : 10 + (u - 0.95) * 4000);
  });
}

export function histogramOf(valuesMs: readonly number[]): DurationHistogram {
  const h = createHistogram();
  for (const v of valuesMs) h.recordMs(v);
  return h;
}

export interface ScopeSpec {
  conns: number;
  published: number;
  expected: number;
  lost?: number;
  duplicated?: number;
  outOfOrder?: number;
  recovered?: number;
  misrouted?: number;
  failed?: number;
  reconnects?: number;
  latencyMs: number[];
  connectMs: number[];
  reconnectMs?: number[];
  errors?: Record<string, number>;
  seconds?: number;
}

function scope(spec: ScopeSpec): { summary: TransportSummary; h: Record<'latency' | 'connect' | 'reconnect', DurationHistogram> } {
  const h = { latency: histogramOf(spec.latencyMs), connect: histogramOf(spec.connectMs), reconnect: histogramOf(spec.reconnectMs ?? []) };
  const lost = spec.lost ?? 0;
  const events = withRates({
    published: spec.published,
    expected: spec.expected,
    delivered: spec.expected - lost,
    lost,
    duplicated: spec.duplicated ?? 0,
    outOfOrder: spec.outOfOrder ?? 0,
    recovered: spec.recovered ?? 0,
    misrouted: spec.misrouted ?? 0,
  });
  return {
    h,
    summary: {
      connections: { target: spec.conns, peakOpen: spec.conns, failed: spec.failed ?? 0, reconnects: spec.reconnects ?? 0 },
      events,
      latency: h.latency.summary(),
      connect: h.connect.summary(),
      reconnect: h.reconnect.summary(),
      deliveredPerSec: events.delivered / (spec.seconds ?? 10),
      errors: spec.errors ?? {},
    },
  };
}

/** A result of one transport (its summary is also the total), with thresholds evaluated on it. */
export function fixtureResult(opts: { run: string; transport?: TransportName; thresholds?: string[]; timeline?: TimelinePoint[] } & ScopeSpec): ResultFile {
  const transport = opts.transport ?? 'sse';
  const { summary, h } = scope(opts);
  const encoded = { latency: h.latency.encode(), connect: h.connect.encode(), reconnect: h.reconnect.encode() };
  const runSummary = { total: summary, transports: { [transport]: summary } };
  const exprs = opts.thresholds ?? [];
  return {
    schema: RESULT_SCHEMA,
    tool: { name: 'notify', version: '0.0.0-test' },
    run: opts.run,
    startedAt: '2026-01-01T00:00:00.000Z',
    endedAt: '2026-01-01T00:00:14.000Z',
    stoppedEarly: null,
    target: { urls: ['http://127.0.0.1:8080'], embedded: false },
    config: {
      run: opts.run,
      mix: { [transport]: 1 },
      conns: opts.conns,
      users: opts.conns,
      rampMs: 2000,
      durationMs: 10_000,
      drainMs: 2000,
      rate: 10,
      userRate: 0,
      storms: [],
      reconnect: 'backoff',
      thresholds: exprs,
    },
    summary: runSummary,
    histograms: { total: encoded, [transport]: encoded },
    storms: [],
    publisher: {
      sent: opts.published,
      accepted: opts.published,
      failures: {},
      ack: { count: opts.published, min: 1, p50: 2, p90: 3, p99: 4, p999: 5, max: 5, mean: 2.5 },
    },
    selfCheck: { workers: [{ eldP99Ms: 3, eldMaxMs: 5, cpuMean: 0.2, cpuMax: 0.3, rssBytes: 80 * 2 ** 20 }], saturated: false },
    timeline:
      opts.timeline ??
      Array.from({ length: 14 }, (_, i) => ({
        t: i + 1,
        published: i >= 2 && i < 12 ? 10 : 0,
        delivered: i >= 2 && i < 12 ? 10 * opts.conns : 0,
        p99: i >= 2 && i < 12 ? 8 + i : 0,
        p50: i >= 2 && i < 12 ? 3 : 0,
        open: Math.min(opts.conns, Math.round(((i + 1) / 2) * opts.conns)),
        reconnects: 0,
        errors: 0,
      })),
    thresholds: evaluateThresholds(parseThresholds(exprs), runSummary),
    problems: [],
  };
}

/** A live snapshot with recognisable figures. */
export function fixtureSnapshot(over: Partial<SwarmSnapshot> = {}): SwarmSnapshot {
  const timeline: TimelinePoint[] = [
    { t: 1, published: 0, delivered: 0, p99: 0, p50: 0, open: 300, reconnects: 0, errors: 0 },
    { t: 2, published: 0, delivered: 0, p99: 0, p50: 0, open: 600, reconnects: 0, errors: 0 },
    { t: 3, published: 50, delivered: 30_000, p99: 40, p50: 4, open: 1000, reconnects: 0, errors: 1 },
    { t: 4, published: 50, delivered: 48_000, p99: 95, p50: 5, open: 1000, reconnects: 12, errors: 3 },
  ];
  return {
    phase: 'publishing',
    elapsedMs: 4000,
    totalMs: 15_000,
    conns: { target: 1000, open: 987, connecting: 4, reconnecting: 9, failed: 7, reconnects: 12 },
    publishedPerSec: 50,
    deliveredPerSec: 48_000,
    published: 100,
    delivered: 78_000,
    misrouted: 0,
    latencyLast: { count: 48_000, min: 0.8, p50: 5.25, p90: 17.5, p99: 95.5, p999: 120, max: 131, mean: 7 },
    latencyAll: { count: 78_000, min: 0.5, p50: 4.75, p90: 15.5, p99: 88.5, p999: 110, max: 131, mean: 6 },
    errors: { ECONNRESET: 3, 'HTTP 503': 1 },
    audit: { expected: 50_000, lost: 0, duplicated: 0, outOfOrder: 0, recovered: 0, graceMs: 5000 },
    storms: [{ atMs: 3000, share: 0.5, aborted: 480, back: 471 }],
    selfCheck: { eldP99Ms: 12.5, cpu: 0.4, saturated: false },
    timeline,
    ...over,
  };
}
