/**
 * `notify.scenario/1`: a whole swarm run in one file (DESIGN.md "Scenario files"). Every swarm flag is a field, its
 * value checked by the parser the flag uses and kept as the text the flag would have been given; the phases are
 * parsed into milliseconds, shares (0..1) and rates (per second). load.ts reads files through it and names the field
 * path of any error.
 */
import { z } from 'zod';
import { isNotifyError } from '../errors.js';
import { parseStorm, RECONNECT_POLICIES } from '../swarm/config.js';
import { parseDuration, parseInteger, parsePercent, parseRate } from '../util/parse.js';

const DURATION = 'a duration like 10s, 500ms or 1m';
const RATE = 'a rate like 10/s or 600/m';
const PERCENT = 'a percentage like 50%';
const WHOLE = 'a whole number';
const POSITIVE = 'a whole number >= 1';

/**
 * What one of the project's flag parsers makes of `value`, or undefined when it refuses it. The parser's message
 * names a flag; the scenario says the same in its own words, with the field's path.
 */
function attempt<T>(parse: () => T): T | undefined {
  try {
    return parse();
  } catch (err) {
    if (isNotifyError(err)) return undefined;
    throw err;
  }
}

const ms = (v: unknown) => (typeof v === 'string' ? attempt(() => parseDuration('', v)) : undefined);
const perSecond = (v: unknown) => (typeof v === 'string' ? attempt(() => parseRate('', v)) : typeof v === 'number' && v >= 0 ? v : undefined);
const share = (v: unknown) => (typeof v === 'string' ? attempt(() => parsePercent('', v)) : typeof v === 'number' && v >= 0 && v <= 1 ? v : undefined);
const whole = (min: number) => (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? attempt(() => parseInteger('', v, min)) : undefined);
const storm = (v: unknown) => (typeof v === 'string' ? attempt(() => parseStorm(v)) : undefined);
const urls = (v: unknown) =>
  typeof v === 'string' ? [v] : Array.isArray(v) && v.length > 0 && v.every((u): u is string => typeof u === 'string') ? v : undefined;
const scalarText = (v: unknown) => (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined);

function isUrl(v: unknown, protocols: readonly string[]): v is string {
  if (typeof v !== 'string' || !URL.canParse(v)) return false;
  const url = new URL(v);
  return protocols.includes(url.protocol) && url.hostname !== '';
}
const httpUrl = (v: unknown) => (isUrl(v, ['http:', 'https:']) ? v : undefined);
/** `tcp://host:port`: ready once it accepts a connection (a broker that speaks no HTTP). */
const httpOrTcp = (v: unknown) => httpUrl(v) ?? (isUrl(v, ['tcp:']) && new URL(v).port !== '' ? v : undefined);

/** A field `parse` reads (undefined: refused); the issue says `expected <expected>` and load.ts adds what it got. */
function field<T>(expected: string, parse: (value: unknown) => T | undefined) {
  return z.unknown().transform((value, ctx): T => {
    const parsed = parse(value);
    if (parsed !== undefined) return parsed;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected ${expected}` });
    return z.NEVER;
  });
}

/** A swarm flag's value: checked by `parse`, kept as the text commander would have given (a YAML number too). */
const flag = (expected: string, parse: (value: unknown) => unknown) =>
  field(expected, (v) => (parse(v) === undefined ? undefined : String(v as string | number)));

const nonEmpty = z.string().min(1, 'expected a non-empty string');

/** A process the swarm starts, and how it knows the process is ready (polled until it answers). */
const started = (readyIs: string, ready: (v: unknown) => string | undefined) => z.object({ command: nonEmpty, ready: field(readyIs, ready) }).strict();

const SIGNALS = ['SIGKILL', 'SIGTERM', 'SIGINT'] as const;
const restart = <K extends string>(kind: K) =>
  z.object({ kind: z.literal(kind), signal: z.enum(SIGNALS).default('SIGKILL'), down: field(DURATION, ms) }).strict();

const phaseFields = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('steady'), duration: field(DURATION, ms) }).strict(),
  /** That many probes at once on the streams named. */
  z.object({ kind: z.literal('burst'), count: field(POSITIVE, whole(1)), streams: z.enum(['broadcast', 'user', 'both']).default('broadcast') }).strict(),
  /** Abort that share of the open connections at once, or spread over a window. */
  z.object({ kind: z.literal('storm'), share: field(PERCENT, share), over: field(DURATION, ms).default('0s') }).strict(),
  /** Close and open connections at this rate. */
  z.object({ kind: z.literal('churn'), rate: field(RATE, perSecond), duration: field(DURATION, ms) }).strict(),
  /** That share of the connections stops reading, then reads again. */
  z.object({ kind: z.literal('slow'), share: field(PERCENT, share), duration: field(DURATION, ms) }).strict(),
  restart('server-restart'),
  restart('broker-restart'),
]);

/** A phase as the run uses it: durations in ms, shares 0..1, rates per second. */
function toPhase(p: z.output<typeof phaseFields>) {
  switch (p.kind) {
    case 'steady':
      return { kind: p.kind, durationMs: p.duration };
    case 'burst':
      return { kind: p.kind, count: p.count, streams: p.streams };
    case 'storm':
      return { kind: p.kind, share: p.share, overMs: p.over };
    case 'churn':
      return { kind: p.kind, rate: p.rate, durationMs: p.duration };
    case 'slow':
      return { kind: p.kind, share: p.share, durationMs: p.duration };
    case 'server-restart':
    case 'broker-restart':
      return { kind: p.kind, signal: p.signal, downMs: p.down };
  }
}

const phase = phaseFields.transform(toPhase);
export type Phase = z.output<typeof phase>;

export const scenarioSchema = z
  .object({
    schema: z.literal('notify.scenario/1'),
    name: nonEmpty,
    description: z.string().optional(),
    // The swarm's flags, camelCase. What depends on the target profile (transport, rates per stream) and the rest of
    // the flags' own checks stay with resolveSwarmOptions, which sees the file and the command line together.
    url: field('a URL or a list of URLs', urls).optional(),
    publishTo: z.string().optional(),
    transport: z.string().optional(),
    conns: flag(POSITIVE, whole(1)).optional(),
    users: flag(POSITIVE, whole(1)).optional(),
    userPrefix: z.string().optional(),
    ramp: flag(DURATION, ms).optional(),
    duration: flag(DURATION, ms).optional(),
    drain: flag(DURATION, ms).optional(),
    rate: flag(RATE, perSecond).optional(),
    userRate: flag(RATE, perSecond).optional(),
    storm: z.array(flag('a storm like 50%@20s', storm)).optional(),
    reconnect: z.enum(RECONNECT_POLICIES).optional(),
    backoffBase: flag(DURATION, ms).optional(),
    backoffCap: flag(DURATION, ms).optional(),
    thresholds: z.array(z.string()).optional(),
    /** The result file, or every output of the run. */
    out: z
      .union([nonEmpty, z.object({ json: nonEmpty.optional(), html: nonEmpty.optional(), junit: nonEmpty.optional() }).strict()], {
        errorMap: () => ({ message: 'expected a file path or {json, html, junit}' }),
      })
      .optional(),
    dashboard: z.boolean().optional(),
    workers: flag(WHOLE, whole(0)).optional(),
    localAddress: z.string().optional(),
    http2: z.boolean().optional(),
    streamsPerConn: flag(POSITIVE, whole(1)).optional(),
    insecureTls: z.boolean().optional(),
    publishKey: z.string().optional(),
    jwtSecret: z.string().optional(),
    bailout: flag(WHOLE, whole(0)).optional(),
    pollTimeout: flag(DURATION, ms).optional(),
    /** A built-in profile name, or a profile file relative to the scenario file. */
    target: nonEmpty.optional(),
    /** `{NAME: VALUE}`, each a `--target-var NAME=VALUE`. */
    targetVar: z.record(z.string(), field('a string, a number or true/false', scalarText)).optional(),
    run: nonEmpty.optional(),
    server: started('an http:// URL', httpUrl).optional(),
    broker: started('an http:// URL or tcp://host:port', httpOrTcp).optional(),
    /** Size of each probe's notification, bytes. */
    payloadBytes: field(POSITIVE, whole(1)).optional(),
    /** Run in order after the ramp; publishing goes on through all of them. */
    phases: z.array(phase).default([]),
  })
  .strict()
  .superRefine((s, ctx) => {
    s.phases.forEach((p, i) => {
      const needs = p.kind === 'server-restart' ? 'server' : p.kind === 'broker-restart' ? 'broker' : undefined;
      if (needs === undefined || s[needs] !== undefined) return;
      // The swarm can only restart a process it started.
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['phases', i], message: `${p.kind} needs ${needs}: {command, ready}, the ${needs} the swarm starts` });
    });
  });

export type ScenarioFile = z.output<typeof scenarioSchema>;
