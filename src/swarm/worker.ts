/**
 * One swarm worker: holds its share of the connections, opens them on the ramp schedule, reconnects them by the
 * chosen policy, aborts them in storms, and audits every probe it receives. It is the transports' sink; per
 * message it parses, looks up and records numbers, nothing else. Totals leave once a second as a tick.
 * Where each connection subscribes: worker-targets.ts; the figures per transport and the live audit's log:
 * worker-stats.ts; the figures per scenario phase: worker-phases.ts.
 */
import { performance } from 'node:perf_hooks';
import { createTransport, probeOf, type ReceivedNotification, type Transport, type TransportSink } from '../transports/index.js';
import { createHistogram, type DurationHistogram } from '../metrics/histogram.js';
import { AuditTally, publishLogFromTimes, Receipt, SubscriberAudit, windowCounts, type Window, type WindowCounts } from './audit.js';
import { WorkerFaults, type FaultHost } from './worker-faults.js';
import { WorkerPhases } from './worker-phases.js';
import { ConnectionTargets } from './worker-targets.js';
import { LiveLog, SelfCheck, TransportStats, transportParts } from './worker-stats.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../transports/transport.js';
import { H2Sessions } from '../transports/h2-sessions.js';
import { BROADCAST, userStream } from '../protocol/streams.js';
import { genericSpec } from '../targets/subscribe.js';
import { TRANSPORT_NAMES } from '../protocol/transports.js';
import type { WorkerPlan, WorkerRamped, WorkerResult, WorkerTick } from './messages.js';

/** `performance.timeOrigin` read once: the getter is a native call (~20 ns), once per received message here. */
const TIME_ORIGIN = performance.timeOrigin;

const enum State {
  Idle = 0,
  Connecting = 1,
  Open = 2,
  Waiting = 3,
  Stopped = 4,
}

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
  private readonly audits: (SubscriberAudit | undefined)[];
  /** Made at `start` (a profile that cannot render fails the start). */
  private where!: ConnectionTargets;
  private readonly liveLog = new LiveLog();
  private readonly kind: Uint8Array;
  private readonly transports: (Transport | undefined)[] = TRANSPORT_NAMES.map(() => undefined);
  private readonly stats = TRANSPORT_NAMES.map(() => new TransportStats());
  private stopping = false;
  private readonly phases: WorkerPhases;
  private readonly faults: WorkerFaults;
  // Per tick
  /** The tick's latency over all transports, summed from theirs at each tick. */
  private readonly tickLatency: DurationHistogram = createHistogram();
  private received = 0;
  private misrouted = 0;
  private tickErrors: Record<string, number> = {};
  private readonly selfCheck = new SelfCheck((prev) => process.cpuUsage(prev));
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
    this.audits = new Array<SubscriberAudit | undefined>(n);
    this.kind = Uint8Array.from(plan.transports);
    this.phases = new WorkerPhases(n);
    this.h2 = plan.http2 && new H2Sessions({ ...plan.http2, insecureTls: plan.insecureTls ?? false, connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS });
    this.faults = new WorkerFaults(n, this.faultHost(), this.phases);
    // The shard's connections (all of them without one), dealt round-robin over its workers.
    const step = plan.shard?.count ?? 1;
    for (let i = (plan.shard?.index ?? 1) - 1, k = 0; i < n; i += step, k++) if (k % plan.workers === plan.index) this.mine.push(i);
  }

  /** What storms, churn and slow readers (worker-faults.ts) act through. */
  private faultHost(): FaultHost {
    return {
      openNow: () => this.mine.filter((i) => this.state[i] === State.Open),
      isOpen: (i) => this.state[i] === State.Open,
      transportOf: (i) => this.transports[this.kind[i]!]!,
      running: () => !this.stopping,
      later: (fn, ms) => void this.timers.push(setTimeout(fn, ms)),
      countError: (i, cause) => this.countError(i, cause),
    };
  }

  async start(): Promise<void> {
    const p = this.plan;
    this.where = new ConnectionTargets(p, this.kind);
    const streams = p.target.streams;
    for (const i of this.mine) {
      const user = this.where.userOf(i);
      const k = this.kind[i]!;
      const name = TRANSPORT_NAMES[k]!;
      this.where.place(i);
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
    this.selfCheck.enable();
    this.timers.push(setInterval(() => this.tick(), 1000));
    if (this.mine.length === 0) this.send({ type: 'ramped', index: p.index });
    this.rampStep(0);
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
    t.open(i, this.where.of(i), t.cursor(i));
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
    this.faults.opened(i, at - this.lostAt[i]!);
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
    const churned = this.faults.churned(i, cause);
    this.phases.closed(i, cause, cause === 'aborted' || churned);
    this.state[i] = State.Waiting;
    if (churned) {
      setImmediate(() => this.open(i));
      return;
    }
    if (cause !== 'aborted') {
      this.countError(i, cause);
      this.where.failOver(i);
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
    this.faults.failed(i, code);
    if (this.failures[i]! < 0xffff) this.failures[i]!++;
    if (code !== 'aborted' && code !== 'client-closed') this.where.failOver(i);
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

  /** More of the publisher's send log, for the live audit. */
  log(times: Record<string, number[]>, refused: Record<string, number[]>): void {
    this.liveLog.append(times, refused);
  }

  /** A scenario phase begins (see WorkerPhases). */
  phase(index: number): void {
    this.phases.begin(index);
  }

  storm(index: number, share: number, overMs = 0): void {
    this.faults.storm(index, share, overMs);
  }

  churn(rate: number, durationMs: number): void {
    this.faults.churn(rate, durationMs);
  }

  slow(share: number, durationMs: number): void {
    this.faults.slow(share, durationMs);
  }

  private tick(): void {
    const { eldP99Ms, eldMaxMs, cpu } = this.selfCheck.sample();
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
      audit: this.liveLog.audit(this.mine.map((i) => this.audits[i]!)),
      errors: this.tickErrors,
      stormsAborted: this.faults.storms.map((s) => s.aborted),
      stormsBack: this.faults.storms.map((s) => s.backMs.length),
      eldP99Ms,
      eldMaxMs,
      cpu,
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
    this.selfCheck.disable();
    return {
      type: 'result',
      index: this.plan.index,
      transports: transportParts(this.stats, tallies),
      storms: this.faults.storms.map(({ aborted, backMs, failures }) => ({ aborted, backMs, failures })),
      phases: this.phases.parts(perPhase),
      ...(entries ? { ledger: entries } : {}),
      ...(this.h2 ? { http2Sessions: this.h2.opened } : {}),
      selfCheck: this.selfCheck.summary(process.memoryUsage().rss),
    };
  }
}
