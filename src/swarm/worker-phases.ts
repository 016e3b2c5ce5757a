/**
 * A worker's figures per scenario phase: the main process says when each phase begins (`begin`), and from then on
 * receipts' latency, re-opens and streams the server ended count toward it. A `slow` phase also follows the
 * connections it paused: how many the server cut while they were not reading, and how many came back.
 * Lost per phase comes from the audit at the end (`windowCounts`, by the time each probe was sent).
 */
import { createHistogram, type DurationHistogram } from '../metrics/histogram.js';
import type { WindowCounts } from './audit.js';
import type { PhasePart } from './messages.js';

interface PhaseState {
  latency: DurationHistogram;
  reconnects: number;
  /** Streams that ended not by the swarm's own hand (server closes, resets), by cause. */
  closed: Record<string, number>;
  paused: number;
  cut: number;
  back: number;
}

export class WorkerPhases {
  /** The phase under way; -1 before the first. */
  current = -1;
  private readonly phases: PhaseState[] = [];
  /** Per connection: the slow phase that paused it and has not seen it cut yet (-1: none). */
  private readonly slowOf: Int16Array;
  /** Per connection: the slow phase whose cut it was, until it is open again (-1: none). */
  private readonly cutOf: Int16Array;

  constructor(conns: number) {
    this.slowOf = new Int16Array(conns).fill(-1);
    this.cutOf = new Int16Array(conns).fill(-1);
  }

  begin(index: number): void {
    while (this.phases.length <= index) this.phases.push({ latency: createHistogram(), reconnects: 0, closed: {}, paused: 0, cut: 0, back: 0 });
    this.current = index;
  }

  receipt(ms: number): void {
    if (this.current >= 0) this.phases[this.current]!.latency.recordMs(ms);
  }

  /** A connection opened; `again` when it had been open before. */
  opened(i: number, again: boolean): void {
    if (again && this.current >= 0) this.phases[this.current]!.reconnects++;
    const cut = this.cutOf[i]!;
    if (cut >= 0) {
      this.phases[cut]!.back++;
      this.cutOf[i] = -1;
    }
  }

  /** A stream ended: the server's doing unless `bySwarm` (a storm, churn, the end of the run). */
  closed(i: number, cause: string, bySwarm: boolean): void {
    if (bySwarm) {
      this.slowOf[i] = -1;
      return;
    }
    if (this.current >= 0) {
      const c = this.phases[this.current]!.closed;
      c[cause] = (c[cause] ?? 0) + 1;
    }
    const slow = this.slowOf[i]!;
    if (slow >= 0) {
      this.phases[slow]!.cut++;
      this.cutOf[i] = slow;
      this.slowOf[i] = -1;
    }
  }

  /** Connection `i` was paused by the slow phase under way. */
  paused(i: number): void {
    this.phases[this.current]!.paused++;
    this.slowOf[i] = this.current;
  }

  /** The slow phase is over and its connections had their grace to be cut: later closes are not its doing. */
  settleSlow(index: number): void {
    for (let i = 0; i < this.slowOf.length; i++) if (this.slowOf[i] === index) this.slowOf[i] = -1;
  }

  /** The parts for the result, with each phase's audit counts (windowCounts) beside. */
  parts(audit: readonly (WindowCounts | undefined)[]): PhasePart[] {
    return this.phases.map((p, i) => ({
      latency: p.latency.encode(),
      reconnects: p.reconnects,
      closed: p.closed,
      paused: p.paused,
      cut: p.cut,
      back: p.back,
      audit: audit[i] ?? { expected: 0, delivered: 0, lost: 0 },
    }));
  }
}
