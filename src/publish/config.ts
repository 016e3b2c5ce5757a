/** `notify publish` options as resolved and validated: flags in, a PublishConfig out (pure; no I/O). */
import { usageError } from '../errors.js';
import { normaliseBaseUrl } from './http-client.js';
import { NOTIFICATION_TYPES, type PublishNotification, type PublishTarget } from '../protocol/notification.js';
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
