/**
 * A scenario's phases in `notify report --merge`: the same scenario run on several machines has the same phases in the
 * same order, and each phase's figures merge like the run's. Counts are summed; latency is merged exactly from the
 * phases' encoded HDR histograms (older files have only percentiles: then the worst machine's, said in a note);
 * a phase's span runs from the earliest start to the latest end; its extras are summed where they count things
 * (a burst's `sent`), the worst where they time a recovery (`downMs`, `readyMs`, `allBackMs`: null when any machine's
 * never came back), and the first machine's where they name something (`storm`).
 */
import { mergeHistograms } from '../metrics/histogram.js';
import type { NamedResult } from './merge.js';
import type { PhaseReport } from './schema.js';
import { addCounts, worstPercentiles } from './sum.js';

/** Extras that count things, summed over the machines; the others are times (the worst is kept) or names. */
const SUMMED_EXTRAS = new Set(['sent']);
const NAMING_EXTRAS = new Set(['storm']);

function mergeExtras(parts: readonly PhaseReport['extras'][]): PhaseReport['extras'] {
  const keys = [...new Set(parts.flatMap((e) => Object.keys(e)))];
  const out: PhaseReport['extras'] = {};
  for (const k of keys) {
    const values = parts.map((e) => e[k]).filter((v) => v !== undefined);
    if (NAMING_EXTRAS.has(k)) out[k] = values[0] ?? null;
    else if (SUMMED_EXTRAS.has(k)) out[k] = values.reduce<number>((a, v) => a + (v ?? 0), 0);
    else out[k] = values.some((v) => v === null) ? null : Math.max(...(values as number[]));
  }
  return out;
}

function mergePhase(parts: readonly PhaseReport[]): { phase: PhaseReport; exact: boolean } {
  const sum = (f: (p: PhaseReport) => number) => parts.reduce((a, p) => a + f(p), 0);
  const closed: Record<string, number> = {};
  for (const p of parts) addCounts(closed, p.closed);
  const histograms = parts.map((p) => p.latencyHistogram);
  const exact = histograms.every((h) => h !== undefined);
  const merged = exact ? mergeHistograms(histograms as string[]) : undefined;
  return {
    exact,
    phase: {
      kind: parts[0]!.kind,
      startMs: Math.min(...parts.map((p) => p.startMs)),
      endMs: Math.max(...parts.map((p) => p.endMs)),
      events: { expected: sum((p) => p.events.expected), delivered: sum((p) => p.events.delivered), lost: sum((p) => p.events.lost) },
      latency: merged ? merged.summary() : worstPercentiles(parts.map((p) => p.latency)),
      ...(merged ? { latencyHistogram: merged.encode() } : {}),
      reconnects: sum((p) => p.reconnects),
      closed,
      paused: sum((p) => p.paused),
      cut: sum((p) => p.cut),
      back: sum((p) => p.back),
      extras: mergeExtras(parts.map((p) => p.extras)),
    },
  };
}

/**
 * The merged phases, or none with a note saying why (some files have no phases, or other phases); and notes on
 * what is not exact.
 */
export function mergePhases(files: readonly NamedResult[]): { phases?: PhaseReport[]; notes: string[] } {
  if (files.every((f) => !f.result.phases?.length)) return { notes: [] };
  const kinds = (f: NamedResult) => (f.result.phases ?? []).map((p) => p.kind).join(',');
  const first = files[0]!;
  const other = files.find((f) => kinds(f) !== kinds(first));
  if (other) {
    return {
      notes: [`phases not merged: ${first.file} has [${kinds(first)}], ${other.file} has [${kinds(other)}]; the merged figures are the whole run's`],
    };
  }
  const merged = first.result.phases!.map((_, i) => mergePhase(files.map((f) => f.result.phases![i]!)));
  const notes = ["phases merged: counts summed, span from the earliest start to the latest end, recovery times the worst machine's"];
  if (merged.some((m) => !m.exact)) notes.push("phase latency of files without phase histograms: the worst machine's percentiles");
  return { phases: merged.map((m) => m.phase), notes };
}
