/**
 * One swarm run, end to end: check the machine can hold it, start the embedded server if no --url, fork workers,
 * ramp, publish on schedule, fire storms, drain, collect every worker's audit and histograms, and build the result.
 */
import { nowEpochMs } from '../protocol/probe.js';
import { evaluateThresholds, type ThresholdResult } from '../metrics/thresholds.js';
import { selfCheckOf, type SelfCheck } from '../capacity/self-check.js';
import { aggregate, type Aggregate } from './aggregate.js';
import { assignTransports, shardConns, type SwarmConfig } from './config.js';
import type { EmbeddedServer } from './embedded.js';
import { WorkerFleet } from './fleet.js';
import type { Phase, SwarmSnapshot } from '../metrics/snapshot.js';
import type { RunOutcome } from '../result/build.js';
import { runProblems } from '../result/problems.js';
import type { PhaseReport, RunProblem, ShardInfo, TimelinePoint } from '../result/schema.js';
import { encodeLedger, encodeLog } from '../result/shards.js';
import { LiveView } from './live.js';
import type { WorkerPlan, WorkerResult } from './messages.js';
import { Publisher } from './publisher.js';
import { subscribePlan } from '../targets/subscribe.js';
import { phaseReports, type PhaseSpan } from './phase-report.js';
import { plannedMs, runPhase, type PhaseContext } from './phases/index.js';
import { prepare, type Processes } from './run-prepare.js';
import { EarlyStop, lateStart, rampSettled, scheduleStorms, startAhead } from './run-schedule.js';
import { lostWorkers } from './verdict.js';

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
  selfCheck: SelfCheck;
  thresholds: ThresholdResult[];
  /** Why the run is a runtime failure (exit 1): nothing opened, nothing accepted, a worker lost. Empty when it is not. */
  problems: RunProblem[];
  stoppedEarly?: string;
  /** A scenario's phases, each with its own figures. */
  phases?: PhaseReport[];
  /** `--shard`: which one, how late it began, and the log or the ledger the merge settles the audit with. */
  shard?: ShardInfo;
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
    jwtSecret: config.jwtSecret,
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
      hooks.onSnapshot?.(live.snapshot(stage(Date.now()), Date.now() - t0, totalMs, pub.sent, pub.takeSent(), serverLoad.live()));
    }, 1000);
    const stormTimers = scheduleStorms(config.storms, t0, workers, note);
    const lateBy = await rampSettled(early, workers, publishStart, config.shard !== undefined, note);
    const lateMs = lateStart(config, t0, workers.readyAt, note);
    if (lateBy > 0) {
      publishStart += lateBy;
      publishEnd += lateBy;
      totalMs += lateBy;
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
    const publishingMs = Math.max(0, Math.min(publishedUntil, publishEnd) - publishStart);
    const agg = aggregate(results, pub.sent, publishingMs, storms);
    // The servers' last scrape first: the final frame shows it.
    const workerChecks = results.map((r) => r.selfCheck);
    const selfCheck = selfCheckOf(workerChecks, await serverLoad.stop());
    hooks.onSnapshot?.(live.snapshot('done', Date.now() - t0, totalMs, pub.sent, pub.takeSent(), serverLoad.live()));
    return {
      ...agg,
      config: withSessions(config, results, note),
      urls,
      embedded: embedded !== undefined,
      startedAt: startedAt.toISOString(),
      endedAt: new Date().toISOString(),
      timeline: live.timeline,
      publisher: { sent: pub.sent, accepted: pub.accepted, failures: pub.failures, ack: pub.ack.summary() },
      selfCheck,
      thresholds: evaluateThresholds(config.thresholds, agg.summary, pub, config.publishes ? undefined : PENDING_EVENTS),
      problems: [...missingWorkers(early, workerCount, conns, results, workers.fatal), ...runProblems(agg.summary, pub)],
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
