/**
 * A run in shards (`notify swarm --shard I/N --run ID --start-at TIME`): what each shard writes beside its figures,
 * and how `notify report --merge` makes one run of them.
 *
 * One shard publishes; the others cannot audit alone, since what a subscriber was owed depends on the publisher's
 * log (swarm/audit.ts). So the publishing shard writes its log (`shard.log`: per stream the send time of every probe
 * and the refused seqs), and every other shard its ledger (`shard.ledger`: per subscriber and stream, its first open
 * and the seqs it received, as ranges). The figures that need no log (duplicated, out of order, recovered,
 * misrouted, latency, connections) are in each shard's summary as in any run; the merge settles expected,
 * delivered and lost of every ledger with the log by the audit's own rules (`settle`), then sums as for any merge.
 *
 * What cannot make one run is never merged silently: a missing shard, one that started more than
 * LATE_START_MS after --start-at, one stopped early, or no publishing shard are problems of the merged run (exit 1);
 * files of other runs, of another shard count, or the same shard twice are refused (exit 2).
 */
import { ExitCode, NotifyError } from '../errors.js';
import { TRANSPORT_NAMES, type TransportName } from '../protocol/transports.js';
import { publishLogFromTimes, rangesReceived, settle, type LedgerEntry, type PublishLog } from '../swarm/audit.js';
import type { NamedResult } from './merge.js';
import type { ResultFile, RunProblem, ShardInfo } from './schema.js';

/** A shard whose ramp began later than this after --start-at did not run the same schedule as the others. */
export const LATE_START_MS = 1000;

/** Send times as whole microseconds: the first absolute, each next one as the difference to the one before. */
function encodeTimes(times: readonly number[]): number[] {
  let prev = 0;
  return times.map((t) => {
    const us = Math.round(t * 1000);
    const d = us - prev;
    prev = us;
    return d;
  });
}

function decodeTimes(deltas: readonly number[]): number[] {
  let us = 0;
  return deltas.map((d) => (us += d) / 1000);
}

/** The publishing shard's log as its result stores it. */
export function encodeLog(sendTimes: ReadonlyMap<string, readonly number[]>, refused: ReadonlyMap<string, readonly number[]>): NonNullable<ShardInfo['log']> {
  return {
    times: Object.fromEntries([...sendTimes].map(([stream, times]) => [stream, encodeTimes(times)])),
    refused: Object.fromEntries([...refused].map(([stream, seqs]) => [stream, [...seqs]])),
  };
}

function decodeLog(log: NonNullable<ShardInfo['log']>): PublishLog {
  const times = new Map(Object.entries(log.times).map(([stream, deltas]) => [stream, decodeTimes(deltas)]));
  return publishLogFromTimes(times, new Map(Object.entries(log.refused)));
}

/** A shard's subscribers' ledgers as its result stores them: streams named once, entries as flat number arrays. */
export function encodeLedger(entries: readonly (LedgerEntry & { transport: number })[]): NonNullable<ShardInfo['ledger']> {
  const streams = new Map<string, number>();
  const rows = entries.map((e) => {
    let s = streams.get(e.stream);
    if (s === undefined) streams.set(e.stream, (s = streams.size));
    const at = e.firstOpenAt === null ? null : Math.round(e.firstOpenAt * 1000) / 1000;
    return [e.transport, s, at, ...e.ranges];
  });
  return { transports: [...TRANSPORT_NAMES], streams: [...streams.keys()], entries: rows };
}

/** Expected, delivered and lost per transport of one shard's ledger, settled with the publisher's log. */
function settleLedger(
  file: string,
  ledger: NonNullable<ShardInfo['ledger']>,
  log: PublishLog,
): Map<TransportName, { expected: number; delivered: number; lost: number }> {
  const out = new Map<TransportName, { expected: number; delivered: number; lost: number }>();
  for (const [row, e] of ledger.entries.entries()) {
    const [t, s, at, ...ranges] = e;
    const transport = ledger.transports[t ?? -1] as TransportName | undefined;
    const stream = ledger.streams[s ?? -1];
    if (transport === undefined || stream === undefined || ranges.some((r) => r === null)) {
      throw new NotifyError('E_RESULT_FILE', `${file}: shard.ledger.entries[${row}] names no known transport or stream; cannot settle it`, {
        exitCode: ExitCode.usage,
        hint: 'was the file edited or truncated?',
      });
    }
    const c = settle(rangesReceived(ranges as number[]), at ?? null, stream, log);
    let into = out.get(transport);
    if (!into) out.set(transport, (into = { expected: 0, delivered: 0, lost: 0 }));
    into.expected += c.expected;
    into.delivered += c.delivered;
    into.lost += c.lost;
  }
  return out;
}

/** A pending shard's result with its expected / delivered / lost settled (and delivery rate over the publishing). */
function settled(f: NamedResult, log: PublishLog, publishingMs: number): NamedResult {
  const r = f.result;
  const byTransport = settleLedger(f.file, r.shard!.ledger!, log);
  const seconds = Math.max(publishingMs, 1) / 1000;
  const patch = (s: ResultFile['summary']['total'], c: { expected: number; delivered: number; lost: number }) => ({
    ...s,
    events: { ...s.events, expected: c.expected, delivered: c.delivered, lost: c.lost },
    deliveredPerSec: c.delivered / seconds,
  });
  const total = { expected: 0, delivered: 0, lost: 0 };
  const transports: ResultFile['summary']['transports'] = {};
  for (const [name, s] of Object.entries(r.summary.transports) as [TransportName, ResultFile['summary']['total']][]) {
    const c = byTransport.get(name) ?? { expected: 0, delivered: 0, lost: 0 };
    transports[name] = patch(s, c);
    total.expected += c.expected;
    total.delivered += c.delivered;
    total.lost += c.lost;
  }
  return { file: f.file, result: { ...r, summary: { total: patch(r.summary.total, total), transports } } };
}

function refuse(message: string, hint?: string): never {
  throw new NotifyError('E_USAGE', message, { exitCode: ExitCode.usage, hint });
}

/** What a merge of shards is made of: the files with every ledger settled, and what keeps it from one whole run. */
export interface ShardReconciliation {
  files: NamedResult[];
  problems: RunProblem[];
  notes: string[];
  /** The run's connections (each shard's config has the run's total). */
  conns?: number;
}

/**
 * Checks that the files are the shards of one run and settles the ledgers of those that did not publish. Files
 * without a `shard` section merge as before (several independent runs), but not mixed with shards.
 */
export function reconcileShards(files: NamedResult[]): ShardReconciliation {
  const sharded = files.filter((f) => f.result.shard);
  if (sharded.length === 0) return { files, problems: [], notes: [] };
  const plain = files.filter((f) => !f.result.shard);
  if (plain.length > 0)
    refuse(`${plain.map((f) => f.file).join(', ')}: not a shard's result, unlike ${sharded[0]!.file}; merge the shards of one run together`);
  const first = files[0]!;
  const n = first.result.shard!.count;
  const byIndex = new Map<number, string>();
  for (const f of files) {
    const s = f.result.shard!;
    if (f.result.run !== first.result.run)
      refuse(`${f.file} is of run ${f.result.run}, ${first.file} of run ${first.result.run}: shards of one run share --run`);
    if (s.count !== n) refuse(`${f.file} is shard ${s.index}/${s.count}, ${first.file} shard ${first.result.shard!.index}/${n}: shards of one run share N`);
    const twice = byIndex.get(s.index);
    if (twice !== undefined) refuse(`${twice} and ${f.file} are both shard ${s.index}/${n}`);
    byIndex.set(s.index, f.file);
  }
  const problems: RunProblem[] = [];
  const missing = Array.from({ length: n }, (_, i) => i + 1).filter((i) => !byIndex.has(i));
  if (missing.length > 0) {
    problems.push({
      code: 'shard-missing',
      message: `shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${n}`).join(', ')} of run ${first.result.run} ${missing.length > 1 ? 'are' : 'is'} missing: ${missing.length > 1 ? 'their' : 'its'} connections were not measured (did it die before writing its result?)`,
    });
  }
  for (const f of files) {
    const s = f.result.shard!;
    if (s.lateMs > LATE_START_MS) {
      problems.push({
        code: 'shard-late',
        message: `${f.file}: shard ${s.index}/${n} started ${(s.lateMs / 1000).toFixed(1)} s after --start-at ${s.startAt}: its connections opened off the run's schedule`,
      });
    }
    if (f.result.stoppedEarly) problems.push({ code: 'shard-stopped', message: `${f.file}: shard ${s.index}/${n} stopped early (${f.result.stoppedEarly})` });
  }
  const publishers = files.filter((f) => f.result.shard!.log);
  if (publishers.length > 1) refuse(`${publishers.map((f) => f.file).join(' and ')} each published run ${first.result.run}: one shard publishes (--publish)`);
  const notes: string[] = [];
  const pending = files.filter((f) => f.result.shard!.ledger);
  if (publishers.length === 0) {
    if (pending.length > 0) {
      problems.push({
        code: 'shard-no-log',
        message: `no publishing shard among the files: expected, delivered and lost of ${pending.map((f) => f.file).join(', ')} cannot be settled (they count 0)`,
      });
    }
    return { files, problems, notes, conns: first.result.config.conns as number | undefined };
  }
  const pub = publishers[0]!;
  const log = decodeLog(pub.result.shard!.log!);
  if (pending.length > 0) notes.push(`expected, delivered and lost of ${pending.length} shard(s) settled from their ledgers with the log of ${pub.file}`);
  return {
    files: files.map((f) => (f.result.shard!.ledger ? settled(f, log, pub.result.shard!.publishingMs) : f)),
    problems,
    notes,
    conns: first.result.config.conns as number | undefined,
  };
}
