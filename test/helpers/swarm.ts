/**
 * Running the swarm in-process. `runSwarm` forks its workers from the file beside it (`worker-main.js`), which
 * exists only in dist/, so the engine is loaded from dist/ (built by `ensureBuilt`) with the types of src/.
 * Config parsing is pure and comes from src/.
 */
import { pathToFileURL } from 'node:url';
import { resolveSwarmOptions, type RawSwarmOptions, type SwarmConfig } from '../../src/swarm/config.js';
import type { RunHooks, SwarmOutcome } from '../../src/swarm/run.js';
import type { TransportSummary } from '../../src/metrics/summary.js';
import { ensureBuilt, ROOT } from './build.js';

type RunSwarm = (config: SwarmConfig, hooks?: RunHooks) => Promise<SwarmOutcome>;
let loaded: RunSwarm | undefined;

/** Builds dist/ if needed and loads `runSwarm` from it; call in `beforeAll`. */
export async function loadSwarm(): Promise<void> {
  await ensureBuilt();
  const mod = (await import(pathToFileURL(`${ROOT}dist/swarm/run.js`).href)) as { runSwarm: RunSwarm };
  loaded = mod.runSwarm;
}

/** Flags as the CLI takes them (strings); the status output is off. */
export function swarmConfig(raw: RawSwarmOptions): SwarmConfig {
  return resolveSwarmOptions({ dashboard: false, ...raw }, {});
}

export interface SwarmRun {
  outcome: SwarmOutcome;
  /** What the run said through `onNote` (start, storms, early stop). */
  notes: string[];
}

/** Runs the swarm; fails if it takes longer than the run's own length plus `slackMs`. */
export async function swarm(config: SwarmConfig, hooks: RunHooks = {}, slackMs = 10_000): Promise<SwarmRun> {
  if (!loaded) throw new Error('call loadSwarm() in beforeAll first');
  const notes: string[] = [];
  const limit = config.rampMs + config.durationMs + config.drainMs + slackMs;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    loaded(config, { ...hooks, onNote: (line) => (notes.push(line), hooks.onNote?.(line)) }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`swarm run did not finish within ${limit} ms; notes: ${notes.join(' | ')}`)), limit);
    }),
  ]).finally(() => clearTimeout(timer));
  return { outcome, notes };
}

/** Probes the publisher is scheduled to send in `durationMs` at `rate` per second (the Publisher's own arithmetic). */
export function scheduled(rate: number, durationMs: number): number {
  return Math.floor((rate * durationMs) / 1000);
}

/** The event figures of a summary without the rates, for exact comparisons in one `toEqual`. */
export function eventCounts(s: TransportSummary): Record<string, number> {
  const { published, expected, delivered, lost, duplicated, outOfOrder, recovered, misrouted } = s.events;
  return { published, expected, delivered, lost, duplicated, outOfOrder, recovered, misrouted };
}
