/**
 * One swarm worker: holds its share of the connections, opens them on the ramp schedule, reconnects them by the
 * chosen policy, aborts them in storms, and audits every probe it receives. It is the transports' sink; per
 * message it parses, looks up and records numbers, nothing else. Totals leave once a second as a tick.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { SignJWT } from 'jose';
import { createTransport, probeOf, type ReceivedNotification, type SubscribeTarget, type Transport, type TransportSink } from '../transports/index.js';
import { createHistogram, type DurationHistogram } from '../metrics/histogram.js';
import type { LiveAudit } from '../metrics/snapshot.js';
import { AuditTally, liveCounts, publishLogFromTimes, Receipt, SubscriberAudit, windowCounts, type Window, type WindowCounts } from './audit.js';
import { nowEpochMs } from '../protocol/probe.js';
import { WorkerPhases } from './worker-phases.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, isPausable } from '../transports/transport.js';
import { H2Sessions } from '../transports/h2-sessions.js';
import { BROADCAST, userStream } from '../protocol/streams.js';
import { genericSpec, subscribeRenderer } from '../targets/subscribe.js';
import { TRANSPORT_NAMES } from '../protocol/transports.js';
import { LIVE_AUDIT_GRACE_MS, type StormPart, type TransportPart, type WorkerPlan, type WorkerRamped, type WorkerResult, type WorkerTick } from './messages.js';

/** `performance.timeOrigin` read once: the getter is a native call (~20 ns), once per received message here. */
const TIME_ORIGIN = performance.timeOrigin;

const enum State {
  Idle = 0,
  Connecting = 1,
  Open = 2,
  Waiting = 3,
  Stopped = 4,
}

class TransportStats {
  /** Latency of the whole run; `tickLatency` is added into it once a tick, so a receipt is recorded only once. */
  readonly latency = createHistogram();
  /** Latency since the last tick. */
  readonly tickLatency = createHistogram();
  readonly connect = createHistogram();
  readonly reconnect = createHistogram();
  target = 0;
  open = 0;
  peakOpen = 0;
  failed = 0;
  reconnects = 0;
  readonly errors: Record<string, number> = {};
}

/** How long after a slow phase a cut still counts as its doing: the client reads the close only after the backlog. */
const SLOW_GRACE_MS = 5000;

const bump = (into: Record<string, number>, key: string) => void (into[key] = (into[key] ?? 0) + 1);

export class SwarmWorker implements TransportSink {
  private readonly mine: number[] = [];
  private readonly state: Uint8Array;
  private readonly attemptAt: Float64Array;
  private readonly lostAt: Float64Array;
  private readonly everOpened: Uint8Array;
  /** 1 once the connection's first attempt has ended (opened or failed). */
  private readonly firstSettled: Uint8Array;
  private settledCount = 0;
  private readonly failures: Uint16Array;
  private readonly stormOf: Int16Array;
  private readonly audits: (SubscriberAudit | undefined)[];
  private readonly targets: (SubscribeTarget | undefined)[];
  /** Index into `plan.urls` of the server each connection subscribes to now (see `failOver`). */
  private readonly urlOf: Uint16Array;
  /** Per transport, the profile's subscribe block compiled for rendering a connection's target. */
  private render: (ReturnType<typeof subscribeRenderer> | undefined)[] = [];
  /** Tokens minted per user (--jwt-secret), reused when a connection's target is rendered again. */
  private readonly tokens = new Map<string, string>();
  private readonly kind: Uint8Array;
  private readonly transports: (Transport | undefined)[] = TRANSPORT_NAMES.map(() => undefined);
  private readonly stats = TRANSPORT_NAMES.map(() => new TransportStats());
  private readonly storms: StormPart[] = [];
  private stopping = false;
  private readonly phases: WorkerPhases;
  /** The publisher's send log as the main process hands it on each second, for the live audit. */
  private readonly liveTimes = new Map<string, number[]>();
  private readonly liveRefused = new Map<string, number[]>();
  /** Connections the swarm itself is closing and re-opening at once (churn): their close is no error. */
  private readonly churning: Uint8Array;
  // Per tick
  /** The tick's latency over all transports, summed from theirs at each tick. */
  private readonly tickLatency: DurationHistogram = createHistogram();
  private received = 0;
  private misrouted = 0;
  private tickErrors: Record<string, number> = {};
  private readonly eld = monitorEventLoopDelay({ resolution: 10 });
  private cpuPrev = process.cpuUsage();
  private tickPrev = performance.now();
  private readonly selfCheck = { eldP99Ms: 0, eldMaxMs: 0, cpuSum: 0, cpuMax: 0, ticks: 0 };
  private timers: NodeJS.Timeout[] = [];
  /** `--http2`: the sessions this worker's SSE and long-poll subscribers share. */
  private readonly h2: H2Sessions | undefined;

  constructor(
    private readonly plan: WorkerPlan,
    private readonly send: (msg: WorkerTick | WorkerRamped) => void,
  ) {
    const n = plan.conns;
    this.state = new Uint8Array(n);
    this.attemptAt = new Float64Array(n);
    this.lostAt = new Float64Array(n).fill(NaN);
    this.everOpened = new Uint8Array(n);
    this.firstSettled = new Uint8Array(n);
    this.failures = new Uint16Array(n);
    this.stormOf = new Int16Array(n).fill(-1);
    this.audits = new Array<SubscriberAudit | undefined>(n);
    this.targets = new Array<SubscribeTarget | undefined>(n);
    this.urlOf = new Uint16Array(n);
    this.kind = Uint8Array.from(plan.transports);
    this.phases = new WorkerPhases(n);
    this.h2 = plan.http2 && new H2Sessions({ ...plan.http2, insecureTls: plan.insecureTls ?? false, connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS });
    this.churning = new Uint8Array(n);
    // The shard's connections (all of them without one), dealt round-robin over its workers.
    const step = plan.shard?.count ?? 1;
    for (let i = (plan.shard?.index ?? 1) - 1, k = 0; i < n; i += step, k++) if (k % plan.workers === plan.index) this.mine.push(i);
  }

  async start(): Promise<void> {
    const p = this.plan;
    this.render = TRANSPORT_NAMES.map((name) => (p.target.subscribe[name] ? subscribeRenderer(p.target, name) : undefined));
    const streams = p.target.streams;
    for (const i of this.mine) {
      const user = this.userOf(i);
      if (p.jwtSecret && !this.tokens.has(user)) this.tokens.set(user, await mintToken(p.jwtSecret, user));
      const k = this.kind[i]!;
      const name = TRANSPORT_NAMES[k]!;
      // Connections are spread over the --url list; each moves on along it when its server is lost.
      this.urlOf[i] = i % p.urls.length;
      this.targets[i] = this.targetOf(i);
      const streamsOf = streams.map((s) => (s === 'user' ? userStream(user) : BROADCAST));
      this.audits[i] = new SubscriberAudit(p.run, streamsOf, p.target.subscribe[name]?.resume !== 'none');
      this.stats[k]!.target++;
      // probeOnly: notification() reads nothing but the probe, so the transports need not parse the rest.
      this.transports[k] ??= createTransport(name, this, {
        pollTimeoutS: p.pollTimeoutS,
        probeOnly: true,
        generic: genericSpec(p.target, name),
        h2: this.h2,
        insecureTls: p.insecureTls,
      });
    }
    this.eld.enable();
    this.timers.push(setInterval(() => this.tick(), 1000));
    if (this.mine.length === 0) this.send({ type: 'ramped', index: p.index });
    this.rampStep(0);
  }

  private userOf(i: number): string {
    return `${this.plan.userPrefix}${(i % this.plan.users) + 1}`;
  }

  /** Where connection i subscribes: its current --url (`urlOf`) rendered through the target profile. */
  private targetOf(i: number): SubscribeTarget {
    const p = this.plan;
    const user = this.userOf(i);
    return {
      ...this.render[this.kind[i]!]!({ base: p.urls[this.urlOf[i]!]!, user, token: this.tokens.get(user) }),
      localAddress: p.localAddresses.length ? p.localAddresses[i % p.localAddresses.length] : undefined,
    };
  }

  /**
   * Connection i lost its server (an attempt failed, or the server ended or broke the stream; not the swarm's own
   * abort or close): its next attempts, on the usual reconnect schedule, go to the next --url, round-robin, and resume
   * there by cursor (gateways that share a broker share cursors, so nothing is lost when the history has it).
   */
  private failOver(i: number): void {
    const n = this.plan.urls.length;
    if (n < 2) return;
    this.urlOf[i] = (this.urlOf[i]! + 1) % n;
    this.targets[i] = this.targetOf(i);
  }

  /** Opens every connection whose ramp time has come, then sleeps until the next one is due. */
  private rampStep(next: number): void {
    const { startAt, rampMs, conns } = this.plan;
    const now = Date.now();
    while (next < this.mine.length && !this.stopping) {
      const i = this.mine[next]!;
      const due = startAt + (rampMs * i) / conns;
      if (due > now) {
        this.timers.push(setTimeout(() => this.rampStep(next), Math.min(due - now, 1000)));
        return;
      }
      this.open(i);
      next++;
    }
  }

  private open(i: number): void {
    if (this.stopping) return;
    this.state[i] = State.Connecting;
    this.attemptAt[i] = performance.now();
    const t = this.transports[this.kind[i]!]!;
    t.open(i, this.targets[i]!, t.cursor(i));
  }

  opened(i: number, at: number): void {
    const s = this.stats[this.kind[i]!]!;
    this.state[i] = State.Open;
    if (++s.open > s.peakOpen) s.peakOpen = s.open;
    this.audits[i]!.opened(performance.timeOrigin + at);
    s.connect.record((at - this.attemptAt[i]!) * 1000);
    this.phases.opened(i, this.everOpened[i] === 1);
    if (this.everOpened[i]) {
      s.reconnect.record((at - this.lostAt[i]!) * 1000);
      s.reconnects++;
    }
    this.everOpened[i] = 1;
    this.settled(i);
    this.failures[i] = 0;
    const storm = this.stormOf[i]!;
    if (storm >= 0) {
      const st = this.storms[storm]!;
      // From this connection's own abort: a storm spread over a window aborts its connections one by one.
      st.backMs.push(at - this.lostAt[i]!);
      this.stormOf[i] = -1;
    }
  }

  init(): void {}

  notification(i: number, n: ReceivedNotification, _cursor: string | undefined, at: number): void {
    const p = probeOf(n);
    // A notification without a readable probe cannot be audited: counted, so a server (or a target profile) whose
    // messages the swarm cannot read shows why everything is lost.
    if (p === undefined) return this.countError(i, 'no-probe');
    const flags = this.audits[i]!.receive(p.run, p.stream, p.seq, p.t);
    if (flags & Receipt.New) {
      const ms = TIME_ORIGIN + at - p.t;
      this.stats[this.kind[i]!]!.tickLatency.recordMs(ms);
      this.phases.receipt(ms);
      this.received++;
    } else if (flags & Receipt.Misrouted) {
      this.misrouted++;
    }
  }

  unparsable(i: number): void {
    this.countError(i, 'unparsable');
  }

  reset(i: number, reason: string): void {
    this.countError(i, `reset-${reason}`);
  }

  closed(i: number, cause: string, retryMs?: number): void {
    const s = this.stats[this.kind[i]!]!;
    if (this.state[i] === State.Open) s.open--;
    this.audits[i]!.closed();
    this.lostAt[i] = performance.now();
    if (this.stopping) {
      this.state[i] = State.Stopped;
      return;
    }
    const churned = this.churning[i] === 1 && cause === 'client-closed';
    this.phases.closed(i, cause, cause === 'aborted' || churned);
    this.state[i] = State.Waiting;
    if (churned) {
      this.churning[i] = 0;
      setImmediate(() => this.open(i));
      return;
    }
    if (cause !== 'aborted') {
      this.countError(i, cause);
      this.failOver(i);
    }
    this.scheduleReconnect(i, retryMs);
  }

  error(i: number, code: string, retryMs?: number): void {
    if (this.stopping) {
      this.state[i] = State.Stopped;
      return;
    }
    this.stats[this.kind[i]!]!.failed++;
    this.settled(i);
    this.countError(i, code);
    const storm = this.stormOf[i]!;
    if (storm >= 0) bump(this.storms[storm]!.failures, code);
    if (this.failures[i]! < 0xffff) this.failures[i]!++;
    if (code !== 'aborted' && code !== 'client-closed') this.failOver(i);
    this.state[i] = State.Waiting;
    this.scheduleReconnect(i, retryMs);
  }

  /** Notes the end of a connection's first attempt; when the last one of this worker ends, tells the main process. */
  private settled(i: number): void {
    if (this.firstSettled[i]) return;
    this.firstSettled[i] = 1;
    if (++this.settledCount === this.mine.length) this.send({ type: 'ramped', index: this.plan.index });
  }

  private countError(i: number, cause: string): void {
    bump(this.stats[this.kind[i]!]!.errors, cause);
    bump(this.tickErrors, cause);
  }

  /** Delay before the next attempt: `immediate` (a growing pause only after failed attempts), `backoff` (full jitter), `retry` (the server's advice). */
  private scheduleReconnect(i: number, retryMs?: number): void {
    const p = this.plan;
    const failures = this.failures[i]!;
    const exp = (n: number) => Math.min(p.backoffCapMs, p.backoffBaseMs * 2 ** Math.min(n, 30));
    let delay: number;
    if (p.reconnect === 'immediate') delay = failures === 0 ? 0 : Math.random() * exp(failures - 1);
    else if (p.reconnect === 'backoff') delay = Math.random() * exp(failures);
    else delay = retryMs ?? 3000;
    if (delay <= 0) setImmediate(() => this.open(i));
    else setTimeout(() => this.open(i), delay);
  }

  /** `share` of the open connections, picked at random. */
  private pickOpen(share: number): number[] {
    const open = this.mine.filter((i) => this.state[i] === State.Open);
    const n = Math.round(open.length * share);
    for (let k = 0; k < n; k++) {
      const j = k + Math.floor(Math.random() * (open.length - k));
      [open[k], open[j]] = [open[j]!, open[k]!];
    }
    return open.slice(0, n);
  }

  /** Aborts `share` of the open connections, at once or spread evenly over `overMs`. */
  storm(index: number, share: number, overMs = 0): void {
    const picked = this.pickOpen(share);
    const st: StormPart = { aborted: picked.length, backMs: [], failures: {} };
    this.storms[index] = st;
    const abort = (i: number) => {
      if (this.stopping || this.state[i] !== State.Open) return;
      this.stormOf[i] = index;
      this.transports[this.kind[i]!]!.abort(i);
    };
    picked.forEach((i, k) => {
      if (overMs <= 0) abort(i);
      else this.timers.push(setTimeout(() => abort(i), (overMs * k) / picked.length));
    });
  }

  /** More of the publisher's send log (see `liveAudit`). */
  log(times: Record<string, number[]>, refused: Record<string, number[]>): void {
    for (const [into, from] of [
      [this.liveTimes, times],
      [this.liveRefused, refused],
    ] as const) {
      for (const [stream, list] of Object.entries(from)) {
        const have = into.get(stream);
        if (have === undefined) into.set(stream, [...list]);
        else for (const v of list) have.push(v);
      }
    }
  }

  /** The audit so far against the probes sent at least LIVE_AUDIT_GRACE_MS ago (see `liveCounts`). */
  private liveAudit(): LiveAudit {
    if (this.liveTimes.size === 0) return { expected: 0, lost: 0, duplicated: 0, outOfOrder: 0, recovered: 0 };
    const log = publishLogFromTimes(this.liveTimes, this.liveRefused);
    return liveCounts(
      this.mine.map((i) => this.audits[i]!),
      log,
      nowEpochMs() - LIVE_AUDIT_GRACE_MS,
    );
  }

  /** A scenario phase begins (see WorkerPhases). */
  phase(index: number): void {
    this.phases.begin(index);
  }

  /** Closes one random open connection every 1/rate s for `durationMs`; each re-opens at once and resumes. */
  churn(rate: number, durationMs: number): void {
    if (rate <= 0) return;
    const end = performance.now() + durationMs;
    const step = () => {
      if (this.stopping || performance.now() >= end) return;
      const open = this.mine.filter((c) => this.state[c] === State.Open);
      const pick = open[Math.floor(Math.random() * open.length)];
      if (pick !== undefined) {
        this.churning[pick] = 1;
        this.transports[this.kind[pick]!]!.close(pick);
      }
      this.timers.push(setTimeout(step, 1000 / rate));
    };
    step();
  }

  /** Stops reading `share` of the open connections for `durationMs` (transports that can pause), then reads again. */
  slow(share: number, durationMs: number): void {
    const phase = this.phases.current;
    const paused: number[] = [];
    for (const i of this.pickOpen(share)) {
      const t = this.transports[this.kind[i]!]!;
      if (isPausable(t) && t.pause(i)) {
        paused.push(i);
        this.phases.paused(i);
      } else this.countError(i, 'cannot-pause');
    }
    this.timers.push(
      setTimeout(() => {
        for (const i of paused) {
          const t = this.transports[this.kind[i]!]!;
          if (isPausable(t)) t.resume(i);
        }
      }, durationMs),
      // A cut shows only once the connection reads again (the close is behind what the server had written).
      setTimeout(() => this.phases.settleSlow(phase), durationMs + SLOW_GRACE_MS),
    );
  }

  private tick(): void {
    const now = performance.now();
    const cpu = process.cpuUsage(this.cpuPrev);
    this.cpuPrev = process.cpuUsage();
    const cpuShare = (cpu.user + cpu.system) / 1000 / Math.max(1, now - this.tickPrev);
    this.tickPrev = now;
    const eldP99Ms = this.eld.percentile(99) / 1e6;
    const eldMaxMs = this.eld.max / 1e6;
    this.eld.reset();
    const sc = this.selfCheck;
    sc.eldP99Ms = Math.max(sc.eldP99Ms, eldP99Ms);
    sc.eldMaxMs = Math.max(sc.eldMaxMs, eldMaxMs);
    sc.cpuSum += cpuShare;
    sc.cpuMax = Math.max(sc.cpuMax, cpuShare);
    sc.ticks++;
    const tickLatency = this.tickLatency;
    for (const s of this.stats) {
      if (s.tickLatency.count === 0) continue;
      s.latency.add(s.tickLatency);
      tickLatency.add(s.tickLatency);
      s.tickLatency.reset();
    }
    let open = 0;
    let connecting = 0;
    let waiting = 0;
    for (const i of this.mine) {
      const st = this.state[i];
      if (st === State.Open) open++;
      else if (st === State.Connecting) connecting++;
      else if (st === State.Waiting) waiting++;
    }
    this.send({
      type: 'tick',
      index: this.plan.index,
      open,
      connecting,
      reconnecting: waiting,
      failed: this.stats.reduce((a, s) => a + s.failed, 0),
      reconnects: this.stats.reduce((a, s) => a + s.reconnects, 0),
      received: this.received,
      misrouted: this.misrouted,
      latency: this.tickLatency.encode(),
      audit: this.liveAudit(),
      errors: this.tickErrors,
      stormsAborted: this.storms.map((s) => s.aborted),
      stormsBack: this.storms.map((s) => s.backMs.length),
      eldP99Ms,
      eldMaxMs,
      cpu: cpuShare,
    });
    this.received = 0;
    this.misrouted = 0;
    this.tickLatency.reset();
    this.tickErrors = {};
  }

  /**
   * Stops, audits every subscriber against the publisher's send log, and closes everything. `ledger`: there is no log
   * here (a shard that does not publish): the result carries every subscriber's ledger for the merge to settle.
   */
  async finish(
    sendTimes: Record<string, number[]>,
    refused: Record<string, number[]> = {},
    windows: readonly Window[] = [],
    ledger = false,
  ): Promise<WorkerResult> {
    // An attempt still waiting for its answer at the end never reached an open stream: a failure, by its own cause
    // (a long-poll that is never answered would otherwise end the run with 0 failed and no error).
    for (const i of this.mine) {
      if (this.state[i] !== State.Connecting) continue;
      this.stats[this.kind[i]!]!.failed++;
      this.countError(i, 'no-answer');
    }
    this.stopping = true;
    for (const t of this.timers) clearTimeout(t);
    this.tick();
    const log = publishLogFromTimes(new Map(Object.entries(sendTimes)), new Map(Object.entries(refused)));
    const tallies = TRANSPORT_NAMES.map(() => new AuditTally());
    const perPhase: WindowCounts[] = [];
    const entries: WorkerResult['ledger'] = ledger ? [] : undefined;
    for (const i of this.mine) {
      tallies[this.kind[i]!]!.addAll(this.audits[i]!.finish(log));
      if (windows.length > 0) windowCounts(this.audits[i]!, log, windows, perPhase);
      if (entries) for (const e of this.audits[i]!.ledger()) entries.push({ ...e, transport: this.kind[i]! });
    }
    await Promise.all(this.transports.filter((t) => t !== undefined).map((t) => t.dispose()));
    this.h2?.dispose();
    this.eld.disable();
    const transports: WorkerResult['transports'] = {};
    this.stats.forEach((s, k) => {
      if (s.target === 0) return;
      const part: TransportPart = {
        audit: tallies[k]!.toJSON(),
        latency: s.latency.encode(),
        connect: s.connect.encode(),
        reconnect: s.reconnect.encode(),
        target: s.target,
        peakOpen: s.peakOpen,
        failed: s.failed,
        reconnects: s.reconnects,
        errors: s.errors,
      };
      transports[TRANSPORT_NAMES[k]!] = part;
    });
    const sc = this.selfCheck;
    return {
      type: 'result',
      index: this.plan.index,
      transports,
      storms: this.storms.map(({ aborted, backMs, failures }) => ({ aborted, backMs, failures })),
      phases: this.phases.parts(perPhase),
      ...(entries ? { ledger: entries } : {}),
      ...(this.h2 ? { http2Sessions: this.h2.opened } : {}),
      selfCheck: {
        eldP99Ms: sc.eldP99Ms,
        eldMaxMs: sc.eldMaxMs,
        cpuMean: sc.ticks ? sc.cpuSum / sc.ticks : 0,
        cpuMax: sc.cpuMax,
        rssBytes: process.memoryUsage().rss,
      },
    };
  }
}

async function mintToken(secret: string, user: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setIssuedAt().setExpirationTime('24h').sign(new TextEncoder().encode(secret));
}
