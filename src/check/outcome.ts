/**
 * What one check returns, and the two ways a check stops early: `Skip` (it cannot run here: no such transport, no
 * --origin, the stream did not open) and a plain failure outcome built with `fail`.
 */
import type { CheckStatus } from './schema.js';

export type Values = Record<string, number | string | boolean | null>;

export interface Outcome {
  status: CheckStatus;
  summary: string;
  evidence: string[];
  fix: string[];
  values: Values;
}

export class Skip extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'Skip';
  }
}

type Detail = { evidence?: string[]; fix?: readonly string[]; values?: Values };

function outcome(status: CheckStatus, summary: string, d: Detail = {}): Outcome {
  return { status, summary, evidence: d.evidence ?? [], fix: [...(d.fix ?? [])], values: d.values ?? {} };
}

export const pass = (summary: string, d?: Omit<Detail, 'fix'>): Outcome => outcome('pass', summary, d);
export const warn = (summary: string, d?: Detail): Outcome => outcome('warn', summary, d);
export const fail = (summary: string, d?: Detail): Outcome => outcome('fail', summary, d);
export const skip = (summary: string, d?: Detail): Outcome => outcome('skip', summary, d);

/** A duration for evidence lines: `850 ms`, `4.98 s`. */
export function ms(v: number): string {
  return v < 999.5 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(v < 10_000 ? 2 : 1)} s`;
}

/** One entry of the registry: `notify check --only NAME` runs it alone. */
export interface Check {
  name: string;
  title: string;
  run(ctx: import('./context.js').CheckContext): Promise<Outcome>;
}
