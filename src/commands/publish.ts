/**
 * `notify publish`: send one notification (or a batch target) to `notify serve`, or `--count N [--rate R/s]` of them
 * on a fixed schedule with a progress line every second and a summary (sent, accepted, failed by cause, achieved
 * rate, 202 latency). Human output goes to stderr; `--json` puts the result on stdout.
 */
import { performance } from 'node:perf_hooks';
import { Command } from 'commander';
import { ExitCode, NotifyError, usageError } from '../errors.js';
import type { Io } from '../io.js';
import { createHistogram, type DurationHistogram, type DurationSummary } from '../metrics/histogram.js';
import {
  acceptedOrThrow, createPublishClient, describeFailure, normaliseBaseUrl, PublishError,
  type PublishClient, type PublishFailure, type PublishNotification, type PublishTarget,
} from '../targets/publish-client.js';
import { NOTIFICATION_TYPES } from '../server/notification.js';
import { parseChoice, parseDuration, parseInteger, parseRate } from '../util/parse.js';

export const PUBLISH_DEFAULTS = {
  url: 'http://127.0.0.1:8080',
  type: 'system',
  maxInFlight: '64',
  timeout: '10s',
} as const;

/** Raw commander values (strings). */
export interface RawPublishOptions {
  url?: string;
  user?: string[];
  broadcast?: boolean;
  type?: string;
  title?: string;
  body?: string;
  data?: string;
  count?: string;
  rate?: string;
  publishKey?: string;
  json?: boolean;
  maxInFlight?: string;
  timeout?: string;
}

export interface PublishConfig {
  /** Gateway base URL, normalised (no trailing slash). */
  url: string;
  target: PublishTarget;
  /** `title` absent: each notification gets `notification N` (N from 1). */
  notification: Omit<PublishNotification, 'title'> & { title?: string };
  /** `once`: one request, print its ids. `schedule`: `count` requests at `rate`, print a summary. */
  mode: 'once' | 'schedule';
  /** Notifications to send in schedule mode; Infinity = until Ctrl-C (`--rate` without `--count`). */
  count: number;
  /** Per second; undefined = as fast as `maxInFlight` allows. */
  rate?: number;
  /** Requests awaiting their answer at most; the schedule waits (and shows it in the latency) past it. */
  maxInFlight: number;
  /** Connect and response timeout per request, ms. */
  timeoutMs: number;
  publishKey?: string;
  json: boolean;
}

export function resolvePublishOptions(raw: RawPublishOptions, env: Record<string, string | undefined> = {}): PublishConfig {
  const urlText = raw.url ?? env.NOTIFY_URL ?? PUBLISH_DEFAULTS.url;
  let url: string;
  try {
    url = normaliseBaseUrl(urlText).href;
  } catch {
    throw usageError(`--url must be an http:// or https:// URL (got "${urlText}")`);
  }

  const users = raw.user ?? [];
  if (users.length > 0 && raw.broadcast) throw usageError('--user and --broadcast exclude each other: give one of them');
  if (users.length === 0 && !raw.broadcast) {
    throw usageError('no target: give --user ID (one or more) or --broadcast', 'e.g. notify publish --user 42 --title Hello');
  }
  for (const u of users) if (u.trim() === '') throw usageError(`--user must not be empty (got "${u}")`);
  const target: PublishTarget = raw.broadcast ? { broadcast: true } : users.length === 1 ? { user: users[0]! } : { users };

  const type = parseChoice('--type', raw.type ?? PUBLISH_DEFAULTS.type, NOTIFICATION_TYPES);
  if (raw.title !== undefined && raw.title.trim() === '') throw usageError('--title must not be empty (got "")');
  const notification: PublishConfig['notification'] = { type, title: raw.title, body: raw.body ?? '' };
  if (raw.data !== undefined) notification.data = parseDataObject(raw.data);

  const count = raw.count === undefined ? undefined : parseInteger('--count', raw.count, 1);
  let rate: number | undefined;
  if (raw.rate !== undefined) {
    rate = parseRate('--rate', raw.rate);
    if (!(rate > 0)) throw usageError(`--rate must be > 0 (got "${raw.rate}")`);
  }
  const timeoutMs = parseDuration('--timeout', raw.timeout ?? PUBLISH_DEFAULTS.timeout);
  if (timeoutMs < 1) throw usageError(`--timeout must be >= 1ms (got "${raw.timeout}")`);

  return {
    url,
    target,
    notification,
    mode: count === undefined && rate === undefined ? 'once' : 'schedule',
    count: count ?? (rate === undefined ? 1 : Infinity),
    rate,
    maxInFlight: parseInteger('--max-in-flight', raw.maxInFlight ?? PUBLISH_DEFAULTS.maxInFlight, 1, 10_000),
    timeoutMs,
    publishKey: raw.publishKey ?? env.NOTIFY_PUBLISH_KEY,
    json: Boolean(raw.json),
  };
}

function parseDataObject(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw usageError(`--data must be a JSON object (got ${JSON.stringify(text)})`, `e.g. --data '{"orderId": 42}'`);
  }
  return v as Record<string, unknown>;
}

export function publishCommand(io: Io, done: (code: number) => void): Command {
  const D = PUBLISH_DEFAULTS;
  return new Command('publish')
    .description('Publish notifications to notify serve (POST /publish): one, or --count N on a --rate schedule.')
    .option('--url <url>', `gateway base URL (or env NOTIFY_URL) (default: "${D.url}")`)
    .option('--user <id...>', 'user(s) to notify; several users make one request with one event each')
    .option('--broadcast', 'publish on the broadcast stream (every subscriber)')
    .option('--type <type>', `notification type: ${NOTIFICATION_TYPES.join(', ')}`, D.type)
    .option('--title <title>', 'title (default: "notification N")')
    .option('--body <body>', 'body text')
    .option('--data <json>', 'free-form JSON object put in notification.data')
    .option('--count <n>', 'publish N notifications and print a summary')
    .option('--rate <rate>', 'send on a fixed schedule, e.g. 200/s or 600/m (without --count: until Ctrl-C)')
    .option('--publish-key <key>', 'sent as X-Publish-Key (or env NOTIFY_PUBLISH_KEY)')
    .option('--json', 'machine output (JSON) on stdout')
    .option('--max-in-flight <n>', 'requests awaiting an answer at most (--count/--rate)', D.maxInFlight)
    .option('--timeout <duration>', 'connect and response timeout per request', D.timeout)
    .addHelpText(
      'after',
      `
Examples:
  $ notify publish --user 42 --title 'New comment' --body 'Ann replied'
  $ notify publish --user 42 43 44 --type mention --data '{"postId": 7}'
  $ notify publish --broadcast --type alert --title 'Maintenance at 22:00' --json | jq -r '.ids[0]'
  $ notify publish --user 42 --count 1000 --rate 200/s     # fixed schedule, summary with 202 latency p50/p99
  $ NOTIFY_URL=http://gw:8080 NOTIFY_PUBLISH_KEY=... notify publish --broadcast --rate 50/s   # until Ctrl-C

Output: ids and live deliveries on stderr; with --json, {"ids", "delivered"} (or the --count summary) on stdout.
Exit codes: 0 all accepted, 1 server unreachable or a publish failed, 2 bad flag.`,
    )
    .action(async (raw: RawPublishOptions) => {
      const config = resolvePublishOptions(raw, io.env);
      const client = createPublishClient({
        url: config.url,
        publishKey: config.publishKey,
        timeoutMs: config.timeoutMs,
        connections: config.mode === 'once' ? 1 : config.maxInFlight,
      });
      try {
        done(config.mode === 'once' ? await publishOnce(client, config, io) : await publishSchedule(client, config, io));
      } finally {
        await client.destroy().catch(() => {});
      }
    });
}

function notificationAt(config: PublishConfig, n: number): PublishNotification {
  return { ...config.notification, title: config.notification.title ?? `notification ${n}` };
}

function describeTarget(t: PublishTarget): string {
  if ('broadcast' in t) return 'broadcast';
  if ('user' in t) return `user ${t.user}`;
  return `${t.users.length} users (${t.users.join(', ')})`;
}

async function publishOnce(client: PublishClient, config: PublishConfig, io: Io): Promise<number> {
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

/**
 * Sends `config.count` publishes at intended times t0 + i/rate without waiting for answers, at most
 * `maxInFlight` at once; stops early on Ctrl-C (a second Ctrl-C aborts what is in flight) or when the very first
 * answer is a failure (wrong URL, key or payload would fail every request the same way).
 */
async function publishSchedule(client: PublishClient, config: PublishConfig, io: Io): Promise<number> {
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
    p.then((outcome) => {
      s.inFlight--;
      if (outcome.ok) {
        s.accepted++;
        s.delivered += outcome.delivered;
        s.latency.recordMs(performance.now() - intendedAt);
      } else {
        s.failed++;
        s.failures[outcome.cause] = (s.failures[outcome.cause] ?? 0) + 1;
        s.firstFailure ??= outcome;
        if (s.accepted === 0 && !s.fatal) {
          s.fatal = outcome;
          stop();
        }
      }
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
    throw new NotifyError('E_PUBLISH_FAILED', `${summary.failed} of ${summary.sent} publishes failed (${formatFailures(summary.failures)})`, {
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
const formatFailures = (f: Record<string, number>) => Object.entries(f).map(([cause, n]) => `${cause} ${n}`).join(', ');
const ms = (n: number) => `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0)}ms`;

function progressLine(s: RunState, count: number, elapsedS: number, lastSecond: number): string {
  const total = Number.isFinite(count) ? `/${count}` : '';
  const lat = s.latency.count ? `  p50 ${ms(s.latency.summary().p50)}  p99 ${ms(s.latency.summary().p99)}` : '';
  const failed = s.failed ? `  failed ${s.failed} (${formatFailures(s.failures)})` : '  failed 0';
  return `${elapsedS.toFixed(0).padStart(4)}s  sent ${s.sent}${total}  accepted ${s.accepted}${failed}  in flight ${s.inFlight}  ${lastSecond}/s${lat}`;
}

export function renderSummary(r: PublishSummary): string {
  const target = r.rate === null ? 'as fast as possible' : `target ${round1(r.rate)}/s`;
  const lines = [
    `${r.interrupted ? 'interrupted: ' : ''}published ${r.sent} to ${describeTarget(r.target)} in ${(r.durationMs / 1000).toFixed(2)}s (${target}, achieved ${r.achievedRate}/s)`,
    `  sent ${r.sent}  accepted ${r.accepted}  failed ${r.failed}  delivered to ${r.delivered} live connections in total`,
  ];
  if (r.latency.count) {
    lines.push(`  202 latency from intended send time: p50 ${ms(r.latency.p50)}  p99 ${ms(r.latency.p99)}  max ${ms(r.latency.max)}`);
  }
  if (r.failed) lines.push(`  failed by cause: ${formatFailures(r.failures)}`);
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
