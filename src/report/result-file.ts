/**
 * Reading `notify.result/1` files back (report, compare, merge). A file that is missing, not JSON, of another schema
 * or missing a figure the reports need is a usage error (exit 2) that names the file and the first thing wrong.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ExitCode, NotifyError } from '../errors.js';
import { durationSummarySchema as duration } from '../metrics/histogram.js';
import { runSummarySchema } from '../metrics/summary.js';
import { TRANSPORT_NAMES } from '../protocol/transports.js';
import { runProblemSchema } from '../swarm/verdict.js';
import { RESULT_SCHEMA, type ResultFile } from './result.js';

const phaseReportSchema = z
  .object({
    kind: z.string(),
    startMs: z.number(),
    endMs: z.number(),
    /** Probes sent during the phase: owed, received, lost. */
    events: z.object({ expected: z.number(), delivered: z.number(), lost: z.number() }),
    /** Receipts during the phase. */
    latency: duration,
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

export type PhaseReport = z.output<typeof phaseReportSchema>;

const num = z.number().finite();
const counts = z.record(z.string(), num);
const encoded = z.object({ latency: z.string(), connect: z.string(), reconnect: z.string() });

/**
 * The `notify.result/1` document: what `ResultFile` (result.ts) is derived from. Only what reports read is checked;
 * everything else in the file is carried through untouched.
 */
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
    histograms: z.object({ total: encoded, sse: encoded.optional(), ws: encoded.optional(), poll: encoded.optional(), socketio: encoded.optional() }),
    storms: z.array(z.object({ atMs: num, share: num, aborted: num, back: num, back99Ms: num.nullable(), back100Ms: num.nullable(), failures: counts })),
    publisher: z.object({ sent: num, accepted: num, failures: counts, ack: duration }).passthrough(),
    selfCheck: z
      .object({
        workers: z.array(z.object({ eldP99Ms: num, eldMaxMs: num, cpuMean: num, cpuMax: num, rssBytes: num })),
        saturated: z.boolean(),
        warning: z.string().optional(),
      })
      .passthrough(),
    timeline: z.array(z.object({ t: num, published: num, delivered: num, p99: num, p50: num, open: num, reconnects: num, errors: num })),
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
      }),
    ),
    // Absent in files written before runs could fail this way.
    problems: z.array(runProblemSchema).default([]),
    /** A scenario's phases in order, each with its span (ms from the start) and its own figures. */
    phases: z.array(phaseReportSchema).optional(),
    merged: z
      .object({ from: z.array(z.object({ file: z.string(), run: z.string(), startedAt: z.string(), conns: num })), notes: z.array(z.string()) })
      .optional(),
  })
  .passthrough();

function bad(file: string, what: string, hint?: string): NotifyError {
  return new NotifyError('E_RESULT_FILE', `${file}: ${what}`, { exitCode: ExitCode.usage, hint });
}

/**
 * Checks a parsed document against `notify.result/1`.
 * @throws NotifyError E_RESULT_FILE (exit 2) naming `file` and the first field that is wrong.
 */
export function parseResult(file: string, doc: unknown): ResultFile {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw bad(file, `not a notify result: the JSON is ${Array.isArray(doc) ? 'an array' : typeof doc}, not an object`);
  const schema = (doc as { schema?: unknown }).schema;
  if (schema !== RESULT_SCHEMA) {
    throw bad(
      file,
      schema === undefined
        ? `not a notify result: no "schema" field (expected "${RESULT_SCHEMA}")`
        : `wrong schema ${JSON.stringify(schema)} (expected "${RESULT_SCHEMA}")`,
      'result files are written by `notify swarm --out FILE` or `notify report --merge ... --out FILE`',
    );
  }
  const parsed = resultSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? issue.path.join('.') : '(top level)';
    throw bad(file, `not a valid ${RESULT_SCHEMA} file: ${where}: ${issue.message}`, 'was the file edited or truncated?');
  }
  return parsed.data;
}

/** Parses the text of a result file. @throws NotifyError E_RESULT_FILE (exit 2) when it is not JSON or not a result. */
export function parseResultText(file: string, text: string): ResultFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(
      file,
      `not JSON (${(err as Error).message.replace(/\s+/g, ' ')})`,
      text.trim() === '' ? 'the file is empty' : 'result files are the JSON written by `notify swarm --out FILE`',
    );
  }
  return parseResult(file, doc);
}

/** Reads and checks a result file. @throws NotifyError E_RESULT_FILE (exit 2) when unreadable, not JSON or not a result. */
export async function readResultFile(file: string): Promise<ResultFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw bad(
      file,
      `cannot read the file (${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (code ?? (err as Error).message)})`,
    );
  }
  return parseResultText(file, text);
}
