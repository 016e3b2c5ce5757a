/**
 * What the swarm does to its own connections in scenario phases and `--storm`: storms (abort a share at once or
 * spread over a window, then time how each comes back), churn (close and re-open one at a time, resuming) and slow
 * readers (stop reading a share for a while). What each costs shows in the worker's figures like any other close;
 * this keeps the accounts that are theirs alone: a storm's aborts, returns and failures, and which closes were churn.
 */
import { performance } from 'node:perf_hooks';
import { isPausable, type Transport } from '../transports/transport.js';
import type { StormPart } from './messages.js';
import type { WorkerPhases } from './worker-phases.js';

/** How long after a slow phase a cut still counts as its doing: the client reads the close only after the backlog. */
const SLOW_GRACE_MS = 5000;

/** What the faults need of the worker. */
export interface FaultHost {
  /** The worker's connections open now. */
  openNow(): number[];
  isOpen(i: number): boolean;
  transportOf(i: number): Transport;
  /** False once the worker is finishing: nothing more is done to its connections. */
  running(): boolean;
  /** A timer the worker clears when it finishes. */
  later(fn: () => void, ms: number): void;
  countError(i: number, cause: string): void;
}

export class WorkerFaults {
  readonly storms: StormPart[] = [];
  /** Per connection: the storm that aborted it and has not seen it back yet (-1: none). */
  private readonly stormOf: Int16Array;
  /** Connections the swarm itself is closing and re-opening at once (churn): their close is no error. */
  private readonly churning: Uint8Array;

  constructor(
    conns: number,
    private readonly host: FaultHost,
    private readonly phases: WorkerPhases,
  ) {
    this.stormOf = new Int16Array(conns).fill(-1);
    this.churning = new Uint8Array(conns);
  }

  /** Aborts `share` of the open connections, at once or spread evenly over `overMs`. */
  storm(index: number, share: number, overMs = 0): void {
    const picked = this.pickOpen(share);
    this.storms[index] = { aborted: picked.length, backMs: [], failures: {} };
    const abort = (i: number) => {
      if (!this.host.running() || !this.host.isOpen(i)) return;
      this.stormOf[i] = index;
      this.host.transportOf(i).abort(i);
    };
    picked.forEach((i, k) => {
      if (overMs <= 0) abort(i);
      else this.host.later(() => abort(i), (overMs * k) / picked.length);
    });
  }

  /** Closes one random open connection every 1/rate s for `durationMs`; each re-opens at once and resumes. */
  churn(rate: number, durationMs: number): void {
    if (rate <= 0) return;
    const end = performance.now() + durationMs;
    const step = () => {
      if (!this.host.running() || performance.now() >= end) return;
      const open = this.host.openNow();
      const pick = open[Math.floor(Math.random() * open.length)];
      if (pick !== undefined) {
        this.churning[pick] = 1;
        this.host.transportOf(pick).close(pick);
      }
      this.host.later(step, 1000 / rate);
    };
    step();
  }

  /** Stops reading `share` of the open connections for `durationMs` (transports that can pause), then reads again. */
  slow(share: number, durationMs: number): void {
    const phase = this.phases.current;
    const paused: number[] = [];
    for (const i of this.pickOpen(share)) {
      const t = this.host.transportOf(i);
      if (isPausable(t) && t.pause(i)) {
        paused.push(i);
        this.phases.paused(i);
      } else this.host.countError(i, 'cannot-pause');
    }
    this.host.later(() => {
      for (const i of paused) {
        const t = this.host.transportOf(i);
        if (isPausable(t)) t.resume(i);
      }
    }, durationMs);
    // A cut shows only once the connection reads again (the close is behind what the server had written).
    this.host.later(() => this.phases.settleSlow(phase), durationMs + SLOW_GRACE_MS);
  }

  /** Connection i is open again `backMs` after it was lost: a storm's connection is back. */
  opened(i: number, backMs: number): void {
    const storm = this.stormOf[i]!;
    if (storm < 0) return;
    // From this connection's own abort: a storm spread over a window aborts its connections one by one.
    this.storms[storm]!.backMs.push(backMs);
    this.stormOf[i] = -1;
  }

  /** An attempt of connection i failed with `code`: a storm's connection counts it. */
  failed(i: number, code: string): void {
    const storm = this.stormOf[i]!;
    if (storm >= 0) {
      const f = this.storms[storm]!.failures;
      f[code] = (f[code] ?? 0) + 1;
    }
  }

  /** True (once) when connection i's close with `cause` was churn's own. */
  churned(i: number, cause: string): boolean {
    if (this.churning[i] !== 1 || cause !== 'client-closed') return false;
    this.churning[i] = 0;
    return true;
  }

  /** `share` of the open connections, picked at random. */
  private pickOpen(share: number): number[] {
    const open = this.host.openNow();
    const n = Math.round(open.length * share);
    for (let k = 0; k < n; k++) {
      const j = k + Math.floor(Math.random() * (open.length - k));
      [open[k], open[j]] = [open[j]!, open[k]!];
    }
    return open.slice(0, n);
  }
}
