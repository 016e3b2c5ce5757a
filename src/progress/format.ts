/** Text pieces of the live dashboard (pure, so they are tested without a terminal): bars, sparklines, numbers, phases. */
import type { Phase } from '../metrics/snapshot.js';

const TICKS = '▁▂▃▄▅▆▇█';

/** One character per value, scaled to the largest; an empty string for no values. */
export function sparkline(values: readonly number[], width: number): string {
  const shown = values.slice(-Math.max(0, width));
  const max = Math.max(0, ...shown);
  if (max <= 0) return shown.map(() => TICKS[0]).join('');
  return shown.map((v) => TICKS[Math.min(TICKS.length - 1, Math.max(0, Math.round((v / max) * (TICKS.length - 1))))]).join('');
}

/** `████████░░░░` filled to `fraction` (clamped to 0..1). */
export function bar(fraction: number, width: number): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const full = Math.round(f * width);
  return '█'.repeat(full) + '░'.repeat(Math.max(0, width - full));
}

/** 950, 1.2k, 34k, 1.5M: counts that fit a column. */
export function compact(n: number): string {
  const a = Math.abs(n);
  if (a < 1000) return Number.isInteger(n) ? String(n) : n.toFixed(1);
  if (a < 10_000) return `${(n / 1000).toFixed(1)}k`;
  if (a < 1_000_000) return `${Math.round(n / 1000)}k`;
  return `${(n / 1_000_000).toFixed(a < 10_000_000 ? 2 : 1)}M`;
}

/** Milliseconds with a precision that suits the size: 0.42ms, 12.3ms, 250ms, 1.25s. */
export function ms(v: number): string {
  if (v >= 1000) return `${(v / 1000).toFixed(2)}s`;
  if (v >= 100) return `${v.toFixed(0)}ms`;
  if (v >= 10) return `${v.toFixed(1)}ms`;
  return `${v.toFixed(2)}ms`;
}

/** 75s -> "1m15s", 9s -> "9s". */
export function clock(msLeft: number): string {
  const s = Math.max(0, Math.ceil(msLeft / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** The run's schedule, from its config: ramp, then publishing, then drain. */
export interface PhasePlan {
  rampMs: number;
  durationMs: number;
  drainMs: number;
}

/**
 * Time left in the current phase and in the run, ms. `totalMs` is the run's length as the snapshot knows it: when
 * publishing waited for the ramp's last connection attempts, the run is longer than planned by that delay.
 */
export function timeLeft(phase: Phase, elapsedMs: number, totalMs: number, plan: PhasePlan): { phaseMs: number; runMs: number } {
  const delay = Math.max(0, totalMs - (plan.rampMs + plan.durationMs + plan.drainMs));
  const ends: Partial<Record<Phase, number>> = {
    ramp: plan.rampMs + delay,
    publishing: plan.rampMs + delay + plan.durationMs,
    drain: totalMs,
  };
  const end = ends[phase];
  return {
    phaseMs: end === undefined ? 0 : Math.max(0, end - elapsedMs),
    runMs: phase === 'done' || phase === 'finishing' ? 0 : Math.max(0, totalMs - elapsedMs),
  };
}
