/**
 * Scenario phases (DESIGN.md "Scenario files"): run in order after the ramp while publishing goes on. Each kind is
 * one entry of the registry below: what it does to the run, and the figures of its own it reports. What every phase
 * gets besides (latency, reconnects, closes, lost by send time) the workers count (worker-phases.ts).
 */
import { usageError } from '../errors.js';
import type { Phase } from '../scenario/load.js';
import type { ManagedProcess } from './managed-process.js';
import type { MainToWorker } from './messages.js';
import type { Publisher } from './publisher.js';

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
  /** Connections open now, by the workers' last ticks (a second old at most). */
  openNow(): number;
  server?: ManagedProcess;
  broker?: ManagedProcess;
}

/** A phase's own figures (beside the ones every phase has). */
export type PhaseExtras = Record<string, number | null>;

interface PhaseKind<P extends Phase> {
  run(phase: P, ctx: PhaseContext, startAt: number): Promise<PhaseExtras>;
}

type KindOf<K extends Phase['kind']> = PhaseKind<Extract<Phase, { kind: K }>>;

/** How long a restart phase waits for every subscriber to be back after the process is ready again. */
const BACK_WAIT_MS = 30_000;

const steady: KindOf<'steady'> = {
  async run(p, ctx, startAt) {
    await ctx.sleepUntil(startAt + p.durationMs);
    return {};
  },
};

const burst: KindOf<'burst'> = {
  async run(p, ctx) {
    const sent = ctx.publisher.burst(p.count, p.streams);
    // The phase lasts until its probes have left: those queued behind a request in flight belong to it too.
    await ctx.publisher.flushed(10_000);
    return { sent };
  },
};

const storm: KindOf<'storm'> = {
  async run(p, ctx, startAt) {
    const index = ctx.storm(p.share, p.overMs);
    await ctx.sleepUntil(startAt + p.overMs);
    return { storm: index + 1 };
  },
};

const churn: KindOf<'churn'> = {
  async run(p, ctx, startAt) {
    ctx.send({ type: 'churn', rate: p.rate / ctx.workers, durationMs: p.durationMs });
    await ctx.sleepUntil(startAt + p.durationMs);
    return {};
  },
};

const slow: KindOf<'slow'> = {
  async run(p, ctx, startAt) {
    ctx.send({ type: 'slow', share: p.share, durationMs: p.durationMs });
    await ctx.sleepUntil(startAt + p.durationMs);
    return {};
  },
};

/** Kills the process, waits `down`, starts it again; then how long until it was ready and every subscriber back. */
function restart(which: 'server' | 'broker'): KindOf<'server-restart' | 'broker-restart'> {
  return {
    async run(p, ctx) {
      const proc = ctx[which];
      if (proc === undefined) throw usageError(`a ${which}-restart phase needs the scenario's ${which}: {command, ready}`);
      const killedAt = Date.now();
      ctx.note(`${which}-restart: ${p.signal} to \`${proc.command}\``);
      await proc.kill(p.signal);
      await ctx.sleepUntil(killedAt + p.downMs);
      const readyMs = await proc.start();
      const readyAt = Date.now();
      ctx.note(`${which}-restart: ready again after ${readyMs.toFixed(0)} ms`);
      let allBackMs: number | null = null;
      const deadline = readyAt + BACK_WAIT_MS;
      while (!ctx.stopped() && Date.now() < deadline) {
        if (ctx.openNow() >= ctx.conns) {
          allBackMs = Date.now() - killedAt;
          break;
        }
        await ctx.sleepUntil(Date.now() + 100);
      }
      return { downMs: readyAt - killedAt, readyMs, allBackMs };
    },
  };
}

const REGISTRY: { [K in Phase['kind']]: KindOf<K> } = {
  steady,
  burst,
  storm,
  churn,
  slow,
  'server-restart': restart('server'),
  'broker-restart': restart('broker'),
};

export function runPhase(phase: Phase, ctx: PhaseContext, startAt: number): Promise<PhaseExtras> {
  const kind = REGISTRY[phase.kind] as PhaseKind<Phase> | undefined;
  if (kind === undefined) throw usageError(`unknown phase kind "${phase.kind as string}"; known: ${Object.keys(REGISTRY).join(', ')}`);
  return kind.run(phase, ctx, startAt);
}
