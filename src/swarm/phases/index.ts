/**
 * Scenario phases (DESIGN.md "Scenario files"): run in order after the ramp while publishing goes on. Each kind is
 * one module of this folder behind `PhaseKind`, found by name in the registry below: what it does to the run, and
 * the figures of its own it reports. What every phase gets besides (latency, reconnects, closes, lost by send time)
 * the workers count (worker-phases.ts).
 */
import { usageError } from '../../errors.js';
import { burst } from './burst.js';
import { churn } from './churn.js';
import { restart } from './restart.js';
import { slow } from './slow.js';
import { steady } from './steady.js';
import { storm } from './storm.js';
import type { Phase } from '../../scenario/load.js';
import type { ManagedProcess } from '../managed-process.js';
import type { MainToWorker } from '../messages.js';
import type { Publisher } from '../publisher.js';

/** What a phase can act on. */
export interface PhaseContext {
  send(msg: MainToWorker): void;
  publisher: Publisher;
  /** Worker processes: a rate given for the run is split over them. */
  workers: number;
  conns: number;
  note(line: string): void;
  /** Sleeps until `at` (epoch ms), or less when the run stops early. */
  sleepUntil(at: number): Promise<void>;
  stopped(): boolean;
  /** Starts a storm the live view and the result follow; returns its index. */
  storm(share: number, overMs: number): number;
  /** A storm's connections aborted and back so far, by the workers' last ticks. */
  stormProgress(index: number): { aborted: number; back: number };
  /** Connections open now, by the workers' last ticks (a second old at most). */
  openNow(): number;
  server?: ManagedProcess;
  broker?: ManagedProcess;
}

/** A phase's own figures (beside the ones every phase has). */
export type PhaseExtras = Record<string, number | null>;

export interface PhaseKind<P extends Phase> {
  run(phase: P, ctx: PhaseContext, startAt: number): Promise<PhaseExtras>;
}

export type KindOf<K extends Phase['kind']> = PhaseKind<Extract<Phase, { kind: K }>>;

const REGISTRY: { [K in Phase['kind']]: KindOf<K> } = {
  steady,
  burst,
  storm,
  churn,
  slow,
  'server-restart': restart('server'),
  'broker-restart': restart('broker'),
};

/** The phases' planned length (the progress bar, the run's stated duration): what a restart waits on is not known ahead. */
export function plannedMs(phases: readonly Phase[]): number {
  const one = (p: Phase): number => ('durationMs' in p ? p.durationMs : 'downMs' in p ? p.downMs : 'overMs' in p ? p.overMs : 0) ?? 0;
  return phases.reduce((sum, p) => sum + one(p), 0);
}

export function runPhase(phase: Phase, ctx: PhaseContext, startAt: number): Promise<PhaseExtras> {
  const kind = REGISTRY[phase.kind] as PhaseKind<Phase> | undefined;
  if (kind === undefined) throw usageError(`unknown phase kind "${phase.kind as string}"; known: ${Object.keys(REGISTRY).join(', ')}`);
  return kind.run(phase, ctx, startAt);
}
