/**
 * A worker's figures per transport (histograms and counts), its self-check (event-loop delay and CPU), and the live
 * audit's copy of the publisher's send log: what leaves the worker at each tick and in its result, besides the audit.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createHistogram } from '../metrics/histogram.js';
import type { LiveAudit } from '../metrics/snapshot.js';
import { TRANSPORT_NAMES } from '../protocol/transports.js';
import { nowEpochMs } from '../protocol/probe.js';
import { liveCounts, publishLogFromTimes, type AuditTally, type SubscriberAudit } from './audit.js';
import { LIVE_AUDIT_GRACE_MS, type TransportPart, type WorkerResult } from './messages.js';

export class TransportStats {
  /** Latency of the whole run; `tickLatency` is added into it once a tick, so a receipt is recorded only once. */
  readonly latency = createHistogram();
  /** Latency since the last tick. */
  readonly tickLatency = createHistogram();
  readonly connect = createHistogram();
  readonly reconnect = createHistogram();
  target = 0;
  open = 0;
  peakOpen = 0;
  failed = 0;
  reconnects = 0;
  readonly errors: Record<string, number> = {};
}

/** The result's part of every transport that had connections here, by name. */
export function transportParts(stats: readonly TransportStats[], tallies: readonly AuditTally[]): WorkerResult['transports'] {
  const transports: WorkerResult['transports'] = {};
  stats.forEach((s, k) => {
    if (s.target === 0) return;
    const part: TransportPart = {
      audit: tallies[k]!.toJSON(),
      latency: s.latency.encode(),
      connect: s.connect.encode(),
      reconnect: s.reconnect.encode(),
      target: s.target,
      peakOpen: s.peakOpen,
      failed: s.failed,
      reconnects: s.reconnects,
      errors: s.errors,
    };
    transports[TRANSPORT_NAMES[k]!] = part;
  });
  return transports;
}

/** The worker's own load, sampled at each tick: is the client itself too busy to time receipts well? */
export class SelfCheck {
  private readonly eld = monitorEventLoopDelay({ resolution: 10 });
  private cpuPrev: NodeJS.CpuUsage;
  private tickPrev = performance.now();
  private readonly worst = { eldP99Ms: 0, eldMaxMs: 0, cpuSum: 0, cpuMax: 0, ticks: 0 };

  /** `cpuUsage`: the process's own (`process.cpuUsage`), which only the worker's files may touch. */
  constructor(private readonly cpuUsage: (prev?: NodeJS.CpuUsage) => NodeJS.CpuUsage) {
    this.cpuPrev = cpuUsage();
  }

  enable(): void {
    this.eld.enable();
  }

  disable(): void {
    this.eld.disable();
  }

  /** Since the last sample: event-loop delay p99 and max (ms), and the share of one core used. */
  sample(): { eldP99Ms: number; eldMaxMs: number; cpu: number } {
    const now = performance.now();
    const used = this.cpuUsage(this.cpuPrev);
    this.cpuPrev = this.cpuUsage();
    const cpu = (used.user + used.system) / 1000 / Math.max(1, now - this.tickPrev);
    this.tickPrev = now;
    const eldP99Ms = this.eld.percentile(99) / 1e6;
    const eldMaxMs = this.eld.max / 1e6;
    this.eld.reset();
    const w = this.worst;
    w.eldP99Ms = Math.max(w.eldP99Ms, eldP99Ms);
    w.eldMaxMs = Math.max(w.eldMaxMs, eldMaxMs);
    w.cpuSum += cpu;
    w.cpuMax = Math.max(w.cpuMax, cpu);
    w.ticks++;
    return { eldP99Ms, eldMaxMs, cpu };
  }

  /** The whole run's figures, for the result. */
  summary(rssBytes: number): WorkerResult['selfCheck'] {
    const w = this.worst;
    return { eldP99Ms: w.eldP99Ms, eldMaxMs: w.eldMaxMs, cpuMean: w.ticks ? w.cpuSum / w.ticks : 0, cpuMax: w.cpuMax, rssBytes };
  }
}

/** The publisher's send log as the main process hands it on each second, for the live audit. */
export class LiveLog {
  private readonly times = new Map<string, number[]>();
  private readonly refused = new Map<string, number[]>();

  /** More of the log. */
  append(times: Record<string, number[]>, refused: Record<string, number[]>): void {
    for (const [into, from] of [
      [this.times, times],
      [this.refused, refused],
    ] as const) {
      for (const [stream, list] of Object.entries(from)) {
        const have = into.get(stream);
        if (have === undefined) into.set(stream, [...list]);
        else for (const v of list) have.push(v);
      }
    }
  }

  /** The audit so far against the probes sent at least LIVE_AUDIT_GRACE_MS ago (see `liveCounts`). */
  audit(audits: Iterable<SubscriberAudit>): LiveAudit {
    if (this.times.size === 0) return { expected: 0, lost: 0, duplicated: 0, outOfOrder: 0, recovered: 0 };
    return liveCounts(audits, publishLogFromTimes(this.times, this.refused), nowEpochMs() - LIVE_AUDIT_GRACE_MS);
  }
}
