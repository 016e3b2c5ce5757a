/**
 * The clock of a swarm run: the early stop every wait races, the storms fired at their times, the wait for the
 * ramp's last connection attempts, and --start-at.
 */
import type { SwarmConfig } from './config.js';
import type { WorkerFleet } from './fleet.js';

/** Longest publishing waits after the ramp for connection attempts still under way (a transport's connect timeout). */
const RAMP_SETTLE_MAX_MS = 10_000;
/** A run with --start-at forks its workers this long before it: they are ready when the ramp begins. */
const START_AHEAD_MS = 2000;

/** An early stop (Ctrl-C, q, --bailout, a worker lost): the first reason given wins, and `stopped` resolves then. */
export class EarlyStop {
  reason: string | undefined;
  readonly stopped: Promise<void>;
  private wake: () => void = () => {};

  constructor(private readonly note: (line: string) => void) {
    this.stopped = new Promise<void>((r) => (this.wake = r));
  }

  readonly stop = (why: string): void => {
    if (this.reason) return;
    this.reason = why;
    this.note(`stopping early: ${why}`);
    this.wake();
  };

  /**
   * Wakes at `at`, on an early stop, or when `orUntil` settles; the timer is cleared either way, since a pending one
   * would hold the process open after the run.
   */
  readonly sleepUntil = (at: number, orUntil?: Promise<void>): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const slept = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, at - Date.now()))));
    return Promise.race(orUntil ? [this.stopped, slept, orUntil] : [this.stopped, slept]).finally(() => clearTimeout(timer));
  };
}

/** Fires each storm at its time from the run start `t0`; the timers are cleared by the caller when the run ends. */
export function scheduleStorms(storms: SwarmConfig['storms'], t0: number, workers: WorkerFleet, note: (line: string) => void): NodeJS.Timeout[] {
  return storms.map((s, index) =>
    setTimeout(
      () => {
        note(`storm ${index + 1}: aborting ${Math.round(s.share * 100)}% of open connections`);
        workers.send({ type: 'storm', index, share: s.share });
      },
      Math.max(0, t0 + s.atMs - Date.now()),
    ),
  );
}

/**
 * Waits for the end of the ramp; how late publishing starts, ms. Publishing starts when the ramp is over: every
 * connection's first attempt has opened or failed. The last connections are due just before the planned start;
 * publishing without them would give them a partial expected set and the first probes a partial audience.
 */
export async function rampSettled(
  early: EarlyStop,
  workers: WorkerFleet,
  publishStart: number,
  keepSchedule: boolean,
  note: (line: string) => void,
): Promise<number> {
  await early.sleepUntil(publishStart);
  // Shards keep the schedule: the others cannot know how long this one's ramp took.
  if (keepSchedule) return 0;
  await early.sleepUntil(publishStart + RAMP_SETTLE_MAX_MS, workers.rampDone);
  const lateBy = Date.now() - publishStart;
  if (lateBy >= 100) note(`publishing starts ${lateBy} ms after the ramp: waited for the last connection attempts`);
  return lateBy;
}

/** With --start-at far ahead: waits until shortly before it, so that the workers are ready when the ramp begins. */
export async function startAhead(t0: number, early: EarlyStop, note: (line: string) => void): Promise<void> {
  if (t0 - Date.now() <= START_AHEAD_MS) return;
  note(`waiting for --start-at ${new Date(t0).toISOString()} (in ${((t0 - Date.now()) / 1000).toFixed(0)} s)`);
  await early.sleepUntil(t0 - START_AHEAD_MS);
}

/**
 * How late the workers began their ramp after t0, ms (0 when on time): they open connection 0 at t0, so a shard
 * whose workers began after it missed the run's schedule, which the merge reports. Not all ready yet: late until now.
 */
export function lateStart(config: SwarmConfig, t0: number, readyAt: number | undefined, note: (line: string) => void): number {
  const lateMs = Math.max(0, (readyAt ?? Date.now()) - t0);
  if (config.startAtMs !== undefined && lateMs > 0) note(`started ${lateMs} ms after --start-at ${new Date(t0).toISOString()}`);
  return lateMs;
}
