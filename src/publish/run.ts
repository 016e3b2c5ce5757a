/**
 * What `notify publish` does once configured: one publish, or `--count N [--rate R/s]` on a fixed schedule with a
 * progress line every second and a summary (sent, accepted, failed by cause, achieved rate, 202 latency). Human output
 * goes to stderr; `--json` puts the result on stdout.
 */
import { performance } from 'node:perf_hooks';
import { ExitCode, NotifyError } from '../errors.js';
import type { Io } from '../io.js';
import { formatCauses, formatMs, formatMsLive } from '../metrics/format.js';
import { createHistogram, type DurationHistogram, type DurationSummary } from '../metrics/histogram.js';
import { acceptedOrThrow, describeFailure, PublishError, type PublishClient, type PublishFailure, type PublishOutcome } from './http-client.js';
import type { PublishNotification, PublishTarget } from '../protocol/notification.js';
import type { PublishConfig } from './config.js';

function notificationAt(config: PublishConfig, n: number): PublishNotification {
  return { ...config.notification, title: config.notification.title ?? `notification ${n}` };
}

function describeTarget(t: PublishTarget): string {
  if ('broadcast' in t) return 'broadcast';
  if ('user' in t) return `user ${t.user}`;
  return `${t.users.length} users (${t.users.join(', ')})`;
}

export async function publishOnce(client: PublishClient, config: PublishConfig, io: Io): Promise<number> {
  const outcome = await client.publish({ ...config.target, notification: notificationAt(config, 1) });
  const { ids, delivered } = acceptedOrThrow(outcome, client.url);
  if (config.json) {
    io.stdout.write(JSON.stringify({ url: client.url, ids, delivered }) + '\n');
  } else {
    const conns = `${delivered} live connection${delivered === 1 ? '' : 's'}`;
    io.stderr.write(`published to ${describeTarget(config.target)}: id${ids.length === 1 ? '' : 's'} ${ids.join(', ')}; delivered to ${conns}\n`);
  }
  return ExitCode.ok;
}

/** What a `--count`/`--rate` run did; `--json` prints it. */
export interface PublishSummary {
  url: string;
  target: PublishTarget;
  /** null when the run had no --count (until Ctrl-C). */
  count: number | null;
  /** Target rate per second; null = as fast as --max-in-flight allowed. */
  rate: number | null;
  interrupted: boolean;
  sent: number;
  accepted: number;
  failed: number;
  /** Failed publishes by cause: `http-400`, `ECONNREFUSED`, `timeout`, ... */
  failures: Record<string, number>;
  /** Sum of the servers' `delivered`: live connections the accepted events were written to. */
  delivered: number;
  durationMs: number;
  /** Sends per second actually achieved, first send to last send. */
  achievedRate: number;
  /** Time to the 202, from the intended send time (a schedule that falls behind shows up here), ms. */
  latency: DurationSummary;
}

interface RunState {
  sent: number;
  accepted: number;
  failed: number;
  failures: Record<string, number>;
  delivered: number;
  inFlight: number;
  latency: DurationHistogram;
  firstSendAt: number;
  lastSendAt: number;
  /** The first failure when nothing had been accepted yet: the run stops and reports it. */
  fatal?: PublishFailure;
  firstFailure?: PublishFailure;
}

/** Counts one answer into the run; true when it is the first failure with nothing accepted yet (the run stops). */
function record(s: RunState, outcome: PublishOutcome, intendedAt: number): boolean {
  s.inFlight--;
  if (outcome.ok) {
    s.accepted++;
    s.delivered += outcome.delivered;
    s.latency.recordMs(performance.now() - intendedAt);
    return false;
  }
  s.failed++;
  s.failures[outcome.cause] = (s.failures[outcome.cause] ?? 0) + 1;
  s.firstFailure ??= outcome;
  if (s.accepted > 0 || s.fatal) return false;
  s.fatal = outcome;
  return true;
}

/**
 * Sends `config.count` publishes at intended times t0 + i/rate without waiting for answers, at most
 * `maxInFlight` at once; stops early on Ctrl-C (a second Ctrl-C aborts what is in flight) or when the very first
 * answer is a failure (wrong URL, key or payload would fail every request the same way).
 */
export async function publishSchedule(client: PublishClient, config: PublishConfig, io: Io): Promise<number> {
  const s: RunState = { sent: 0, accepted: 0, failed: 0, failures: {}, delivered: 0, inFlight: 0, latency: createHistogram(), firstSendAt: 0, lastSendAt: 0 };
  const { count, rate, maxInFlight } = config;
  const intervalMs = rate === undefined ? 0 : 1000 / rate;
  // With a fixed title every request is the same: serialise it once.
  const fixedBody = config.notification.title === undefined ? undefined : JSON.stringify({ ...config.target, notification: notificationAt(config, 1) });
  const status = statusLine(io);
  let interrupted = false;
  let stopping = false;
  let next = 0;
  let timer: NodeJS.Timeout | undefined;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const t0 = performance.now();

  const stop = () => {
    stopping = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (s.inFlight === 0) finish();
  };
  const offSignal = io.onSignal(() => {
    if (interrupted) void client.destroy(); // second Ctrl-C: abort in-flight requests
    interrupted = true;
    stop();
  });

  const send = (index: number, intendedAt: number) => {
    s.inFlight++;
    s.sent++;
    s.lastSendAt = performance.now();
    if (index === 0) s.firstSendAt = s.lastSendAt;
    const p = fixedBody !== undefined ? client.publishRaw(fixedBody) : client.publish({ ...config.target, notification: notificationAt(config, index + 1) });
    void p.then((outcome) => {
      if (record(s, outcome, intendedAt)) stop();
      if (stopping || next >= count) {
        if (s.inFlight === 0) finish();
      } else if (timer === undefined) {
        pump(); // a slot freed up while the schedule was waiting for one
      }
    });
  };

  const pump = () => {
    timer = undefined;
    if (stopping) return;
    const now = performance.now();
    while (next < count && s.inFlight < maxInFlight) {
      const due = rate === undefined ? now : t0 + next * intervalMs;
      if (due > now) break;
      send(next, due);
      next++;
    }
    if (next >= count) {
      if (s.inFlight === 0) finish();
      return;
    }
    if (s.inFlight >= maxInFlight) return; // the next answer calls pump
    timer = setTimeout(pump, Math.max(0, t0 + next * intervalMs - performance.now()));
  };

  let lastSent = 0;
  const progress = setInterval(() => {
    const elapsed = (performance.now() - t0) / 1000;
    status.update(progressLine(s, count, elapsed, s.sent - lastSent));
    lastSent = s.sent;
  }, 1000);

  pump();
  await finished;
  clearInterval(progress);
  offSignal();
  status.done();

  if (s.fatal && s.accepted === 0) throw new PublishError(s.fatal, client.url);
  const summary = summarise(s, config, client.url, performance.now() - t0, interrupted);
  if (config.json) io.stdout.write(JSON.stringify(summary) + '\n');
  else io.stderr.write(renderSummary(summary));
  if (s.firstFailure) {
    throw new NotifyError('E_PUBLISH_FAILED', `${summary.failed} of ${summary.sent} publishes failed (${formatCauses(summary.failures, Infinity)})`, {
      hint: `first failure: ${describeFailure(s.firstFailure, client.url).message}`,
    });
  }
  return ExitCode.ok;
}

function summarise(s: RunState, config: PublishConfig, url: string, durationMs: number, interrupted: boolean): PublishSummary {
  const span = (s.lastSendAt - s.firstSendAt) / 1000;
  return {
    url,
    target: config.target,
    count: Number.isFinite(config.count) ? config.count : null,
    rate: config.rate ?? null,
    interrupted,
    sent: s.sent,
    accepted: s.accepted,
    failed: s.failed,
    failures: s.failures,
    delivered: s.delivered,
    durationMs: Math.round(durationMs * 1000) / 1000,
    achievedRate: s.sent > 1 && span > 0 ? round1((s.sent - 1) / span) : s.sent,
    latency: s.latency.summary(),
  };
}

const round1 = (n: number) => Math.round(n * 10) / 10;

function progressLine(s: RunState, count: number, elapsedS: number, lastSecond: number): string {
  const total = Number.isFinite(count) ? `/${count}` : '';
  const lat = s.latency.count ? `  p50 ${formatMsLive(s.latency.summary().p50)}  p99 ${formatMsLive(s.latency.summary().p99)}` : '';
  const failed = s.failed ? `  failed ${s.failed} (${formatCauses(s.failures, Infinity)})` : '  failed 0';
  return `${elapsedS.toFixed(0).padStart(4)}s  sent ${s.sent}${total}  accepted ${s.accepted}${failed}  in flight ${s.inFlight}  ${lastSecond}/s${lat}`;
}

export function renderSummary(r: PublishSummary): string {
  const target = r.rate === null ? 'as fast as possible' : `target ${round1(r.rate)}/s`;
  const lines = [
    `${r.interrupted ? 'interrupted: ' : ''}published ${r.sent} to ${describeTarget(r.target)} in ${(r.durationMs / 1000).toFixed(2)}s (${target}, achieved ${r.achievedRate}/s)`,
    `  sent ${r.sent}  accepted ${r.accepted}  failed ${r.failed}  delivered to ${r.delivered} live connections in total`,
  ];
  if (r.latency.count) {
    lines.push(`  202 latency from intended send time: p50 ${formatMs(r.latency.p50)}  p99 ${formatMs(r.latency.p99)}  max ${formatMs(r.latency.max)}`);
  }
  if (r.failed) lines.push(`  failed by cause: ${formatCauses(r.failures, Infinity)}`);
  return lines.join('\n') + '\n';
}

/** One progress line per second: rewritten in place on a terminal, appended otherwise. */
function statusLine(io: Io): { update(line: string): void; done(): void } {
  let shown = false;
  return {
    update(line) {
      io.stderr.write(io.interactive ? `\r\x1b[2K${line}` : `${line}\n`);
      shown = true;
    },
    done() {
      if (shown && io.interactive) io.stderr.write('\n');
    },
  };
}
