/** `notify swarm` options as resolved and validated: flags in, a SwarmConfig out (the only I/O: reading a --target file). */
import { randomBytes } from 'node:crypto';
import { usageError } from '../errors.js';
import { parseThresholds, type Threshold } from '../metrics/thresholds.js';
import { isTransportName, TRANSPORT_NAMES, type TransportName } from '../protocol/transports.js';
import { formatDuration, parseDuration, parseInteger, parsePercent, parseRate } from '../util/parse.js';
import { loadTarget, type LoadedTarget } from '../targets/load.js';
import { profileTransports } from '../targets/subscribe.js';
import type { Scenario } from '../scenario/load.js';

export const RECONNECT_POLICIES = ['immediate', 'backoff', 'retry'] as const;
export type ReconnectPolicy = (typeof RECONNECT_POLICIES)[number];

export interface Storm {
  /** Share of open connections aborted at once (0..1). */
  share: number;
  /** When, ms after the run starts (start of the ramp). */
  atMs: number;
}

export interface SwarmConfig {
  /** Run id: put in every probe; probes of other runs are ignored. */
  run: string;
  /** Servers to subscribe to (connections spread round-robin); empty = start an embedded `notify serve`. */
  urls: string[];
  /**
   * `first`: probes go to the first URL (servers that share a broker fan out to each other); `each`: to every URL
   * (independent servers, e.g. several in-memory `notify serve` processes).
   */
  publishTo: 'first' | 'each';
  /** Transport shares, summing to 1. */
  mix: Partial<Record<TransportName, number>>;
  conns: number;
  users: number;
  /** Prefix of the user ids the swarm subscribes as: `<prefix>1` ... `<prefix>N`. */
  userPrefix: string;
  rampMs: number;
  /** Publishing phase, ms (starts when the ramp ends). */
  durationMs: number;
  /** Wait after publishing before counting, ms. */
  drainMs: number;
  /** Broadcast probes per second. */
  rate: number;
  /** Per-user probes per second, in total, spread round-robin over the users. */
  userRate: number;
  storms: Storm[];
  reconnect: ReconnectPolicy;
  backoffBaseMs: number;
  backoffCapMs: number;
  thresholds: Threshold[];
  out?: string;
  dashboard: boolean;
  /** Worker processes; 0 = decide from the connection count. */
  workers: number;
  /** Source addresses to rotate over (empty = the OS picks). */
  localAddresses: string[];
  publishKey?: string;
  /** When set, the swarm mints an HS256 token per user (sub = user) for `--auth jwt` servers. */
  jwtSecret?: string;
  /** Stop when this many connection attempts have failed (0 = never). */
  bailout: number;
  /** Largest long-poll hold asked of the server, s. */
  pollTimeoutS: number;
  /** How to subscribe and publish (`--target`): notify serve's profile unless another is named. */
  target: LoadedTarget;
  /** Size each probe's payload is filled to (its `{pad}`); undefined: as small as it is. */
  payloadBytes?: number;
  /** `--shard I/N`: this process takes connections i with i % N === I - 1 of the run's `conns` (1-based I). */
  shard?: Shard;
  /** `--start-at`: epoch ms at which the ramp starts (every shard of a run the same); undefined: right away. */
  startAtMs?: number;
  /** Whether this process publishes the probes (`--publish`): shard 1 or an unsharded run does, by default. */
  publishes: boolean;
  /** `--http2`: SSE and long-poll subscribers go as streams, at most `streamsPerConn` per HTTP/2 session. */
  http2?: { streamsPerConn: number; /** In a result: sessions the workers opened. */ sessions?: number };
  /** `--insecure-tls`: accept any certificate on https:// and wss:// (subscribers, publisher, preflight). */
  insecureTls: boolean;
  /** From `--scenario`: its phases (run in order after the ramp) and the processes it starts. */
  scenario?: Pick<Scenario, 'name' | 'file' | 'phases' | 'server' | 'broker'>;
}

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

export const PUBLISH_MODES = ['auto', 'yes', 'none'] as const;

export interface RawSwarmOptions {
  url?: string[];
  publishTo?: string;
  transport?: string;
  conns?: string;
  users?: string;
  userPrefix?: string;
  ramp?: string;
  duration?: string;
  drain?: string;
  rate?: string;
  userRate?: string;
  storm?: string[];
  reconnect?: string;
  backoffBase?: string;
  backoffCap?: string;
  threshold?: string[];
  out?: string;
  dashboard?: boolean;
  workers?: string;
  localAddress?: string;
  publishKey?: string;
  jwtSecret?: string;
  bailout?: string;
  pollTimeout?: string;
  run?: string;
  target?: string;
  targetVar?: string[];
  payloadBytes?: string;
  shard?: string;
  startAt?: string;
  publish?: string;
  http2?: boolean;
  streamsPerConn?: string;
  insecureTls?: boolean;
}

export const SWARM_DEFAULTS = {
  conns: '100',
  ramp: '5s',
  duration: '30s',
  drain: '3s',
  rate: '10/s',
  userRate: '0/s',
  reconnect: 'backoff',
  backoffBase: '100ms',
  backoffCap: '10s',
  workers: '0',
  bailout: '0',
  pollTimeout: '25s',
  userPrefix: 'u',
  streamsPerConn: '100',
} as const;

/** `sse`, or `mix:sse=70,ws=20,poll=10` (weights, normalised). */
export function parseMix(value: string): Partial<Record<TransportName, number>> {
  if (!value.startsWith('mix:')) {
    if (!isTransportName(value)) throw usageError(`--transport must be ${TRANSPORT_NAMES.join(', ')} or mix:sse=70,ws=20,poll=10 (got "${value}")`);
    return { [value]: 1 };
  }
  const weights: Partial<Record<TransportName, number>> = {};
  let sum = 0;
  for (const part of value.slice(4).split(',')) {
    const m = /^([a-z]+)=(\d+(?:\.\d+)?)$/.exec(part.trim());
    if (!m || !isTransportName(m[1]!)) throw usageError(`--transport mix part must look like sse=70 (got "${part}" in "${value}")`);
    const w = Number(m[2]);
    if (weights[m[1] as TransportName] !== undefined) throw usageError(`--transport mix names ${m[1]} twice (got "${value}")`);
    weights[m[1] as TransportName] = w;
    sum += w;
  }
  if (sum <= 0) throw usageError(`--transport mix weights must add up to more than 0 (got "${value}")`);
  for (const k of Object.keys(weights) as TransportName[]) {
    weights[k] = weights[k]! / sum;
    if (weights[k] === 0) delete weights[k];
  }
  return weights;
}

/** `50%@20s`: abort half of the open connections 20 s into the run. */
export function parseStorm(value: string): Storm {
  const m = /^([^@]+)@(.+)$/.exec(value.trim());
  if (!m) throw usageError(`--storm must look like 50%@20s (got "${value}")`);
  return { share: parsePercent('--storm', m[1]!), atMs: parseDuration('--storm', m[2]!) };
}

/** `127.0.0.1-127.0.0.8`, `127.0.0.2`, or a comma list of either; loopback only. */
export function parseAddressRange(value: string): string[] {
  const out: string[] = [];
  for (const part of value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:-127\.\1\.\2\.(\d{1,3}))?$/.exec(part);
    if (!m) throw usageError(`--local-address must be 127.x.y.z or a range like 127.0.0.1-127.0.0.8 (got "${part}")`);
    const from = Number(m[3]);
    const to = m[4] === undefined ? from : Number(m[4]);
    if ([m[1], m[2]].some((o) => Number(o) > 255) || from < 1 || to > 254 || to < from) {
      throw usageError(`--local-address range is not valid (got "${part}")`);
    }
    for (let i = from; i <= to; i++) out.push(`127.${m[1]}.${m[2]}.${i}`);
  }
  return out;
}

/**
 * The transports a profile can carry, each named in --transport; the default is the profile's first one (sse for
 * every built-in but socketio).
 */
function mixFor(raw: string | undefined, target: LoadedTarget): SwarmConfig['mix'] {
  const can = profileTransports(target);
  const mix = parseMix(raw ?? (can.includes('sse') ? 'sse' : can[0]!));
  for (const t of Object.keys(mix) as TransportName[]) {
    if (!can.includes(t)) throw usageError(`--transport ${t}: the ${target.source} profile subscribes with ${can.join(', ')} only (got "${raw}")`);
  }
  return mix;
}

/**
 * Probe rates against the streams the profile's subscribers receive: a rate for a stream nobody receives is a usage
 * error when given, and 0 when defaulted (a user-only profile then publishes on user streams by default instead).
 */
function ratesFor(raw: RawSwarmOptions, target: LoadedTarget): { rate: number; userRate: number } {
  const d = SWARM_DEFAULTS;
  const broadcast = target.streams.includes('broadcast');
  const user = target.streams.includes('user');
  if (!broadcast && raw.rate !== undefined && parseRate('--rate', raw.rate) > 0) {
    throw usageError(`--rate: the ${target.source} profile's subscribers receive no broadcast stream (streams: ${target.streams.join(', ')}); use --user-rate`);
  }
  if (!user && raw.userRate !== undefined && parseRate('--user-rate', raw.userRate) > 0) {
    throw usageError(`--user-rate: the ${target.source} profile's subscribers receive no user stream (streams: ${target.streams.join(', ')}); use --rate`);
  }
  const rate = broadcast ? parseRate('--rate', raw.rate ?? d.rate) : 0;
  const userRate = parseRate('--user-rate', raw.userRate ?? (broadcast ? d.userRate : d.rate));
  if (rate > 100_000) throw usageError(`--rate must be <= 100000/s (got "${raw.rate}")`);
  if (userRate > 100_000) throw usageError(`--user-rate must be <= 100000/s (got "${raw.userRate}")`);
  return { rate, userRate };
}

export function resolveSwarmOptions(raw: RawSwarmOptions, env: Record<string, string | undefined> = {}): SwarmConfig {
  const d = SWARM_DEFAULTS;
  const publishKey = raw.publishKey ?? env.NOTIFY_PUBLISH_KEY;
  // --publish-key is the notify profile's {var.publishKey}; an explicit --target-var publishKey= wins.
  const target = loadTarget(raw.target, [...(publishKey !== undefined ? [`publishKey=${publishKey}`] : []), ...(raw.targetVar ?? [])]);
  const urls = (raw.url ?? (env.NOTIFY_URL ? [env.NOTIFY_URL] : [])).map((u) => {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw usageError(`--url must be an http:// URL (got "${u}")`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw usageError(`--url must be an http:// or https:// URL (got "${u}")`);
    return u.replace(/\/+$/, '');
  });
  const publishTo = raw.publishTo ?? 'first';
  if (publishTo !== 'first' && publishTo !== 'each') throw usageError(`--publish-to must be first or each (got "${publishTo}")`);
  const conns = parseInteger('--conns', raw.conns ?? d.conns, 1, 1_000_000);
  const users = raw.users === undefined ? conns : parseInteger('--users', raw.users, 1, 10_000_000);
  const reconnect = raw.reconnect ?? d.reconnect;
  if (!(RECONNECT_POLICIES as readonly string[]).includes(reconnect)) {
    throw usageError(`--reconnect must be one of ${RECONNECT_POLICIES.join(', ')} (got "${reconnect}")`);
  }
  const durationMs = parseDuration('--duration', raw.duration ?? d.duration);
  if (durationMs <= 0) throw usageError(`--duration must be more than 0 (got "${raw.duration}")`);
  const { rate, userRate } = ratesFor(raw, target);
  if (urls.length === 0 && target.dialect !== 'notify') {
    throw usageError(`--target ${raw.target}: give the server's --url (without one the swarm starts its own notify serve, which speaks the notify profile)`);
  }
  const userPrefix = raw.userPrefix ?? d.userPrefix;
  if (!/^[A-Za-z0-9_.@:+=-]{0,100}$/.test(userPrefix)) throw usageError(`--user-prefix may use A-Z a-z 0-9 _ . @ : + = - (got "${userPrefix}")`);
  const run = raw.run ?? `r${randomBytes(4).toString('hex')}`;
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(run)) throw usageError(`--run may use 1 to 64 of A-Z a-z 0-9 _ . : - (got "${run}")`);
  const rampMs = parseDuration('--ramp', raw.ramp ?? d.ramp);
  const drainMs = parseDuration('--drain', raw.drain ?? d.drain);
  const storms = (raw.storm ?? []).map(parseStorm).sort((a, b) => a.atMs - b.atMs);
  const endMs = rampMs + durationMs + drainMs;
  const late = storms.find((s) => s.atMs >= endMs);
  // The run clears its storm timers when it ends: a storm set after the end would silently never happen.
  if (late) throw usageError(`--storm at ${formatDuration(late.atMs)} is after the end of the run (ramp + duration + drain = ${formatDuration(endMs)})`);
  const { shard, startAtMs, publishes } = shardOptions(raw, conns, urls);
  return {
    run,
    shard,
    startAtMs,
    publishes,
    urls,
    publishTo,
    mix: mixFor(raw.transport, target),
    conns,
    users,
    userPrefix,
    rampMs,
    durationMs,
    drainMs,
    rate,
    userRate,
    storms,
    reconnect: reconnect as ReconnectPolicy,
    backoffBaseMs: parseDuration('--backoff-base', raw.backoffBase ?? d.backoffBase),
    backoffCapMs: parseDuration('--backoff-cap', raw.backoffCap ?? d.backoffCap),
    thresholds: parseThresholds(raw.threshold ?? []),
    out: raw.out,
    dashboard: raw.dashboard !== false,
    workers: parseInteger('--workers', raw.workers ?? d.workers, 0, 64),
    localAddresses: raw.localAddress ? parseAddressRange(raw.localAddress) : [],
    publishKey,
    jwtSecret: raw.jwtSecret ?? env.NOTIFY_JWT_SECRET,
    bailout: parseInteger('--bailout', raw.bailout ?? d.bailout, 0),
    pollTimeoutS: parseDuration('--poll-timeout', raw.pollTimeout ?? d.pollTimeout, 's') / 1000,
    target,
    payloadBytes: raw.payloadBytes === undefined ? undefined : parseInteger('--payload-bytes', raw.payloadBytes, 1, 1_000_000),
    ...http2Options(raw),
  };
}

/** --http2, --streams-per-conn and --insecure-tls. */
function http2Options(raw: RawSwarmOptions): Pick<SwarmConfig, 'http2' | 'insecureTls'> {
  if (!raw.http2 && raw.streamsPerConn !== undefined)
    throw usageError(`--streams-per-conn ${raw.streamsPerConn} needs --http2 (over HTTP/1.1 each subscriber has a connection of its own)`);
  const streamsPerConn = parseInteger('--streams-per-conn', raw.streamsPerConn ?? SWARM_DEFAULTS.streamsPerConn, 1, 10_000);
  return { http2: raw.http2 ? { streamsPerConn } : undefined, insecureTls: Boolean(raw.insecureTls) };
}

/** --shard, --start-at and --publish, checked together: a shard needs the run's id, start and server. */
function shardOptions(raw: RawSwarmOptions, conns: number, urls: string[]): Pick<SwarmConfig, 'shard' | 'startAtMs' | 'publishes'> {
  const shard = raw.shard === undefined ? undefined : parseShard(raw.shard, conns);
  if (shard && (raw.run === undefined || raw.startAt === undefined)) {
    throw usageError(`--shard ${raw.shard} needs --run ID and --start-at TIME, the same for every shard, so that their results merge into one run`);
  }
  if (shard && urls.length === 0)
    throw usageError(`--shard ${raw.shard} needs --url: the shards of a run test one server (without --url each would start its own)`);
  const startAtMs = raw.startAt === undefined ? undefined : parseStartAt(raw.startAt);
  const publish = raw.publish ?? 'auto';
  if (!(PUBLISH_MODES as readonly string[]).includes(publish)) throw usageError(`--publish must be one of ${PUBLISH_MODES.join(', ')} (got "${publish}")`);
  if (publish !== 'auto' && !shard) throw usageError(`--publish ${publish} needs --shard I/N: only a shard leaves publishing to another process`);
  return { shard, startAtMs, publishes: publish === 'yes' || (publish === 'auto' && (shard === undefined || shard.index === 1)) };
}

/** `--shard 2/3`: shard 2 of 3 (1-based), each shard holding at least one of the run's connections. */
function parseShard(value: string, conns: number): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(value.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || count > 10_000 || index < 1 || index > count)
    throw usageError(`--shard must be I/N with 1 <= I <= N <= 10000, e.g. 2/3 (got "${value}")`);
  if (count > conns) throw usageError(`--shard ${value}: --conns ${conns} is the run's total, fewer than its ${count} shards`);
  return { index, count };
}

/** `--start-at 2026-12-03T10:00:00Z` (any ISO 8601 time with a zone) to epoch ms. */
function parseStartAt(value: string): number {
  const ms = /(Z|[+-]\d\d:?\d\d)$/i.test(value.trim()) ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw usageError(`--start-at must be an ISO 8601 time with its zone, e.g. 2026-12-03T10:00:00Z (got "${value}")`);
  if (ms > Date.now() + 24 * 3600_000) throw usageError(`--start-at ${value} is more than a day away`);
  return ms;
}

/** How many of a run's `conns` connections a shard holds (connections i with i % count === index - 1). */
export function shardConns(conns: number, shard: Shard | undefined): number {
  if (!shard) return conns;
  return Math.floor((conns - shard.index) / shard.count) + 1;
}

/**
 * Transport of every connection (index into TRANSPORT_NAMES), interleaved so that every prefix of the connections
 * keeps the mix: connection i goes to the transport furthest below its share so far.
 */
export function assignTransports(mix: Partial<Record<TransportName, number>>, n: number): Uint8Array {
  const shares = TRANSPORT_NAMES.map((t) => mix[t] ?? 0);
  const given = TRANSPORT_NAMES.map(() => 0);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = -1;
    let bestDeficit = -Infinity;
    for (let t = 0; t < shares.length; t++) {
      if (shares[t] === 0) continue;
      const deficit = shares[t]! * (i + 1) - given[t]!;
      if (deficit > bestDeficit) {
        bestDeficit = deficit;
        best = t;
      }
    }
    out[i] = best;
    given[best]!++;
  }
  return out;
}
