/**
 * The result file, schema `notify.result/1` (DESIGN.md "Result file"), declared once: the zod schema `notify report`
 * checks files with, and every type of a result's parts derived from it, so the swarm that writes a file and the
 * reports that read it cannot drift. Only what reports read is checked; everything else in a file is carried through
 * untouched (`passthrough`).
 */
import { z } from 'zod';
import { durationSummarySchema as duration } from '../metrics/histogram.js';
import { runSummarySchema } from '../metrics/summary.js';
import { TRANSPORT_NAMES } from '../protocol/transports.js';

export const RESULT_SCHEMA = 'notify.result/1';

const num = z.number().finite();
const counts = z.record(z.string(), num);

const phaseReportSchema = z
  .object({
    kind: z.string(),
    startMs: z.number(),
    endMs: z.number(),
    /** Probes sent during the phase: owed, received, lost. */
    events: z.object({ expected: z.number(), delivered: z.number(), lost: z.number() }),
    /** Receipts during the phase. */
    latency: duration,
    /** The same as an encoded HDR histogram, so that `--merge` merges it exactly (absent in older files). */
    latencyHistogram: z.string().optional(),
    reconnects: z.number(),
    /** Streams the server or the network ended during the phase, by cause. */
    closed: z.record(z.string(), z.number()),
    /** slow: connections paused, cut by the server while not reading, and open again. */
    paused: z.number(),
    cut: z.number(),
    back: z.number(),
    /** What the phase itself reports: burst `sent`, storm `storm` (its number), restarts `downMs`, `readyMs`, `allBackMs`. */
    extras: z.record(z.string(), z.number().nullable()),
  })
  .passthrough();

/** A scenario phase's span (ms from the start) and its own figures. */
export type PhaseReport = z.output<typeof phaseReportSchema>;

/** Encoded HDR histograms (compressed base64, microseconds) of one scope: what merges exactly. */
const encodedHistogramsSchema = z.object({ latency: z.string(), connect: z.string(), reconnect: z.string() });
export type EncodedHistograms = z.output<typeof encodedHistogramsSchema>;

const stormReportSchema = z.object({
  atMs: num,
  share: num,
  aborted: num,
  back: num,
  /** ms from the storm until 99% / 100% of the aborted connections were open again (null: never). */
  back99Ms: num.nullable(),
  back100Ms: num.nullable(),
  failures: counts,
});
export type StormReport = z.output<typeof stormReportSchema>;

/** One second of the run. */
/** Which side of a run ran out of CPU; `unknown`: the client was not, and the server side was not measured. */
const BOTTLENECKS = ['client', 'server', 'both', 'neither', 'unknown'] as const;
export type Bottleneck = (typeof BOTTLENECKS)[number];

const timelinePointSchema = z.object({
  /** Seconds since the run started. */
  t: num,
  published: num,
  delivered: num,
  /** Latency p99 of that second, ms (0 when nothing arrived). */
  p99: num,
  p50: num,
  open: num,
  reconnects: num,
  errors: num,
});
export type TimelinePoint = z.output<typeof timelinePointSchema>;

/** Why a run is a runtime failure (exit 1). `code` is stable; `message` names the figures and what to check. */
const runProblemSchema = z.object({
  code: z.enum(['no-connection', 'no-probe-accepted', 'worker-failed', 'shard-missing', 'shard-late', 'shard-stopped', 'shard-no-log']),
  message: z.string(),
});
export type RunProblem = z.output<typeof runProblemSchema>;

/**
 * A shard's part of a run (`--shard I/N`, see result/shards.ts): which one, how late it began, and what the merge
 * needs to settle the audit: the publishing shard's log, or the others' ledgers.
 */
const shardSchema = z.object({
  index: z.number().int().min(1),
  count: z.number().int().min(1),
  /** --start-at, ISO. */
  startAt: z.string(),
  /** How long after --start-at this shard's workers were forked (0 when on time). */
  lateMs: num,
  publishes: z.boolean(),
  /** How long publishing lasted, ms: what delivery rates are over. */
  publishingMs: num,
  /** Per stream: send times in whole µs, the first absolute and then differences; refused seqs. */
  log: z.object({ times: z.record(z.string(), z.array(num)), refused: z.record(z.string(), z.array(num)) }).optional(),
  /**
   * Per subscriber and stream: [transport index, stream index, first open epoch ms or null, ...received ranges as
   * inclusive from, to pairs].
   */
  ledger: z.object({ transports: z.array(z.string()), streams: z.array(z.string()), entries: z.array(z.array(num.nullable())) }).optional(),
});
export type ShardInfo = z.output<typeof shardSchema>;

const publisherSchema = z.object({ sent: num, accepted: num, failures: counts, ack: duration }).passthrough();
/** The publisher's figures a verdict and the summary need. */
export type PublisherFigures = Pick<z.output<typeof publisherSchema>, 'sent' | 'accepted' | 'failures'>;

/** The `notify.result/1` document. */
export const resultSchema = z
  .object({
    schema: z.literal(RESULT_SCHEMA),
    tool: z.object({ name: z.string(), version: z.string() }).passthrough(),
    run: z.string(),
    startedAt: z.string(),
    endedAt: z.string(),
    stoppedEarly: z
      .string()
      .nullable()
      .optional()
      .transform((v) => v ?? null),
    target: z
      .object({
        urls: z.array(z.string()),
        embedded: z.boolean(),
        /** The target profile's name and where it came from (`built-in nchan`, a file path); older files have neither. */
        profile: z.string().optional(),
        source: z.string().optional(),
        /** Per transport used: how a reconnect resumes (`none`: what the target sends meanwhile is lost to it). */
        resume: z.record(z.string(), z.string()).optional(),
      })
      .passthrough(),
    config: z.object({ thresholds: z.array(z.string()) }).passthrough(),
    // The run's figures: the same schema their types are derived from (src/metrics/summary.ts).
    summary: runSummarySchema,
    histograms: z.object({
      total: encodedHistogramsSchema,
      sse: encodedHistogramsSchema.optional(),
      ws: encodedHistogramsSchema.optional(),
      poll: encodedHistogramsSchema.optional(),
      socketio: encodedHistogramsSchema.optional(),
    }),
    storms: z.array(stormReportSchema),
    publisher: publisherSchema,
    selfCheck: z
      .object({
        workers: z.array(z.object({ eldP99Ms: num, eldMaxMs: num, cpuMean: num, cpuMax: num, rssBytes: num })),
        saturated: z.boolean(),
        warning: z.string().optional(),
        /** Per --url that exposed Prometheus metrics: its CPU share of a core (mean, worst interval), event-loop lag p99. */
        servers: z.array(z.object({ url: z.string(), samples: num, cpuMean: num, cpuMax: num, eldP99Ms: num, saturated: z.boolean() })).optional(),
        /** Which side ran out of CPU, and the sentence saying so with the figures; older files have neither. */
        bottleneck: z.enum(BOTTLENECKS).optional(),
        sides: z.string().optional(),
      })
      .passthrough(),
    timeline: z.array(timelinePointSchema),
    thresholds: z.array(
      z.object({
        expr: z.string(),
        metric: z.string(),
        kind: z.enum(['time', 'rate', 'count', 'perSec']),
        op: z.enum(['<', '<=', '>', '>=', '==', '!=']),
        value: num,
        actual: num,
        ok: z.boolean(),
        transport: z.enum(TRANSPORT_NAMES).optional(),
        noData: z.string().optional(),
        /** A shard without the publisher's log cannot judge event figures: why this one is left to the merge. */
        pending: z.string().optional(),
      }),
    ),
    // Absent in files written before runs could fail this way.
    problems: z.array(runProblemSchema).default([]),
    shard: shardSchema.optional(),
    /** A scenario's phases in order, each with its span (ms from the start) and its own figures. */
    phases: z.array(phaseReportSchema).optional(),
    merged: z
      .object({ from: z.array(z.object({ file: z.string(), run: z.string(), startedAt: z.string(), conns: num })), notes: z.array(z.string()) })
      .optional(),
  })
  .passthrough();

/**
 * A `notify.result/1` document as written by `notify swarm --out` and `notify report --merge --out`: the type of what
 * the schema accepts. Beside `summary` (see metrics/summary.ts): `config` is the resolved swarm config with secrets
 * masked and `thresholds` as the expressions given; `histograms` are encoded HDR histograms per transport and in
 * total; `problems` says why the run is a runtime failure (exit 1); `merged` is set on a result made by
 * `notify report --merge`: the files it was made from, and how each figure was combined.
 */
export type ResultFile = z.output<typeof resultSchema>;

/** Per transport the run used, and in total (always there). */
export type ResultHistograms = ResultFile['histograms'];
