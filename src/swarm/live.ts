/**
 * Live view of a run: folds the workers' ticks into one snapshot per second (what the status line and the
 * dashboard show) and into the per-second timeline of the result file.
 */
import { createHistogram, decodeHistogram } from '../metrics/histogram.js';
import type { LiveServerSide, Phase, SwarmSnapshot } from '../metrics/snapshot.js';
import type { TimelinePoint } from '../result/schema.js';
import { CLIENT_SATURATION as SATURATION } from '../capacity/self-check.js';
import { LIVE_AUDIT_GRACE_MS, type WorkerTick } from './messages.js';

export class LiveView {
  private readonly latest = new Map<number, WorkerTick>();
  private readonly all = createHistogram();
  private readonly second = createHistogram();
  private receivedSecond = 0;
  private errorsSecond = 0;
  readonly errors: Record<string, number> = {};
  readonly timeline: TimelinePoint[] = [];
  delivered = 0;
  misrouted = 0;

  constructor(
    private readonly target: number,
    private readonly storms: { atMs: number; share: number }[],
  ) {}

  /** Open connections by the workers' last ticks. */
  openNow(): number {
    let n = 0;
    for (const t of this.latest.values()) n += t.open;
    return n;
  }

  /** A storm's connections aborted and back so far, by the workers' last ticks. */
  stormProgress(index: number): { aborted: number; back: number } {
    let aborted = 0;
    let back = 0;
    for (const t of this.latest.values()) {
      aborted += t.stormsAborted[index] ?? 0;
      back += t.stormsBack[index] ?? 0;
    }
    return { aborted, back };
  }

  /** Failed connection attempts so far, over every worker. */
  failed(): number {
    let n = 0;
    for (const t of this.latest.values()) n += t.failed;
    return n;
  }

  onTick(tick: WorkerTick): void {
    this.latest.set(tick.index, tick);
    // Decoded once for both: a decode costs ~1.5 ms for a 13 KB encoded histogram (2 M samples, measured).
    const latency = decodeHistogram(tick.latency);
    this.all.add(latency);
    this.second.add(latency);
    this.receivedSecond += tick.received;
    this.delivered += tick.received;
    this.misrouted += tick.misrouted;
    for (const [k, v] of Object.entries(tick.errors)) {
      this.errors[k] = (this.errors[k] ?? 0) + v;
      this.errorsSecond += v;
    }
  }

  /** Closes one second of the timeline and returns the snapshot, with the servers' side of the self-check when given. */
  snapshot(phase: Phase, elapsedMs: number, totalMs: number, published: number, publishedSecond: number, server?: LiveServerSide): SwarmSnapshot {
    const ticks = [...this.latest.values()];
    const sum = (f: (t: WorkerTick) => number) => ticks.reduce((a, t) => a + f(t), 0);
    const last = this.second.summary();
    const eldP99Ms = Math.max(0, ...ticks.map((t) => t.eldP99Ms));
    const cpu = Math.max(0, ...ticks.map((t) => t.cpu));
    const open = sum((t) => t.open);
    const reconnects = sum((t) => t.reconnects);
    // The last snapshot covers a partial second; it still gets a second of its own.
    const prev = this.timeline.at(-1)?.t ?? 0;
    this.timeline.push({
      t: Math.max(prev + 1, Math.round(elapsedMs / 1000)),
      published: publishedSecond,
      delivered: this.receivedSecond,
      p99: last.p99,
      p50: last.p50,
      open,
      reconnects,
      errors: this.errorsSecond,
    });
    const snap: SwarmSnapshot = {
      phase,
      elapsedMs,
      totalMs,
      conns: {
        target: this.target,
        open,
        connecting: sum((t) => t.connecting),
        reconnecting: sum((t) => t.reconnecting),
        failed: sum((t) => t.failed),
        reconnects,
      },
      publishedPerSec: publishedSecond,
      deliveredPerSec: this.receivedSecond,
      published,
      delivered: this.delivered,
      misrouted: this.misrouted,
      latencyLast: last,
      latencyAll: this.all.summary(),
      errors: { ...this.errors },
      audit: {
        expected: sum((t) => t.audit.expected),
        lost: sum((t) => t.audit.lost),
        duplicated: sum((t) => t.audit.duplicated),
        outOfOrder: sum((t) => t.audit.outOfOrder),
        recovered: sum((t) => t.audit.recovered),
        graceMs: LIVE_AUDIT_GRACE_MS,
      },
      storms: this.storms.map((s, i) => ({ ...s, aborted: sum((t) => t.stormsAborted[i] ?? 0), back: sum((t) => t.stormsBack[i] ?? 0) })),
      selfCheck: { eldP99Ms, cpu, saturated: eldP99Ms > SATURATION.eldP99Ms || cpu > SATURATION.cpu, ...(server ? { server } : {}) },
      timeline: this.timeline,
    };
    this.second.reset();
    this.receivedSecond = 0;
    this.errorsSecond = 0;
    return snap;
  }
}
