/**
 * `notify report --merge`: one result from the results of the same scenario run on several machines or shards.
 *
 * Exact: connection and event counts are summed, rates recomputed from the sums, and latency / connect / reconnect
 * percentiles recomputed from the HDR histograms added bucket by bucket. Thresholds are parsed again from the
 * files' `config.thresholds` and evaluated on the merged figures.
 *
 * Not exact, because the files do not carry the raw data (each is said so in `merged.notes`): peak open is the sum
 * of the shards' peaks (an upper bound, as within one run); storm return times and per-second p50/p99 of the
 * timeline are the worst shard's; the publisher's 202 latency percentiles are the worst shard's.
 *
 * The self-check is judged again on the merged figures: every shard's workers, and each server once (a URL scraped by
 * several shards is one server: its worst interval and loop lag are the worst any shard saw, its mean CPU the shards'
 * means weighted by their samples), so `bottleneck` and `sides` say which side ran out of CPU in the whole run.
 */
import { ExitCode, isNotifyError, NotifyError } from '../errors.js';
import type { RunSummary, TransportSummary } from '../metrics/summary.js';
import { TRANSPORT_NAMES, type TransportName } from '../protocol/transports.js';
import { evaluateThresholds, parseThresholds } from '../metrics/thresholds.js';
import { runProblems } from './problems.js';
import { reconcileShards } from './shards.js';
import { mergePhases } from './merge-phases.js';
import { mergeServerLoads, selfCheckOf, type SelfCheck } from '../capacity/self-check.js';
import type { EncodedHistograms, ResultFile, StormReport, TimelinePoint } from './schema.js';
import { addCounts, scopeSummary, sumParts, worstPercentiles } from './sum.js';

export interface NamedResult {
  file: string;
  result: ResultFile;
}

/** A shard's scope (a transport, or the total), with the file it came from for messages. */
interface ShardScope {
  file: string;
  name: string;
  summary: TransportSummary;
  histograms?: EncodedHistograms;
}

/**
 * Sums one scope over every shard that has it: the same summing as the swarm's over its workers (sum.ts).
 * `published`: the shards of one run have one publisher, whose count is every scope's.
 */
function mergeScope(parts: ShardScope[], published?: number): { summary: TransportSummary; histograms: EncodedHistograms } {
  const scopeParts = parts.map((p) => {
    if (!p.histograms) {
      throw new NotifyError('E_RESULT_FILE', `${p.file}: no histograms.${p.name} although summary.transports.${p.name} is there; cannot merge exactly`, {
        exitCode: ExitCode.usage,
      });
    }
    return { ...p.summary, histograms: p.histograms };
  });
  const sum = sumParts(scopeParts, (i, kind, err) => {
    const why = isNotifyError(err) ? err.message : (err as Error).message;
    throw new NotifyError('E_RESULT_FILE', `${parts[i]!.file}: histograms.${parts[i]!.name}.${kind} is not a valid encoded HDR histogram (${why})`, {
      exitCode: ExitCode.usage,
      hint: 'was the file edited or truncated?',
    });
  });
  // Each shard had its own publisher, and shards run side by side, so their delivery rates add up.
  const deliveredPerSec = parts.reduce((a, p) => a + p.summary.deliveredPerSec, 0);
  return scopeSummary(sum, published ?? parts.reduce((a, p) => a + p.summary.events.published, 0), deliveredPerSec);
}

/** Per-second points of several runs aligned on seconds since each run's start. */
export function mergeTimelines(timelines: TimelinePoint[][]): TimelinePoint[] {
  const byT = new Map<number, TimelinePoint>();
  for (const timeline of timelines) {
    for (const p of normalizeTimeline(timeline)) {
      const q = byT.get(p.t);
      if (!q) byT.set(p.t, { ...p });
      else {
        q.published += p.published;
        q.delivered += p.delivered;
        q.open += p.open;
        q.reconnects += p.reconnects;
        q.errors += p.errors;
        q.p99 = Math.max(q.p99, p.p99);
        q.p50 = Math.max(q.p50, p.p50);
      }
    }
  }
  return [...byT.values()].sort((a, b) => a.t - b.t);
}

/**
 * One point per second, ascending. The swarm closes its last second when the run ends, which can round to the same
 * second as the one before: such points are folded into one (sums added, worst p50/p99, the later gauges kept).
 */
export function normalizeTimeline(timeline: readonly TimelinePoint[]): TimelinePoint[] {
  const out: TimelinePoint[] = [];
  for (const p of [...timeline].sort((a, b) => a.t - b.t)) {
    const last = out[out.length - 1];
    if (last && last.t === p.t) {
      last.published += p.published;
      last.delivered += p.delivered;
      last.errors += p.errors;
      last.p99 = Math.max(last.p99, p.p99);
      last.p50 = Math.max(last.p50, p.p50);
      last.open = p.open;
      last.reconnects = p.reconnects;
    } else out.push({ ...p });
  }
  return out;
}

function worst(values: (number | null)[]): number | null {
  if (values.some((v) => v === null)) return null;
  return Math.max(0, ...(values as number[]));
}

function mergeStorms(files: NamedResult[]): StormReport[] {
  const n = Math.max(0, ...files.map((f) => f.result.storms.length));
  return Array.from({ length: n }, (_, i) => {
    const parts = files.map((f) => f.result.storms[i]).filter((s): s is StormReport => s !== undefined);
    const failures: Record<string, number> = {};
    for (const p of parts) addCounts(failures, p.failures);
    return {
      atMs: parts[0]!.atMs,
      share: parts[0]!.share,
      aborted: parts.reduce((a, p) => a + p.aborted, 0),
      back: parts.reduce((a, p) => a + p.back, 0),
      back99Ms: worst(parts.map((p) => p.back99Ms)),
      back100Ms: worst(parts.map((p) => p.back100Ms)),
      failures,
    };
  });
}

/** The publishers' figures summed (the shards of one run have one; independent runs one each). */
function mergePublishers(files: NamedResult[]): ResultFile['publisher'] {
  const failures: Record<string, number> = {};
  for (const f of files) addCounts(failures, f.result.publisher.failures);
  return {
    sent: files.reduce((a, f) => a + f.result.publisher.sent, 0),
    accepted: files.reduce((a, f) => a + f.result.publisher.accepted, 0),
    failures,
    ack: worstPercentiles(files.map((f) => f.result.publisher.ack)),
  };
}

/**
 * Both sides of the self-check over the files, judged again: every file's workers (named by file in the verdict), and
 * each server once however many shards scraped it (self-check.ts, mergeServerLoads).
 */
function mergeSelfChecks(files: NamedResult[]): SelfCheck {
  const workers = files.flatMap((f) => f.result.selfCheck.workers.map((w, i) => ({ w, name: `${f.file} worker ${i + 1}` })));
  const servers = mergeServerLoads(files.map((f) => f.result.selfCheck.servers));
  return selfCheckOf(
    workers.map((x) => x.w),
    servers,
    (i) => workers[i]!.name,
  );
}

/** Config fields that must agree for the results to be "the same scenario". */
const SCENARIO_KEYS = ['mix', 'rampMs', 'durationMs', 'drainMs', 'rate', 'userRate', 'storms', 'reconnect'];

/** Differences in scenario between the files: worth a warning, not a refusal (shards may differ on purpose). */
export function scenarioDifferences(files: NamedResult[]): string[] {
  const first = files[0]!;
  const out: string[] = [];
  for (const f of files.slice(1)) {
    for (const k of SCENARIO_KEYS) {
      const a = JSON.stringify(first.result.config[k]);
      const b = JSON.stringify(f.result.config[k]);
      if (a !== b) out.push(`config.${k} differs: ${first.file} has ${a}, ${f.file} has ${b}`);
    }
  }
  return out;
}

/**
 * Merges results of the same scenario from several machines or shards into one `notify.result/1` document.
 * @throws NotifyError E_RESULT_FILE (exit 2) naming the file whose histograms cannot be decoded; E_USAGE when a
 *   stored threshold expression no longer parses.
 */
export function mergeResults(given: NamedResult[]): ResultFile {
  if (given.length === 0) throw new NotifyError('E_USAGE', '--merge needs at least one result file', { exitCode: ExitCode.usage });
  // Shards of one run: checked to be one run, their ledgers settled with the publishing shard's log.
  const shards = reconcileShards(given);
  const files = shards.files;
  const isShards = files[0]!.result.shard !== undefined;
  const runPublished = isShards ? files.reduce((a, f) => a + f.result.summary.total.events.published, 0) : undefined;
  const transports: RunSummary['transports'] = {};
  const histograms: Partial<Record<TransportName, EncodedHistograms>> = {};
  for (const name of TRANSPORT_NAMES) {
    const parts = files
      .filter((f) => f.result.summary.transports[name])
      .map((f) => ({ file: f.file, name, summary: f.result.summary.transports[name]!, histograms: f.result.histograms[name] }));
    if (parts.length === 0) continue;
    const m = mergeScope(parts, runPublished);
    transports[name as TransportName] = m.summary;
    histograms[name as TransportName] = m.histograms;
  }
  const total = mergeScope(
    files.map((f) => ({ file: f.file, name: 'total', summary: f.result.summary.total, histograms: f.result.histograms.total })),
    runPublished,
  );
  const summary: RunSummary = { total: total.summary, transports };

  const exprs = [...new Set(files.flatMap((f) => f.result.config.thresholds))];
  const publisher = mergePublishers(files);
  const thresholds = evaluateThresholds(parseThresholds(exprs), summary, publisher);
  const first = files[0]!.result;
  const sum = (k: string) => files.reduce((a, f) => a + (typeof f.result.config[k] === 'number' ? (f.result.config[k] as number) : 0), 0);
  const stopped = files.filter((f) => f.result.stoppedEarly).map((f) => `${f.file}: ${f.result.stoppedEarly}`);
  // Problems the figures show are judged again on the merged figures; a lost worker stays a problem of the whole.
  const phases = mergePhases(files);
  const lostWorkers = files.flatMap((f) =>
    f.result.problems.filter((p) => p.code === 'worker-failed').map((p) => ({ ...p, message: `${f.file}: ${p.message}` })),
  );

  return {
    schema: first.schema,
    tool: first.tool,
    run: isShards ? first.run : files.map((f) => f.result.run).join('+'),
    startedAt: files.map((f) => f.result.startedAt).sort()[0]!,
    endedAt: files
      .map((f) => f.result.endedAt)
      .sort()
      .at(-1)!,
    stoppedEarly: stopped.length ? stopped.join('; ') : null,
    target: {
      // Shards of one scenario share a profile; its resume modes are what the merged figures need to be read with.
      ...first.target,
      urls: [...new Set(files.flatMap((f) => f.result.target.urls))],
      embedded: files.some((f) => f.result.target.embedded),
      resume: Object.assign({}, ...files.map((f) => f.result.target.resume ?? {})) as Record<string, string>,
    },
    // A shard's config has the run's conns and users; independent runs each their own.
    config: isShards ? { ...first.config, thresholds: exprs } : { ...first.config, conns: sum('conns'), users: sum('users'), thresholds: exprs },
    summary,
    histograms: { ...histograms, total: total.histograms },
    storms: mergeStorms(files),
    publisher,
    selfCheck: mergeSelfChecks(files),
    timeline: mergeTimelines(files.map((f) => f.result.timeline)),
    thresholds,
    problems: [...shards.problems, ...lostWorkers, ...runProblems(summary, publisher)],
    ...(phases.phases ? { phases: phases.phases } : {}),
    merged: {
      from: files.map((f) => ({ file: f.file, run: f.result.run, startedAt: f.result.startedAt, conns: f.result.summary.total.connections.target })),
      notes: [
        'counts summed, rates recomputed from the sums; latency, connect and reconnect percentiles recomputed from the merged HDR histograms',
        "peak open is the sum of the shards' peaks (an upper bound)",
        "timeline aligned on seconds since each shard's start; its per-second p50/p99, storm return times and publisher 202 percentiles are the worst shard's",
        "self-check judged again: every shard's workers, and each server URL once (its worst interval and loop lag are the worst any shard saw)",
        ...shards.notes,
        ...phases.notes,
      ],
    },
  };
}
