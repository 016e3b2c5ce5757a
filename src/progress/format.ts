/**
 * Text pieces of the live dashboard (pure, so they are tested without a terminal): bars, sparklines, phases. Its
 * numbers are written by metrics/format.ts, as every output's are.
 */
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

/** The run's schedule, from its config: ramp, then publishing, then drain. */
export interface PhasePlan {
  rampMs: number;
  durationMs: number;
  drainMs: number;
  /** Set for a shard that does not publish: why its lost is not counted here (the audit row says so instead). */
  auditPending?: string;
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
