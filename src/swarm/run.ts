/**
 * One swarm run, end to end: check the machine can hold it, start the embedded server if no --url, fork workers,
 * ramp, publish on schedule, fire storms, drain, collect every worker's audit and histograms, and build the result.
 */
import { Agent, request as undiciRequest } from 'undici';
import { nowEpochMs } from '../protocol/probe.js';
import { NotifyError, ExitCode } from '../errors.js';
import { planCapacity, readLimits } from '../capacity/planner.js';
import { evaluateThresholds, type ThresholdResult } from '../metrics/thresholds.js';
import { aggregate, type Aggregate } from './aggregate.js';
import { assignTransports, shardConns, type SwarmConfig } from './config.js';
import { startEmbeddedServer, type EmbeddedServer } from './embedded.js';
import { WorkerFleet } from './fleet.js';
import type { Phase, SwarmSnapshot } from '../metrics/snapshot.js';
import type { RunOutcome } from '../result/build.js';
import { runProblems } from '../result/problems.js';
import type { Bottleneck, PhaseReport, RunProblem, ShardInfo, TimelinePoint } from '../result/schema.js';
import { encodeLedger, encodeLog } from '../result/shards.js';
import { LiveView, SATURATION } from './live.js';
import { judgeSides, ServerSampler, type ServerLoad } from '../capacity/server-load.js';
import type { WorkerPlan, WorkerResult } from './messages.js';
import { Publisher } from './publisher.js';
import { subscribePlan } from '../targets/subscribe.js';
import { ManagedProcess } from './managed-process.js';
import { phaseReports, type PhaseSpan } from './phase-report.js';
import { plannedMs, runPhase, type PhaseContext } from './phases/index.js';
import { lostWorkers } from './verdict.js';

/** Longest publishing waits after the ramp for connection attempts still under way (a transport's connect timeout). */
const RAMP_SETTLE_MAX_MS = 10_000;
/** A run with --start-at forks its workers this long before it: they are ready when the ramp begins. */
const START_AHEAD_MS = 2000;
/**
 * Shards publish this long after the ramp: the publisher cannot see the other shards' last connection attempts, as
 * an unsharded run waits for its own (up to RAMP_SETTLE_MAX_MS), so every shard leaves them the same fixed margin.
 */
const SHARD_SETTLE_MS = 1000;
/** Why a shard that does not publish leaves the event thresholds to the merge. */
const PENDING_EVENTS = 'this shard does not publish: decided by notify report --merge with the publishing shard';
/** How long the main process waits for every worker's final result after asking for it. */
const WORKER_RESULT_WAIT_MS = 30_000;

export interface RunHooks {
  /** Called about once a second with the live snapshot. */
  onSnapshot?: (snap: SwarmSnapshot) => void;
  /** Progress messages worth a line (start, storms, early stop). */
  onNote?: (line: string) => void;
  /** Resolves when the user asks to stop early (Ctrl-C, `q`). */
  stopSignal?: Promise<string>;
}

export interface SwarmOutcome extends Aggregate, RunOutcome {
  config: SwarmConfig;
  urls: string[];
  embedded: boolean;
  startedAt: string;
  endedAt: string;
  timeline: TimelinePoint[];
  publisher: { sent: number; accepted: number; failures: Record<string, number>; ack: ReturnType<Publisher['ack']['summary']> };
  selfCheck: {
    workers: WorkerResult['selfCheck'][];
    saturated: boolean;
    warning?: string;
    servers?: ServerLoad[];
    bottleneck: Bottleneck;
    sides: string;
  };
  thresholds: ThresholdResult[];
  /** Why the run is a runtime failure (exit 1): nothing opened, nothing accepted, a worker lost. Empty when it is not. */
  problems: RunProblem[];
  stoppedEarly?: string;
  /** A scenario's phases, each with its own figures. */
  phases?: PhaseReport[];
  /** `--shard`: which one, how late it began, and the log or the ledger the merge settles the audit with. */
  shard?: ShardInfo;
}

/**
 * Worker processes and source addresses for the run, or a usage error (exit 2) naming the limit and the fix when the
 * machine cannot hold it; `embeddedServer` also checks the server the run would start itself.
 */
export function planWorkers(config: SwarmConfig, isLoopback: boolean, embeddedServer = false): { workers: number; localAddresses: string[]; notes: string[] } {
  const limits = readLimits();
  const conns = shardConns(config.conns, config.shard);
  const auto = planCapacity(limits, conns);
  const workers = config.workers || auto.workersNeeded;
  let localAddresses = config.localAddresses;
  if (localAddresses.length === 0 && auto.addressesNeeded > 1 && isLoopback) {
    localAddresses = Array.from({ length: auto.addressesNeeded }, (_, i) => `127.0.0.${i + 1}`);
  }
  const plan = planCapacity(limits, conns, { workers, addresses: Math.max(1, localAddresses.length), embeddedServer });
  if (!plan.fits) {
    const what = config.shard ? `shard ${config.shard.index}/${config.shard.count}'s ${conns} of --conns ${config.conns}` : `--conns ${conns}`;
    throw new NotifyError('E_CAPACITY', `${what} does not fit this machine: ${plan.problems.join('; ')}`, {
      exitCode: ExitCode.usage,
      hint: 'run `notify doctor` for the limits it read',
    });
  }
  return { workers, localAddresses, notes: plan.notes };
}

/**
 * Any HTTP answer means the server is there (notify serve's /healthz; another server's --url itself, whatever it
 * answers); a refused or timed-out connection ends the run before it starts.
 */
async function preflight(url: string, target: SwarmConfig['target'], insecureTls: boolean): Promise<void> {
  const probeUrl = target.dialect === 'notify' ? url + '/healthz' : url;
  // --insecure-tls: a self-signed test server must pass the check its subscribers will pass.
  const dispatcher = insecureTls ? new Agent({ connect: { rejectUnauthorized: false } }) : undefined;
  try {
    await undiciRequest(probeUrl, { signal: AbortSignal.timeout(5000), dispatcher }).then((r) => r.body.dump());
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string } };
    const cause = e.cause?.code ?? e.code ?? (err as Error).name;
    const certificate = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(cause);
    throw new NotifyError('E_UNREACHABLE', `cannot reach ${url} (${cause})${certificate ? '' : ': is the server running?'}`, {
      hint: certificate
        ? "the server's certificate is not trusted here; for a self-signed test certificate add --insecure-tls"
        : target.dialect === 'notify'
          ? 'start one with `notify serve`, or leave out --url to let the swarm start its own'
          : `the ${target.source} profile subscribes there`,
    });
  } finally {
    await dispatcher?.close();
  }
}

/** An early stop (Ctrl-C, q, --bailout, a worker lost): the first reason given wins, and `stopped` resolves then. */
class EarlyStop {
  reason: string | undefined;
  readonly stopped: Promise<void>;
  private wake: () => void = () => {};

  constructor(private readonly note: (line: string) => void) {
    this.stopped = new Promise<void>((r) => (this.wake = r));
  }

  readonly stop = (why: string): void => {
    if (this.reason) return;
    this.reason = why;
    this.note(`stopping early: ${why}`);
    this.wake();
  };

  /**
   * Wakes at `at`, on an early stop, or when `orUntil` settles; the timer is cleared either way, since a pending one
   * would hold the process open after the run.
   */
  readonly sleepUntil = (at: number, orUntil?: Promise<void>): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const slept = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, at - Date.now()))));
    return Promise.race(orUntil ? [this.stopped, slept, orUntil] : [this.stopped, slept]).finally(() => clearTimeout(timer));
  };
}

/** Fires each storm at its time from the run start `t0`; the timers are cleared by the caller when the run ends. */
function scheduleStorms(storms: SwarmConfig['storms'], t0: number, workers: WorkerFleet, note: (line: string) => void): NodeJS.Timeout[] {
  return storms.map((s, index) =>
    setTimeout(
      () => {
        note(`storm ${index + 1}: aborting ${Math.round(s.share * 100)}% of open connections`);
        workers.send({ type: 'storm', index, share: s.share });
      },
      Math.max(0, t0 + s.atMs - Date.now()),
    ),
  );
}

/**
 * The workers' self-check with the servers' load beside it (undefined: no --url exposed metrics), which side ran out of
 * CPU, and a warning when either was too busy for the latency figures to be the other's alone.
 */
function selfCheckOf(results: readonly WorkerResult[], servers: ServerLoad[] | undefined): SwarmOutcome['selfCheck'] {
  const workers = results.map((r) => r.selfCheck);
  const worstEld = Math.max(0, ...workers.map((s) => s.eldP99Ms));
  const worstCpu = Math.max(0, ...workers.map((s) => s.cpuMax));
  const saturated = worstEld > SATURATION.eldP99Ms || worstCpu > SATURATION.cpu;
  const { bottleneck, text: sides } = judgeSides(workers, servers, SATURATION);
  const advice: Partial<Record<Bottleneck, string>> = {
    client: 'latency figures include client-side delay; use more --workers or fewer --conns',
    server: 'latency figures are the server running out of CPU',
    both: 'latency figures include client-side delay and the server running out of CPU',
  };
  const warning = advice[bottleneck] && `${sides}: ${advice[bottleneck]}`;
  return { workers, saturated, warning, servers, bottleneck, sides };
}

/** The live snapshot with the servers' load so far beside the client's self-check. */
function withServerLoad(snap: SwarmSnapshot, servers: ServerLoad[] | undefined): SwarmSnapshot {
  if (!servers) return snap;
  const worst = servers.reduce((a, b) => (b.cpuMax > a.cpuMax ? b : a));
  const server = { url: worst.url, cpu: worst.cpuMax, eldP99Ms: Math.max(...servers.map((s) => s.eldP99Ms)), saturated: servers.some((s) => s.saturated) };
  return { ...snap, selfCheck: { ...snap.selfCheck, server } };
}

/**
 * The servers of the run, each answering: the --url ones, or a notify serve started for it (handed to `started` at
 * once, so that it is stopped whatever happens next). Before anything starts, a run that cannot fit (its own server
 * included) is refused rather than begun and lost.
 */
async function prepare(
  config: SwarmConfig,
  note: (line: string) => void,
  started: (server: EmbeddedServer) => void,
  processes: Processes,
): Promise<{ urls: string[]; workers: number; localAddresses: string[]; serverLoad: ServerSampler }> {
  let urls = config.urls;
  const loopback = urls.every((u) => /^(127\.|localhost$|\[::1\]$)/.test(new URL(u).hostname));
  const plan = planWorkers(config, loopback, urls.length === 0);
  // The scenario's own broker first (the server may need it), then its server.
  for (const role of ['broker', 'server'] as const) {
    const spec = config.scenario?.[role];
    if (spec === undefined) continue;
    const proc = (processes[role] = new ManagedProcess(role, spec.command, spec.ready));
    const ms = await proc.start();
    note(`started the scenario's ${role} \`${spec.command}\` (ready after ${ms.toFixed(0)} ms)`);
  }
  if (urls.length === 0) {
    // --http2 against its own server: cleartext h2 by prior knowledge (there is no certificate to offer).
    const embedded = await startEmbeddedServer(config.http2 ? ['--h2c'] : []);
    started(embedded);
    urls = [embedded.url];
    note(`started embedded notify serve at ${embedded.url} (pid ${embedded.pid})`);
  }
  await Promise.all(urls.map((u) => preflight(u, config.target, config.insecureTls)));
  // The server side of the self-check: each --url's /metrics from before the ramp to after the drain.
  return { urls, workers: plan.workers, localAddresses: plan.localAddresses, serverLoad: ServerSampler.started(urls) };
}

/** Processes a scenario starts and its restart phases act on. */
interface Processes {
  server?: ManagedProcess;
  broker?: ManagedProcess;
}

/** Publishing with phases has no planned end: it stops after the last phase. */
const OPEN_ENDED_MS = 7 * 24 * 3600_000;

/**
 * Runs the scenario's phases in order from `startAt` while the publisher goes on, telling the workers when each
 * begins; returns each one's span and own figures. An early stop ends the phase under way and skips the rest.
 */
async function runPhases(config: SwarmConfig, ctx: PhaseContext, early: EarlyStop, publishStart: number): Promise<PhaseSpan[]> {
  const spans: PhaseSpan[] = [];
  // Taken before the first probe can leave, so that the first phase's window holds it.
  let at = nowEpochMs();
  const publishing = ctx.publisher.run(publishStart, OPEN_ENDED_MS);
  for (const [index, phase] of (config.scenario?.phases ?? []).entries()) {
    if (early.reason) break;
    ctx.send({ type: 'phase', index });
    ctx.note(`phase ${index + 1}: ${phase.kind}`);
    const extras = await Promise.race([runPhase(phase, ctx, at), early.stopped.then(() => ({}))]);
    const to = nowEpochMs();
    spans.push({ phase, from: at, to, extras });
    at = to;
  }
  ctx.publisher.stop();
  await publishing;
  return spans;
}

/**
 * Each phase's span for the audit. The last stays open: probes still queued when publishing stopped leave after its
 * end and are its own (MAX_SAFE_INTEGER, not Infinity: the windows go to the workers as JSON).
 */
function auditWindows(spans: readonly PhaseSpan[]): [number, number][] {
  return spans.map((s, i) => [s.from, i === spans.length - 1 ? Number.MAX_SAFE_INTEGER : s.to]);
}

/** Forks the workers; their ticks feed the live view, and --bailout or a lost worker stops the run early. */
function startFleet(config: SwarmConfig, plans: WorkerPlan[], live: LiveView, early: EarlyStop): WorkerFleet {
  return new WorkerFleet(plans, {
    tick: (msg) => {
      live.onTick(msg);
      const failed = live.failed();
      if (config.bailout > 0 && failed >= config.bailout) early.stop(`--bailout ${config.bailout}: ${failed} failed connection attempts`);
    },
    failed: (why) => early.stop(`worker failed: ${why}`),
  });
}

/**
 * Publishes through the scenario's phases, or for --duration without them; the phases' spans (none without). A shard
 * that leaves publishing to another only keeps the schedule.
 */
async function publish(
  config: SwarmConfig,
  pub: Publisher,
  early: EarlyStop,
  publishStart: number,
  publishEnd: number,
  ctx: () => PhaseContext,
): Promise<PhaseSpan[]> {
  if (early.reason) return [];
  if (!config.publishes) {
    await early.sleepUntil(publishEnd);
    return [];
  }
  if ((config.scenario?.phases.length ?? 0) > 0) return runPhases(config, ctx(), early, publishStart);
  await Promise.race([early.stopped, pub.run(publishStart, config.durationMs)]);
  return [];
}

/**
 * Waits for the end of the ramp; how late publishing starts, ms. Publishing starts when the ramp is over: every
 * connection's first attempt has opened or failed. The last connections are due just before the planned start;
 * publishing without them would give them a partial expected set and the first probes a partial audience.
 */
async function rampSettled(early: EarlyStop, workers: WorkerFleet, publishStart: number, keepSchedule: boolean): Promise<number> {
  await early.sleepUntil(publishStart);
  // Shards keep the schedule: the others cannot know how long this one's ramp took.
  if (keepSchedule) return 0;
  await early.sleepUntil(publishStart + RAMP_SETTLE_MAX_MS, workers.rampDone);
  return Date.now() - publishStart;
}

/** A lost worker does not lose the run: the result is built from the workers that reported, and says what is missing. */
function missingWorkers(early: EarlyStop, workers: number, conns: number, results: readonly WorkerResult[], fatal: string | undefined): RunProblem[] {
  const stoppingAnyway = early.reason !== undefined && !early.reason.startsWith('worker failed');
  return lostWorkers(
    workers,
    conns,
    results.map((r) => r.index),
    fatal,
    stoppingAnyway,
  );
}

/** With --start-at far ahead: waits until shortly before it, so that the workers are ready when the ramp begins. */
async function startAhead(t0: number, early: EarlyStop, note: (line: string) => void): Promise<void> {
  if (t0 - Date.now() <= START_AHEAD_MS) return;
  note(`waiting for --start-at ${new Date(t0).toISOString()} (in ${((t0 - Date.now()) / 1000).toFixed(0)} s)`);
  await early.sleepUntil(t0 - START_AHEAD_MS);
}

/**
 * How late the workers began their ramp after t0, ms (0 when on time): they open connection 0 at t0, so a shard
 * whose workers began after it missed the run's schedule, which the merge reports. Not all ready yet: late until now.
 */
function lateStart(config: SwarmConfig, t0: number, readyAt: number | undefined, note: (line: string) => void): number {
  const lateMs = Math.max(0, (readyAt ?? Date.now()) - t0);
  if (config.startAtMs !== undefined && lateMs > 0) note(`started ${lateMs} ms after --start-at ${new Date(t0).toISOString()}`);
  return lateMs;
}

/** A shard's part of the result: the publishing one's log, or the others' subscribers' ledgers. */
function shardInfo(
  config: SwarmConfig,
  at: { t0: number; lateMs: number; publishingMs: number; pub: Publisher; results: readonly WorkerResult[] },
): ShardInfo | undefined {
  if (!config.shard) return undefined;
  return {
    ...config.shard,
    startAt: new Date(at.t0).toISOString(),
    lateMs: at.lateMs,
    publishes: config.publishes,
    publishingMs: at.publishingMs,
    ...(config.publishes ? { log: encodeLog(at.pub.sendTimes, at.pub.refused) } : { ledger: encodeLedger(at.results.flatMap((r) => r.ledger ?? [])) }),
  };
}

/** What the phases act on: the run's workers, publisher, storms list, live view and the scenario's processes. */
function phaseContext(run: {
  config: SwarmConfig;
  pub: Publisher;
  workers: WorkerFleet;
  workerCount: number;
  note: (line: string) => void;
  early: EarlyStop;
  storms: SwarmConfig['storms'];
  t0: number;
  live: LiveView;
  processes: Processes;
}): PhaseContext {
  const { workers, early, storms } = run;
  return {
    send: (msg) => workers.send(msg),
    publisher: run.pub,
    workers: run.workerCount,
    conns: run.config.conns,
    note: run.note,
    sleepUntil: (at) => early.sleepUntil(at),
    stopped: () => early.reason !== undefined,
    storm: (share, overMs) => {
      const index = storms.push({ share, atMs: Date.now() - run.t0 }) - 1;
      workers.send({ type: 'storm', index, share, overMs });
      return index;
    },
    openNow: () => run.live.openNow(),
    stormProgress: (index) => run.live.stormProgress(index),
    ...run.processes,
  };
}

/**
 * `--http2`: the sessions the workers opened go in the result's config (`config.http2.sessions`), next to the streams
 * per session asked for; subscribers are still counted as connections, one per stream.
 */
function withSessions(config: SwarmConfig, results: readonly WorkerResult[], note: (line: string) => void): SwarmConfig {
  if (!config.http2) return config;
  const sessions = results.reduce((n, r) => n + (r.http2Sessions ?? 0), 0);
  note(`http2: SSE and long-poll subscribers used ${sessions} HTTP/2 sessions (at most ${config.http2.streamsPerConn} streams each)`);
  return { ...config, http2: { ...config.http2, sessions } };
}

/** What each worker process is told: the run's shape and its own index. */
function workerPlans(
  config: SwarmConfig,
  at: { urls: string[]; transports: WorkerPlan['transports']; localAddresses: string[]; startAt: number; workers: number },
): WorkerPlan[] {
  return Array.from({ length: at.workers }, (_, w): WorkerPlan => ({
    run: config.run,
    index: w,
    workers: at.workers,
    conns: config.conns,
    shard: config.shard,
    users: config.users,
    userPrefix: config.userPrefix,
    urls: at.urls,
    transports: at.transports,
    localAddresses: at.localAddresses,
    startAt: at.startAt,
    rampMs: config.rampMs,
    reconnect: config.reconnect,
    backoffBaseMs: config.backoffBaseMs,
    backoffCapMs: config.backoffCapMs,
    pollTimeoutS: config.pollTimeoutS,
    jwtSecret: config.jwtSecret,
    target: subscribePlan(config.target),
    http2: config.http2,
    insecureTls: config.insecureTls,
  }));
}

function publisherFor(config: SwarmConfig, urls: string[]): Publisher {
  return new Publisher({
    run: config.run,
    urls: config.publishTo === 'each' ? urls : [urls[0]!],
    // Servers sharing a broker: when the one published to is lost, the next takes the probes.
    failoverUrls: config.publishTo === 'first' ? urls.slice(1) : undefined,
    target: config.target,
    payloadBytes: config.payloadBytes,
    rate: config.rate,
    userRate: config.userRate,
    users: config.users,
    userPrefix: config.userPrefix,
    insecureTls: config.insecureTls,
  });
}

export async function runSwarm(config: SwarmConfig, hooks: RunHooks = {}): Promise<SwarmOutcome> {
  const note = hooks.onNote ?? (() => {});
  let embedded: EmbeddedServer | undefined;
  let fleet: WorkerFleet | undefined;
  let publisher: Publisher | undefined;
  const processes: Processes = {};
  try {
    const { urls, workers: workerCount, localAddresses, serverLoad } = await prepare(config, note, (e) => (embedded = e), processes);
    const startedAt = new Date();
    const t0 = config.startAtMs ?? startedAt.getTime() + 300;
    // This process's connections: a shard holds its part of the run's.
    const conns = shardConns(config.conns, config.shard);
    // Moved later when the ramp's last connection attempts are still under way at the planned start (see below).
    let publishStart = t0 + config.rampMs + (config.shard ? SHARD_SETTLE_MS : 0);
    const hasPhases = (config.scenario?.phases.length ?? 0) > 0;
    const durationMs = hasPhases ? plannedMs(config.scenario!.phases) : config.durationMs;
    let publishEnd = publishStart + durationMs;
    let totalMs = publishStart - t0 + durationMs + config.drainMs;
    // --storm ones first, then those of storm phases as they fire: one list for the workers, the view and the result.
    const storms = [...config.storms];
    const live = new LiveView(conns, storms);
    const early = new EarlyStop(note);
    void hooks.stopSignal?.then(early.stop);
    await startAhead(t0, early, note);
    const transports = Array.from(assignTransports(config.mix, config.conns));
    const plans = workerPlans(config, { urls, transports, localAddresses, startAt: t0, workers: workerCount });

    const workers = (fleet = startFleet(config, plans, live, early));
    const pub = (publisher = publisherFor(config, urls));
    const stage = (now: number): Phase => (early.reason ? 'finishing' : now < publishStart ? 'ramp' : now < publishEnd ? 'publishing' : 'drain');
    const snapTimer = setInterval(() => {
      workers.send({ type: 'log', ...pub.takeNewLog() });
      hooks.onSnapshot?.(withServerLoad(live.snapshot(stage(Date.now()), Date.now() - t0, totalMs, pub.sent, pub.takeSent()), serverLoad.latest()));
    }, 1000);
    const stormTimers = scheduleStorms(config.storms, t0, workers, note);
    const lateBy = await rampSettled(early, workers, publishStart, config.shard !== undefined);
    const lateMs = lateStart(config, t0, workers.readyAt, note);
    if (lateBy > 0) {
      publishStart += lateBy;
      publishEnd += lateBy;
      totalMs += lateBy;
      if (lateBy >= 100) note(`publishing starts ${lateBy} ms after the ramp: waited for the last connection attempts`);
    }
    const spans = await publish(config, pub, early, publishStart, publishEnd, () =>
      phaseContext({ config, pub, workers, workerCount, note, early, storms, t0, live, processes }),
    );
    if (spans.length > 0) {
      publishEnd = Date.now();
      totalMs = publishEnd - t0 + config.drainMs;
    }
    pub.stop();
    const publishedUntil = Date.now();
    await early.sleepUntil(early.reason ? Date.now() + 1000 : publishEnd + config.drainMs);
    clearInterval(snapTimer);
    for (const t of stormTimers) clearTimeout(t);
    await pub.close(2000);

    const results = await workers.finish(pub.sendTimesJson(), pub.refusedJson(), WORKER_RESULT_WAIT_MS, auditWindows(spans), !config.publishes);
    const workerProblems = missingWorkers(early, workerCount, conns, results, workers.fatal);
    const publishingMs = Math.max(0, Math.min(publishedUntil, publishEnd) - publishStart);
    const agg = aggregate(results, pub.sent, publishingMs, storms);
    hooks.onSnapshot?.(live.snapshot('done', Date.now() - t0, totalMs, pub.sent, pub.takeSent()));
    return {
      ...agg,
      config: withSessions(config, results, note),
      urls,
      embedded: embedded !== undefined,
      startedAt: startedAt.toISOString(),
      endedAt: new Date().toISOString(),
      timeline: live.timeline,
      publisher: { sent: pub.sent, accepted: pub.accepted, failures: pub.failures, ack: pub.ack.summary() },
      selfCheck: selfCheckOf(results, await serverLoad.stop()),
      thresholds: evaluateThresholds(config.thresholds, agg.summary, pub, config.publishes ? undefined : PENDING_EVENTS),
      problems: [...workerProblems, ...runProblems(agg.summary, pub)],
      stoppedEarly: early.reason,
      phases: hasPhases ? phaseReports(spans, results, t0) : undefined,
      shard: shardInfo(config, { t0, lateMs, publishingMs, pub, results }),
    };
  } finally {
    await publisher?.close(0).catch(() => {});
    fleet?.kill();
    await embedded?.stop();
    await Promise.all([processes.server?.stop(), processes.broker?.stop()]);
  }
}
